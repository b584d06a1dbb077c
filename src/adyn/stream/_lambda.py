"""Lambda: a DynamoDB-stream event as `Record`s, and the partial batch response.

```python
def handler(event, context):
    records = adyn.lambda_records(event, Post, User)
    for record in records:
        index(record)          # raise, or stop, at the first failure
        record.done()
    return adyn.batch_failures(records)
```

A Lambda event spells a few fields unlike the Streams API (`eventSourceARN` names the stream,
`userIdentity` has `type` and `principalId`; the records carry no shard id), and its values
are DynamoDB's JSON as on the wire (numbers as strings, binary as base64 text). With the event
source mapping's `ReportBatchItemFailures`, Lambda reads `{"batchItemFailures":
[{"itemIdentifier": <sequence number>}]}` and retries from the lowest sequence number named:
`batch_failures` names, for each stream in the records, the first record in event order that
is not `done()`, so nothing after a failure is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

from ..errors import InvalidArgument
from ._record import Record, decode_record
from ._source import StreamSource

__all__ = ["batch_failures", "lambda_records"]

M = TypeVar("M")
Wire = dict[str, Any]


class _Done:
    """The done flag of one Lambda record."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = False

    def __call__(self) -> None:
        self.finished = True


def lambda_records(
    event: Mapping[str, Any],
    *models: type[M],
    table_name_template: str | Callable[[type[Any]], str] = "{table_name}",
) -> list[Record[M]]:
    """The records of a Lambda DynamoDB-stream event, each decoded through the model of its
    table (`record.model`), in event order.

    The event's table (from `eventSourceARN`) picks the model by the model's table name after
    `table_name_template` (as `Engine(table_name_template=...)` names tables); with a single
    model, every record is that model's. A record that does not decode raises `InvalidItem`
    naming it.
    """
    from .._unique import is_guard_key
    from ..schema import schema_of

    if not models:
        raise InvalidArgument("lambda_records() needs at least one model")
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        raise InvalidArgument("not a Lambda DynamoDB-stream event: it has no 'Records' list")
    by_table: dict[str, StreamSource] = {}
    sources: list[StreamSource] = []
    for model in models:
        schema = schema_of(model)
        if callable(table_name_template):
            name = table_name_template(model)
        else:
            name = table_name_template.format(table_name=schema.table_name)
        skip = partial(is_guard_key, schema) if schema.unique else None
        spec = StreamSource("", model, "", schema.decode_item, schema.decode_key, name, skip)
        by_table[name] = spec
        sources.append(spec)
    shard = str(event.get("shardId") or "")
    records: list[Record[M]] = []
    for raw in event["Records"]:
        if not isinstance(raw, dict) or raw.get("eventSource") not in (None, "aws:dynamodb"):
            raise InvalidArgument(
                "lambda_records() reads DynamoDB-stream events; this record comes from "
                f"{raw.get('eventSource') if isinstance(raw, dict) else type(raw).__name__!r}"
            )
        arn = str(raw.get("eventSourceARN") or "")
        table = _table_of(arn)
        found = by_table.get(table)
        if found is None:
            if len(sources) != 1:
                known = ", ".join(sorted(by_table))
                raise InvalidArgument(
                    f"record {raw.get('eventID')} comes from table {table!r}, which none of the "
                    f"models names ({known}); pass its model, or table_name_template="
                )
            found = sources[0]
        if found.skip is not None and found.skip((raw.get("dynamodb") or {}).get("Keys") or {}):
            continue  # a guard item of a Unique() field: no model object
        record: Record[M] = decode_record(raw, found, shard)
        done = _Done()
        object.__setattr__(record, "_ack", done)
        object.__setattr__(record, "_ledger", done)
        records.append(record)
    return records


def batch_failures(records: Iterable[Record[Any]]) -> dict[str, list[dict[str, str]]]:
    """Lambda's partial batch response for `records` (from `lambda_records`): for each stream,
    the first record in event order that is not `done()`, so Lambda retries from there."""
    failures: dict[str, str] = {}
    for record in records:
        flag = getattr(record, "_ledger", None)
        if not isinstance(flag, _Done):
            raise InvalidArgument("batch_failures() takes the records of lambda_records()")
        stream = str(record.raw.get("eventSourceARN") or "")
        if stream not in failures and not flag.finished:
            failures[stream] = record.sequence_number
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failures.values()]}


def _table_of(arn: str) -> str:
    """The table name in a stream ARN: `arn:aws:dynamodb:region:account:table/NAME/stream/…`."""
    _, _, rest = arn.partition(":table/")
    return rest.split("/stream/", 1)[0]
