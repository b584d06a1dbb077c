"""Every error adyn raises.

```
AdynError
├── InvalidArgument         an argument is not acceptable (also a ValueError)
├── InvalidModel            a model definition breaks a rule (raised at class creation)
├── InvalidItem             an object cannot be written as it is (raised before sending)
├── InvalidQuery            a query or scan is malformed (raised before sending)
├── InvalidCondition        a condition or update action is malformed (raised before sending)
├── ConstraintViolation     a condition, `atomic=True` or a `Version` check failed
│   └── UniqueViolation     another item already holds a value of a `Unique()` field
├── MissingObjects          `load` found no item for some objects
├── NotFound                `one()` found nothing
├── MultipleResults         `one()` found more than one item
├── TableMismatch           a live table differs from the model
├── TransactionCanceled     DynamoDB cancelled a transaction; `.reasons` says why, per item
├── BatchIncomplete         a batch ran out of retries; `.objects` names what was not done
├── RecordsExpired          a stream position points at data that was trimmed away
├── StreamNotEnabled        a stream was asked of a table that has none
├── InvalidState            a stream or virtual clock used in a state that does not allow it
├── EngineClosed            the engine was used after it was closed
├── NotBound                a model was used before `engine.bind(...)`
└── DynamoError             DynamoDB (or the connection) failed in a way with no other meaning
    ├── Throttled           throttling, 5xx or connection faults outlasted the retry budget
    ├── OutcomeUnknown      a write may or may not have been applied
    └── one class per service code the engine acts on (ConditionalCheckFailedError,
        ResourceNotFoundError, ResourceInUseError, TransactionCanceledError,
        ExpiredIteratorError, TrimmedDataAccessError, LimitExceededError, ExpiredTokenError)
```

`SERVICE_ERRORS` is the one map from a service (or connection) code to its class and to how a
failed attempt may be retried (`Retry`); nothing else in adyn compares error codes.

Messages never contain credentials: only model, field, table and operation names, and the
service's own code and message.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "AdynError",
    "BatchIncomplete",
    "CancellationReason",
    "ConditionalCheckFailedError",
    "ConstraintViolation",
    "DynamoError",
    "EngineClosed",
    "ExpiredIteratorError",
    "ExpiredTokenError",
    "InvalidArgument",
    "InvalidCondition",
    "InvalidItem",
    "InvalidModel",
    "InvalidQuery",
    "InvalidState",
    "LimitExceededError",
    "MissingObjects",
    "MultipleResults",
    "NotBound",
    "NotFound",
    "OutcomeUnknown",
    "RecordsExpired",
    "ResourceInUseError",
    "ResourceNotFoundError",
    "Retry",
    "StreamNotEnabled",
    "TableMismatch",
    "Throttled",
    "TransactionCanceled",
    "TransactionCanceledError",
    "TrimmedDataAccessError",
    "UniqueViolation",
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
    """An object cannot be stored as it is (raised before anything is sent), or a stored item
    does not fit its model (raised where it is loaded; `.key` is its key)."""

    def __init__(
        self,
        model: str,
        field: str | None,
        rule: str,
        obj: Any = None,
        *,
        key: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.field = field
        self.rule = rule
        self.obj = obj
        self.key = key
        where = f"{model}.{field}" if field else model
        super().__init__(f"{where}: {rule}")


class InvalidQuery(AdynError):
    """A query or scan is malformed; raised before anything is sent."""


class InvalidCondition(AdynError):
    """A condition or update action is malformed; raised before anything is sent."""


class ConstraintViolation(AdynError):
    """A write's condition failed (`condition=`, `atomic=True` or a `Version` check).

    `.obj` is the object (or key) whose write was refused; `.item` is the stored item, as a
    model object, when DynamoDB returned it (None when no item was stored). Reading `.item`
    raises `InvalidItem` when the stored item does not fit the model.
    """

    def __init__(self, message: str, obj: Any = None, item: Any = None) -> None:
        self.obj = obj
        self._item = item
        super().__init__(message)

    @property
    def item(self) -> Any:
        """The stored item as a model object, or None."""
        if isinstance(self._item, InvalidItem):
            raise self._item
        return self._item


class UniqueViolation(ConstraintViolation):
    """Another item already holds this value of a `Unique()` field; nothing was written.

    `.model`, `.field` and `.value` name the field and the value; `.obj` is the object whose
    write was refused.
    """

    def __init__(self, model: str, field: str, value: Any, obj: Any = None) -> None:
        self.model = model
        self.field = field
        self.value = value
        super().__init__(
            f"{model}.{field}: the value {value!r} is already taken by another item "
            "(the field is Unique)",
            obj,
        )


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

    __slots__ = ("_item", "code", "message", "obj")

    def __init__(
        self, code: str | None, message: str | None, obj: Any = None, item: Any = None
    ) -> None:
        self.code = code
        self.message = message
        self.obj = obj
        self._item = item

    @property
    def item(self) -> Any:
        """The stored item as a model object (None when none came back); raises `InvalidItem`
        when it does not fit the model."""
        if isinstance(self._item, InvalidItem):
            raise self._item
        return self._item

    def __repr__(self) -> str:
        return f"CancellationReason(code={self.code!r}, message={self.message!r})"


class TransactionCanceled(AdynError):
    """DynamoDB cancelled a transaction. `.reasons[i]` explains item `i` in request order."""

    def __init__(self, message: str, reasons: Sequence[CancellationReason] = ()) -> None:
        self.reasons = list(reasons)
        super().__init__(message)


class BatchIncomplete(AdynError):
    """A batch could not do everything.

    `.objects` names exactly what was not written (or not read); `.unknown` names the writes
    that may or may not have been applied (an attempt that carried them may have reached
    DynamoDB before the connection failed). Everything else was done exactly once.
    """

    def __init__(self, message: str, objects: Iterable[Any], unknown: Iterable[Any] = ()) -> None:
        self.objects = list(objects)
        self.unknown = list(unknown)
        super().__init__(message)


class RecordsExpired(AdynError):
    """A stream position points at records that DynamoDB already trimmed (older than 24 h)."""


class EngineClosed(AdynError):
    """The engine was used outside its `async with` block (or after `close()`)."""


class NotBound(AdynError):
    """A model was used with an engine before `await engine.bind(Model)`."""


class InvalidArgument(AdynError, ValueError):
    """An argument of an adyn call is not acceptable (also a `ValueError`)."""


class InvalidState(AdynError, RuntimeError):
    """An object was used in a state that does not allow it: a stream before it is open, or
    opened twice (also a `RuntimeError`)."""


class StreamNotEnabled(AdynError):
    """`engine.stream(Model)` was asked for a table that has no stream (set `Meta.stream`)."""


class DynamoError(AdynError):
    """DynamoDB (or the connection to it) failed in a way with no more specific adyn meaning.

    `.code` is the service's error code (e.g. "ValidationException") or one of the connection
    codes below, `.message` its message, `.operation` the API call, `.status` the HTTP status
    (None when no answer came), `.request_id` DynamoDB's request id when it answered, and
    `.response` the parsed error body.
    """

    def __init__(
        self,
        code: str,
        message: str,
        operation: str | None = None,
        response: dict[str, Any] | None = None,
        *,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.operation = operation
        self.response: dict[str, Any] = response or {}
        self.status = status
        self.request_id = request_id
        where = f" during {operation}" if operation else ""
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{code}{where}: {message}{rid}")

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (
                type(self),
                self.code,
                self.message,
                self.operation,
                self.response,
                self.status,
                self.request_id,
            ),
        )


def _rebuild(cls: type[DynamoError], *args: Any) -> DynamoError:
    code, message, operation, response, status, request_id = args
    error = cls.__new__(cls)
    DynamoError.__init__(
        error, code, message, operation, response, status=status, request_id=request_id
    )
    return error


class Throttled(DynamoError):
    """Throttling, 5xx answers or connection faults went on after every retry was spent, and
    no attempt of the call can have been applied (reads, or writes that never reached the
    server)."""


class OutcomeUnknown(DynamoError):
    """A write may or may not have been applied.

    Raised when an attempt of a write may have reached the server (the connection failed after
    the request was sent, or the server answered 5xx) and adyn could not learn the outcome:
    either a resend could apply the write twice (conditional writes, `add` actions, version
    increments), or the retries that followed ran out.
    """


# ---------------------------------------------------------------- service errors by code


class ConditionalCheckFailedError(DynamoError):
    """The service's ConditionalCheckFailedException (the engine raises ConstraintViolation)."""


class ResourceNotFoundError(DynamoError):
    """The table, index, stream or shard does not exist (ResourceNotFoundException)."""


class ResourceInUseError(DynamoError):
    """The table is being created, updated or deleted (ResourceInUseException)."""


class TransactionCanceledError(DynamoError):
    """The service's TransactionCanceledException (the engine raises TransactionCanceled)."""


class ExpiredIteratorError(DynamoError):
    """A stream shard iterator is older than 15 minutes (ExpiredIteratorException)."""


class TrimmedDataAccessError(DynamoError):
    """Stream records past the trim horizon were asked for (TrimmedDataAccessException)."""


class LimitExceededError(DynamoError):
    """Too many concurrent control-plane or Streams calls (LimitExceededException)."""


class ExpiredTokenError(DynamoError):
    """The request was signed with expired credentials (ExpiredTokenException)."""


class Retry(enum.Enum):
    """Whether a failed attempt may be sent again."""

    NEVER = "never"  # a definite answer: resending changes nothing
    REJECTED = "rejected"  # the server did nothing: resending any call is safe
    UNKNOWN = "unknown"  # the server may have applied it: resend only idempotent calls


# Connection-level failures: transports raise DynamoError with these codes.
CONNECTION_FAILED = "ConnectionFailed"  # no connection: nothing was sent
CONNECT_TIMEOUT = "ConnectTimeout"  # no connection in time: nothing was sent
CONNECTION_LOST = "ConnectionLost"  # the connection broke after the request went out
READ_TIMEOUT = "ReadTimeout"  # no answer in time after the request went out
MALFORMED_RESPONSE = "MalformedResponse"  # an answer that is not DynamoDB's JSON
CRC32_CHECK_FAILED = "CRC32CheckFailed"  # the answer was damaged on the way
CREDENTIALS_UNAVAILABLE = "CredentialsUnavailable"  # no credentials could be had: nothing sent

_THROTTLING = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "TooManyRequestsException",
    "LimitExceededException",
)

# code -> (class, retry class, counts as throttling). Codes not listed: DynamoError, NEVER
# (UNKNOWN for any 5xx status).
SERVICE_ERRORS: dict[str, tuple[type[DynamoError], Retry, bool]] = {
    **{code: (DynamoError, Retry.REJECTED, True) for code in _THROTTLING},
    "LimitExceededException": (LimitExceededError, Retry.REJECTED, True),
    "TransactionInProgressException": (DynamoError, Retry.REJECTED, False),
    "ExpiredTokenException": (ExpiredTokenError, Retry.REJECTED, False),
    "InternalServerError": (DynamoError, Retry.UNKNOWN, False),
    "InternalFailure": (DynamoError, Retry.UNKNOWN, False),
    "ServiceUnavailable": (DynamoError, Retry.UNKNOWN, False),
    "ConditionalCheckFailedException": (ConditionalCheckFailedError, Retry.NEVER, False),
    "ResourceNotFoundException": (ResourceNotFoundError, Retry.NEVER, False),
    "ResourceInUseException": (ResourceInUseError, Retry.NEVER, False),
    "TransactionCanceledException": (TransactionCanceledError, Retry.NEVER, False),
    "ExpiredIteratorException": (ExpiredIteratorError, Retry.NEVER, False),
    "TrimmedDataAccessException": (TrimmedDataAccessError, Retry.NEVER, False),
    CONNECTION_FAILED: (DynamoError, Retry.REJECTED, False),
    CONNECT_TIMEOUT: (DynamoError, Retry.REJECTED, False),
    CONNECTION_LOST: (DynamoError, Retry.UNKNOWN, False),
    READ_TIMEOUT: (DynamoError, Retry.UNKNOWN, False),
    MALFORMED_RESPONSE: (DynamoError, Retry.UNKNOWN, False),
    CRC32_CHECK_FAILED: (DynamoError, Retry.UNKNOWN, False),
    CREDENTIALS_UNAVAILABLE: (DynamoError, Retry.REJECTED, False),
}


def retry_of(error: DynamoError) -> Retry:
    """How a failed attempt may be retried, by its code (and its HTTP status)."""
    entry = SERVICE_ERRORS.get(error.code)
    if entry is not None:
        return entry[1]
    if error.status is not None and error.status >= 500:
        return Retry.UNKNOWN
    return Retry.NEVER


def is_throttling(error: DynamoError) -> bool:
    """True for the codes DynamoDB and DynamoDB Streams use to say "slow down"."""
    entry = SERVICE_ERRORS.get(error.code)
    return isinstance(error, Throttled) or (entry is not None and entry[2])


def service_error(
    code: str,
    message: str,
    operation: str | None = None,
    response: dict[str, Any] | None = None,
    *,
    status: int | None = None,
    request_id: str | None = None,
) -> DynamoError:
    """The `DynamoError` (or subclass) for a service or connection error code."""
    entry = SERVICE_ERRORS.get(code)
    cls = entry[0] if entry is not None else DynamoError
    return cls(code, message, operation, response, status=status, request_id=request_id)


def specific(error: DynamoError) -> DynamoError:
    """A plain `DynamoError` (as a user-written transport raises it) as its mapped subclass."""
    if type(error) is not DynamoError:
        return error
    entry = SERVICE_ERRORS.get(error.code)
    if entry is None or entry[0] is DynamoError:
        return error
    mapped = entry[0](
        error.code,
        error.message,
        error.operation,
        error.response,
        status=error.status,
        request_id=error.request_id,
    )
    mapped.__cause__ = error.__cause__
    mapped.__traceback__ = error.__traceback__
    return mapped
