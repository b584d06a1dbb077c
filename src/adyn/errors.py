"""Every error adyn raises.

```
AdynError
├── InvalidModel            a model definition breaks a rule (raised at class creation)
├── InvalidItem             an object cannot be written as it is (raised before sending)
├── InvalidQuery            a query or scan is malformed (raised before sending)
├── InvalidCondition        a condition or update action is malformed (raised before sending)
├── ConstraintViolation     a condition, `atomic=True` or a `Version` check failed
├── MissingObjects          `load` found no item for some objects
├── NotFound                `one()` found nothing
├── MultipleResults         `one()` found more than one item
├── TableMismatch           a live table differs from the model
├── TransactionCanceled     DynamoDB cancelled a transaction; `.reasons` says why, per item
├── BatchIncomplete         a batch ran out of retries; `.objects` names what was not done
├── RecordsExpired          a stream position points at data that was trimmed away
├── EngineClosed            the engine was used after it was closed
├── NotBound                a model was used before `engine.bind(...)`
└── DynamoError             DynamoDB (or the connection) failed in a way with no other meaning
    ├── Throttled           throttling, 5xx or connection faults outlasted the retry budget
    └── OutcomeUnknown      a write may or may not have been applied (it was not retried)
```

Messages never contain credentials: only model, field, table and operation names, and the
service's own code and message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "AdynError",
    "BatchIncomplete",
    "CancellationReason",
    "ConstraintViolation",
    "DynamoError",
    "EngineClosed",
    "InvalidCondition",
    "InvalidItem",
    "InvalidModel",
    "InvalidQuery",
    "MissingObjects",
    "MultipleResults",
    "NotBound",
    "NotFound",
    "OutcomeUnknown",
    "RecordsExpired",
    "TableMismatch",
    "Throttled",
    "TransactionCanceled",
]


class AdynError(Exception):
    """Base class of every adyn error."""


class InvalidModel(AdynError):
    """A model definition breaks a rule; raised when the class is created."""

    def __init__(self, model: str, field: str | None, rule: str) -> None:
        self.model = model
        self.field = field
        self.rule = rule
        where = f"{model}.{field}" if field else model
        super().__init__(f"{where}: {rule}")


class InvalidItem(AdynError):
    """An object cannot be stored as it is; raised before anything is sent."""

    def __init__(self, model: str, field: str | None, rule: str, obj: Any = None) -> None:
        self.model = model
        self.field = field
        self.rule = rule
        self.obj = obj
        where = f"{model}.{field}" if field else model
        super().__init__(f"{where}: {rule}")


class InvalidQuery(AdynError):
    """A query or scan is malformed; raised before anything is sent."""


class InvalidCondition(AdynError):
    """A condition or update action is malformed; raised before anything is sent."""


class ConstraintViolation(AdynError):
    """A write's condition failed (`condition=`, `atomic=True` or a `Version` check).

    `.obj` is the object (or key) whose write was refused; `.item` is the stored item, as a
    model object, when DynamoDB returned it (None when no item was stored).
    """

    def __init__(self, message: str, obj: Any = None, item: dict[str, Any] | None = None) -> None:
        self.obj = obj
        self.item = item
        super().__init__(message)


class MissingObjects(AdynError):
    """`load` found no item for some objects; `.objects` lists every one of them."""

    def __init__(self, message: str, objects: Iterable[Any]) -> None:
        self.objects = list(objects)
        super().__init__(message)


class NotFound(AdynError):
    """`one()` expected exactly one result and found none."""


class MultipleResults(AdynError):
    """`one()` expected exactly one result and found more."""


class TableMismatch(AdynError):
    """A live table does not match its model; `.differences` lists every difference."""

    def __init__(self, table: str, differences: Sequence[str]) -> None:
        self.table = table
        self.differences = list(differences)
        lines = "\n  - ".join(self.differences)
        super().__init__(f"table {table!r} does not match its model:\n  - {lines}")


class CancellationReason:
    """Why one item of a transaction was cancelled (`code` is None for items that were fine)."""

    __slots__ = ("code", "item", "message", "obj")

    def __init__(
        self, code: str | None, message: str | None, obj: Any = None, item: Any = None
    ) -> None:
        self.code = code
        self.message = message
        self.obj = obj
        self.item = item

    def __repr__(self) -> str:
        return f"CancellationReason(code={self.code!r}, message={self.message!r})"


class TransactionCanceled(AdynError):
    """DynamoDB cancelled a transaction. `.reasons[i]` explains item `i` in request order."""

    def __init__(self, message: str, reasons: Sequence[CancellationReason] = ()) -> None:
        self.reasons = list(reasons)
        super().__init__(message)


class BatchIncomplete(AdynError):
    """A batch ran out of retries. `.objects` names exactly what was not written or read."""

    def __init__(self, message: str, objects: Iterable[Any]) -> None:
        self.objects = list(objects)
        super().__init__(message)


class RecordsExpired(AdynError):
    """A stream position points at records that DynamoDB already trimmed (older than 24 h)."""


class EngineClosed(AdynError):
    """The engine was used outside its `async with` block (or after `close()`)."""


class NotBound(AdynError):
    """A model was used with an engine before `await engine.bind(Model)`."""


class DynamoError(AdynError):
    """DynamoDB answered with an error that has no more specific adyn meaning.

    `.code` is the service's error code (e.g. "ValidationException"), `.message` its message,
    `.operation` the API call.
    """

    def __init__(
        self,
        code: str,
        message: str,
        operation: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.operation = operation
        self.response: dict[str, Any] = response or {}
        where = f" during {operation}" if operation else ""
        super().__init__(f"{code}{where}: {message}")


class Throttled(DynamoError):
    """Throttling, 5xx answers or connection faults went on after every retry was spent."""


class OutcomeUnknown(DynamoError):
    """A write may or may not have been applied: the connection failed after it was sent.

    adyn does not retry such a write when a second attempt could apply it twice or report a
    false condition failure (conditional writes, `add` actions, version increments).
    """
