"""What the engine tells its listeners: one `CallEvent` per call, with consumed capacity.

```python
def log_slow(event: CallEvent) -> None:
    if event.duration > 0.1:
        print(event.operation, event.table, event.duration, event.request_id)

engine = Engine(listeners=[log_slow], consumed_capacity=True)
```

A listener is a plain callable, called after each call (retries included) has ended, in the task
that made the call. An exception in a listener is logged (logger `adyn.events`) and never breaks
the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CallEvent", "ConsumedCapacity", "Listener"]

Wire = dict[str, Any]

_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


@dataclass(frozen=True, slots=True)
class ConsumedCapacity:
    """Capacity units consumed: `read` and `write` (DynamoDB's `CapacityUnits` split by kind)."""

    read: float = 0.0
    write: float = 0.0

    def __add__(self, other: ConsumedCapacity) -> ConsumedCapacity:
        return ConsumedCapacity(self.read + other.read, self.write + other.write)

    @property
    def total(self) -> float:
        return self.read + self.write


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One call of the engine to DynamoDB, after it ended (successfully or not).

    - `service` ("dynamodb" / "dynamodbstreams"), `operation` ("GetItem", ...), `table` (the
      table name, None for calls without one or on several tables), `model` (the model class
      the call was for, when one was);
    - `duration`: seconds from the first attempt to the end, backoff included; `attempts`;
    - `consumed`: capacity of the whole call (`consumed_capacity=True`), else None;
    - `request_id`: DynamoDB's id of the last attempt that got an answer;
    - `error`: the adyn error the call raised, None on success;
    - `items`: items returned (reads) or sent (writes), None when that does not apply.
    """

    service: str
    operation: str
    table: str | None
    model: type | None
    duration: float
    attempts: int
    consumed: ConsumedCapacity | None
    request_id: str | None
    error: BaseException | None
    items: int | None


Listener = Callable[[CallEvent], object]


def consumed_by_table(operation: str, response: Wire) -> dict[str, ConsumedCapacity]:
    """The `ConsumedCapacity` of a response, per table (empty when there is none)."""
    raw = response.get("ConsumedCapacity")
    if raw is None:
        return {}
    entries: Iterable[Any] = raw if isinstance(raw, list) else (raw,)
    is_read = operation in _READS
    out: dict[str, ConsumedCapacity] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        table = str(entry.get("TableName") or "")
        read = entry.get("ReadCapacityUnits")
        write = entry.get("WriteCapacityUnits")
        if read is None and write is None:
            units = float(entry.get("CapacityUnits") or 0.0)
            read, write = (units, 0.0) if is_read else (0.0, units)
        capacity = ConsumedCapacity(float(read or 0.0), float(write or 0.0))
        out[table] = out[table] + capacity if table in out else capacity
    return out


def total(consumed: Mapping[str, ConsumedCapacity]) -> ConsumedCapacity | None:
    """The sum over tables, or None when nothing was reported."""
    if not consumed:
        return None
    result = ConsumedCapacity()
    for capacity in consumed.values():
        result = result + capacity
    return result


def item_count(operation: str, request: Wire, response: Wire | None) -> int | None:
    """Items a call returned (reads) or sent (writes)."""
    if operation in ("Query", "Scan"):
        if response is None:
            return None
        count = response.get("Count")
        return int(count) if count is not None else len(response.get("Items") or ())
    if operation == "GetItem":
        return None if response is None else int("Item" in response)
    if operation == "BatchGetItem":
        if response is None:
            return None
        return sum(len(v) for v in (response.get("Responses") or {}).values())
    if operation == "BatchWriteItem":
        return sum(len(v) for v in (request.get("RequestItems") or {}).values())
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return len(request.get("TransactItems") or ())
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 1
    if operation == "GetRecords":
        return None if response is None else len(response.get("Records") or ())
    return None


def table_of(request: Wire) -> str | None:
    """The one table a request is about, None for none or several."""
    name = request.get("TableName")
    if name is not None:
        return str(name)
    items = request.get("RequestItems")
    if isinstance(items, Mapping) and len(items) == 1:
        return str(next(iter(items)))
    transact = request.get("TransactItems")
    if transact:
        names = {next(iter(entry.values())).get("TableName") for entry in transact}
        if len(names) == 1:
            return str(names.pop())
    return None
