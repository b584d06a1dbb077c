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
    from .._entities import stream_router
    from .._unique import is_guard_key
    from ..schema import ModelSchema, schema_of

    if not models:
        raise InvalidArgument("lambda_records() needs at least one model")
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        raise InvalidArgument("not a Lambda DynamoDB-stream event: it has no 'Records' list")
    tables: dict[str, list[ModelSchema]] = {}
    for model in models:
        schema = schema_of(model)
        if callable(table_name_template):
            name = table_name_template(model)
        else:
            name = table_name_template.format(table_name=schema.table_name)
        tables.setdefault(name, [])
        if schema not in tables[name]:
            tables[name].append(schema)
    specs: dict[int, StreamSource] = {}
    routers: dict[tuple[str, str], Callable[[Wire], ModelSchema | None]] = {}

    def spec_of(schema: ModelSchema, table: str) -> StreamSource:
        spec = specs.get(id(schema))
        if spec is None:
            guarded = schema  # a shared table's guards (Unique fields of any entity)
            if schema.family is not None:
                guarded = next((m for m in schema.family.members if m.unique), schema)
            skip = partial(is_guard_key, guarded) if guarded.unique else None
            spec = specs[id(schema)] = StreamSource(
                "", schema.model, "", schema.decode_item, schema.decode_key, table, skip
            )
        return spec

    shard = str(event.get("shardId") or "")
    records: list[Record[M]] = []
    for raw in event["Records"]:
        if not isinstance(raw, dict) or raw.get("eventSource") not in (None, "aws:dynamodb"):
            raise InvalidArgument(
                "lambda_records() reads DynamoDB-stream events; this record comes from "
                f"{raw.get('eventSource') if isinstance(raw, dict) else type(raw).__name__!r}"
            )
        table = _table_of(str(raw.get("eventSourceARN") or ""))
        schemas = tables.get(table)
        if schemas is None:
            if len(tables) != 1 or len(next(iter(tables.values()))) != 1:
                known = ", ".join(sorted(tables))
                raise InvalidArgument(
                    f"record {raw.get('eventID')} comes from table {table!r}, which none of the "
                    f"models names ({known}); pass its model, or table_name_template="
                )
            (schemas,) = tables.values()
        body = raw.get("dynamodb") or {}
        chosen: ModelSchema | None = schemas[0]
        family = schemas[0].family
        if family is not None:  # a table shared by entities: the record's own entity
            view = str(body.get("StreamViewType") or "NEW_AND_OLD_IMAGES")
            router = routers.get((table, view))
            if router is None:
                router = routers[(table, view)] = stream_router(family, schemas, table, view)
            chosen = router(raw)
        if chosen is None:
            continue  # an entity none of the models asked for
        found = spec_of(chosen, table)
        if found.skip is not None and found.skip(body.get("Keys") or {}):
            continue  # a guard item of a Unique() field: no model object
        try:
            record: Record[M] = decode_record(raw, found, shard)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(
                f"record {raw.get('eventID')!r} is not a DynamoDB-stream record as Lambda "
                f"delivers it ({type(exc).__name__}: {exc})"
            ) from None
        done = _Done()
        object.__setattr__(record, "_ack", done)
        object.__setattr__(record, "_ledger", done)
        records.append(record)
    return records


def batch_failures(records: Iterable[Record[Any]]) -> dict[str, list[dict[str, str]]]:
    """Lambda's partial batch response for `records` (from `lambda_records`): for each stream,
    the first record in event order that is not `done()`, so Lambda retries from there."""
    failures: dict[str, str] = {}
    if not isinstance(records, Iterable) or isinstance(records, str | bytes | Mapping):
        raise InvalidArgument("batch_failures() takes the records of lambda_records()")
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
