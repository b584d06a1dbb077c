"""What one write request does to moto's tables, so it can be undone or recorded as DynamoDB does.

A `Journal` remembers, before a request runs, a copy of every item the request may touch and
where each table's stream stood. Afterwards it either rolls all of it back (the request failed:
nothing it did stays, not even the key-only item moto writes before it applies an update, nor
stream records), or commits: it replaces the stream records moto wrote with exactly one record
per item whose value really changed, and none for an item left as it was.

moto's objects are used through a few attributes only; `_moto_fixes.check_shapes` makes sure
they exist before the server starts.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ._moto_types import item_size

__all__ = ["TTL_IDENTITY", "Journal", "StreamRecord", "member", "stored_item"]

# How a deletion by DynamoDB's TTL process identifies itself in a stream record.
TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
_NEW_VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
_OLD_VIEWS = ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")


def member(value: Any) -> tuple[str, Any]:
    """(type, value) of a moto `DynamoType` or of a wire AttributeValue dict."""
    if isinstance(value, dict):
        ((type_, inner),) = value.items()
        return type_, inner
    return value.type, value.value


def stored_item(table: Any, hash_key: Any, range_key: Any) -> Any:
    """The item moto holds under this key, or None (without creating an empty bucket)."""
    bucket = table.items.get(hash_key)
    if table.range_key_attr is None:
        return bucket
    return None if bucket is None else bucket.get(range_key)


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if table.range_key_attr is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
        return
    bucket = table.items.get(hash_key)
    if item is None:
        if bucket is not None:
            bucket.pop(range_key, None)
            if not bucket:
                table.items.pop(hash_key, None)
        return
    if bucket is None:
        bucket = table.items[hash_key] = {}
    bucket[range_key] = item


class StreamRecord:
    """One stream record in the shape DynamoDB Streams gives (moto's shard holds these)."""

    def __init__(
        self,
        table: Any,
        before: Any,
        after: Any,
        sequence: int,
        identity: dict[str, str] | None = None,
    ) -> None:
        view = table.stream_specification["StreamViewType"]
        event = "INSERT" if before is None else "REMOVE" if after is None else "MODIFY"
        item = after if after is not None else before
        keys = {name: item.attrs[name].to_json() for name in table.table_key_attrs}
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": int(time.time()),
            "Keys": keys,
            "SequenceNumber": str(sequence),
            "SizeBytes": 0,
            "StreamViewType": view,
        }
        size = item_size(keys, member)
        if view in _NEW_VIEWS and after is not None:
            body["NewImage"] = after.to_json()["Attributes"]
            size += item_size(after.attrs, member)
        if view in _OLD_VIEWS and before is not None:
            body["OldImage"] = before.to_json()["Attributes"]
            size += item_size(before.attrs, member)
        body["SizeBytes"] = size
        self.record: dict[str, Any] = {
            "awsRegion": table.region_name,
            "dynamodb": body,
            "eventID": uuid.uuid4().hex,
            "eventName": event,
            "eventSource": "aws:dynamodb",
            "eventVersion": "1.1",
        }
        if identity is not None:
            self.record["userIdentity"] = dict(identity)

    def to_json(self) -> dict[str, Any]:
        return self.record


def append_record(table: Any, before: Any, after: Any, identity: dict[str, str] | None) -> None:
    shard = table.stream_shard
    if shard is None:
        return
    sequence = shard.starting_sequence_number + len(shard.items)
    shard.items.append(StreamRecord(table, before, after, sequence, identity))


@dataclass
class _Entry:
    table: Any
    hash_key: Any
    range_key: Any
    before: Any


def _same(before: Any, after: Any) -> bool:
    if before is None or after is None:
        return before is after
    return bool(before.attrs == after.attrs)


class Journal:
    """The items one request may touch, as they were before it ran."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, Any, Any], _Entry] = {}
        self._streams: dict[int, tuple[Any, int]] = {}

    def touch(self, table: Any, hash_key: Any, range_key: Any) -> None:
        """Remember the item under this key (a copy: moto updates items in place)."""
        slot = (id(table), hash_key, range_key)
        if slot in self._entries:
            return
        before = copy.deepcopy(stored_item(table, hash_key, range_key))
        self._entries[slot] = _Entry(table, hash_key, range_key, before)
        shard = table.stream_shard
        if shard is not None and id(table) not in self._streams:
            self._streams[id(table)] = (shard, len(shard.items))

    def changed(self) -> list[tuple[Any, Any, Any]]:
        """(table, before, after) of every touched item whose value changed."""
        result = []
        for entry in self._entries.values():
            after = stored_item(entry.table, entry.hash_key, entry.range_key)
            if not _same(entry.before, after):
                result.append((entry.table, entry.before, after))
        return result

    def rollback(self) -> None:
        """Undo everything: items as they were, and no stream record of this request."""
        for entry in self._entries.values():
            _restore(entry.table, entry.hash_key, entry.range_key, entry.before)
        self._drop_records()

    def commit(self, identity: dict[str, str] | None = None) -> None:
        """Record one stream record per changed item, instead of whatever moto recorded."""
        self._drop_records()
        for table, before, after in self.changed():
            append_record(table, before, after, identity)

    def _drop_records(self) -> None:
        for shard, length in self._streams.values():
            del shard.items[length:]
