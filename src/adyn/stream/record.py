"""`Record`, one change of one item, and the decoding of DynamoDB Streams records into it.

The transport's two paths shape records differently: botocore's (slow) path gives
`ApproximateCreationDateTime` as a `datetime` and binary values as `bytes`; the fast path gives
epoch seconds and base64 strings. Both are accepted here; images go to the model's own decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["Event", "Record", "StreamSource", "created_epoch", "decode_record", "is_ttl_deletion"]

Event = Literal["insert", "modify", "remove"]
Wire = dict[str, Any]

_EVENTS: dict[str, Event] = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"


@dataclass(frozen=True)
class StreamSource:
    """One table's stream, as the engine resolves it for `engine.stream(Model, ...)`.

    `decode_item` turns a wire image into a model object; `decode_key` turns wire `Keys` into
    `{field name: Python value}`; `skip`, given a record's wire `Keys`, says the record is of an
    item that is no model object (a guard item of a `Unique()` field) and is passed over.
    """

    stream_arn: str
    model: type
    view_type: str
    decode_item: Callable[[Wire], Any]
    decode_key: Callable[[Wire], dict[str, Any]]
    skip: Callable[[Wire], bool] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """One change to one item, as a stream delivers it.

    - `event`: "insert", "modify" or "remove"; `expired` is True when the removal was a TTL
      deletion by DynamoDB itself.
    - `key`: `{key field: value}`; `new` / `old`: model objects for the images the table's stream
      view provides (None otherwise, and `new` is None on removal, `old` on insertion).
    - `sequence_number`, `created_at` (DynamoDB's approximate time, to the second), `shard_id`,
      `model` (the model class of the table the record came from), `raw` (the wire record).
    """

    event: Event
    key: dict[str, Any]
    new: Any
    old: Any
    sequence_number: str
    created_at: datetime
    shard_id: str
    expired: bool
    model: type
    raw: Wire = field(repr=False)
    _ack: Callable[[], None] | None = field(default=None, repr=False)

    def done(self) -> None:
        """Say that this record's work is finished (what `stream.token` counts with partitions).

        Calling it more than once, or on a stream without partitions, is harmless.
        """
        if self._ack is not None:
            self._ack()


def created_epoch(raw: Wire) -> float:
    """`ApproximateCreationDateTime` of a wire record as epoch seconds (either wire form)."""
    value = raw["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if value is None:
        return 0.0
    return float(value)


def _created_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value is None:
        return datetime.fromtimestamp(0, UTC)
    return datetime.fromtimestamp(float(value), UTC)


def is_ttl_deletion(raw: Wire) -> bool:
    """True when DynamoDB's TTL process (not a user) removed the item."""
    identity = raw.get("userIdentity")
    if not isinstance(identity, dict):
        return False
    # The Streams API spells these "Type"/"PrincipalId"; Lambda events "type"/"principalId".
    kind = identity.get("Type", identity.get("type"))
    principal = identity.get("PrincipalId", identity.get("principalId"))
    return kind == "Service" and principal == _TTL_PRINCIPAL


def decode_record(
    raw: Wire, source: StreamSource, shard_id: str, ack: Callable[[], None] | None = None
) -> Record:
    """Build a `Record` from one wire record of `source`'s stream."""
    body = raw["dynamodb"]
    event_name = raw.get("eventName", "")
    try:
        event = _EVENTS[event_name]
    except KeyError:
        raise ValueError(f"unknown stream event name {event_name!r}") from None
    new = body.get("NewImage")
    old = body.get("OldImage")
    return Record(
        event=event,
        key=source.decode_key(body["Keys"]),
        new=None if new is None else source.decode_item(new),
        old=None if old is None else source.decode_item(old),
        sequence_number=body["SequenceNumber"],
        created_at=_created_at(body.get("ApproximateCreationDateTime")),
        shard_id=shard_id,
        expired=event == "remove" and is_ttl_deletion(raw),
        model=source.model,
        raw=raw,
        _ack=ack,
    )
