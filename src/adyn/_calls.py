"""The engine's one way to call DynamoDB: fair queueing, retries, true outcomes, events.

`Caller.call` wraps any `Transport` (one attempt) with:

- a first-in-first-out bound on attempts in flight (the engine's one concurrency limit), so a
  thousand tasks sharing an engine are served in arrival order and no transport timeout ever
  measures time spent waiting for a connection;
- the engine's `RetryPolicy`, driven by the error map of errors.py: REJECTED failures are resent
  (nothing happened), UNKNOWN ones only when the call is idempotent, NEVER ones are raised;
- true outcomes: once an attempt of a write may have reached the server, a failure that follows
  is `OutcomeUnknown`, never `Throttled` ("not done");
- `close()`: no new call starts, no retry is sent, and every attempt in flight runs to its end,
  so each one reports what really happened;
- one `CallEvent` per call for listeners and tracing, consumed capacity summed per table, and a
  DEBUG log line per call with its request id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import anyio

from .errors import (
    CONNECTION_LOST,
    DynamoError,
    EngineClosed,
    OutcomeUnknown,
    Retry,
    Throttled,
    retry_of,
    specific,
)
from .events import CallEvent, ConsumedCapacity, consumed_by_table, item_count, table_of, total
from .retry import RetryPolicy
from .transport import Transport

__all__ = ["DYNAMODB", "STREAMS", "CallInfo", "Caller", "Tracer"]

log = logging.getLogger("adyn.calls")
listener_log = logging.getLogger("adyn.events")

Wire = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]
# A tracer opens a span around one call; the callable it yields receives the call's event and
# its response (None when it failed).
Finish = Callable[[CallEvent, "Wire | None"], None]
Tracer = Callable[[str, str, Wire], AbstractContextManager[Finish]]

DYNAMODB = "dynamodb"
STREAMS = "dynamodbstreams"

# Calls that change something: after an attempt may have been applied, their failure is
# OutcomeUnknown.
WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "CreateTable",
        "UpdateTable",
        "DeleteTable",
        "UpdateTimeToLive",
    }
)
CAPACITY_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


class CallInfo:
    """What one call learned across its attempts (pass one as `info=` to read it)."""

    __slots__ = ("attempts", "maybe_applied", "request_id")

    def __init__(self) -> None:
        self.attempts = 0
        self.maybe_applied = False
        self.request_id: str | None = None


class Caller:
    """Sends calls through a transport with the engine's retries, limits and listeners."""

    def __init__(
        self,
        transport: Transport,
        *,
        retry: RetryPolicy,
        limit: int,
        listeners: list[Callable[[CallEvent], object]],
        consumed_capacity: bool = False,
    ) -> None:
        self.transport = transport
        # the transport serializes requests with orjson and takes `orjson.Fragment` values
        self.accepts_fragments = getattr(transport, "_accepts_json_fragments", False) is True
        self.retry = retry
        self.listeners = listeners
        self.consumed_capacity = consumed_capacity
        self.sleep: Sleep = anyio.sleep
        self.tracer: Tracer | None = None
        self.closing = False
        self._slots = anyio.Semaphore(max(1, limit), fast_acquire=True)
        self._consumed: dict[str, ConsumedCapacity] = {}
        self._in_flight = 0
        self._idle: anyio.Event | None = None

    # ------------------------------------------------------------ calls

    async def call(
        self,
        operation: str,
        request: Wire,
        *,
        service: str = DYNAMODB,
        idempotent: bool = True,
        model: type | None = None,
        table: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        info: CallInfo | None = None,
    ) -> Wire:
        """Send one call (retried as the policy and the error map allow); return the response.

        `idempotent`: sending the same request twice is harmless. `policy` / `sleep` replace the
        engine's retry policy and clock for this call (streams wait on their own clock).
        `info`, when given, is filled in: attempts, whether one may have been applied, request id.
        """
        if self.closing:
            raise EngineClosed("the engine is closed; open a new one with `async with Engine(...)`")
        if self.consumed_capacity and operation in CAPACITY_OPERATIONS:
            request = {**request, "ReturnConsumedCapacity": "TOTAL"}
        state = info if info is not None else CallInfo()
        started = time.perf_counter()
        response: Wire | None = None
        error: BaseException | None = None
        tracer = self.tracer
        finish: Finish | None = None
        span = tracer(service, operation, request) if tracer is not None else None
        if span is not None:
            finish = span.__enter__()
        try:
            response = await self._send(
                service, operation, request, idempotent, policy, sleep, state
            )
            return response
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.listeners or finish is not None or self.consumed_capacity or _debug():
                event = self._event(
                    service, operation, request, response, error, model, table, state, started
                )
                self._emit(event)
                if finish is not None:
                    finish(event, response)
            if span is not None:
                span.__exit__(None, None, None)

    async def _send(
        self,
        service: str,
        operation: str,
        request: Wire,
        idempotent: bool,
        policy: RetryPolicy | None,
        sleep: Sleep | None,
        state: CallInfo,
    ) -> Wire:
        write = operation in WRITES
        attempts = None
        while True:
            if self.closing and state.attempts:
                raise self._gave_up(None, operation, state, write, "the engine was closed")
            state.attempts += 1
            self._in_flight += 1
            try:
                async with self._slots:
                    if self.closing:
                        sent = False
                    else:
                        sent = True
                        response = await self.transport.call(
                            service, operation, request, idempotent=idempotent
                        )
            except DynamoError as exc:
                error = specific(exc)
            except (OSError, TimeoutError) as exc:  # a connection failure the transport let out
                error = DynamoError(CONNECTION_LOST, f"{type(exc).__name__}: {exc}", operation)
                error.__cause__ = exc
            except Exception as exc:  # a bug in the transport: never resent, reported as it is
                failure = OutcomeUnknown if write else DynamoError
                raise failure(
                    "TransportError",
                    f"the transport raised {type(exc).__name__}: {exc}",
                    operation,
                ) from exc
            else:
                if sent:
                    meta = response.pop("ResponseMetadata", None)
                    if meta:
                        state.request_id = meta.get("RequestId") or state.request_id
                    return response
                raise self._gave_up(None, operation, state, write, "the engine was closed")
            finally:
                self._in_flight -= 1
                if self._in_flight == 0 and self._idle is not None:
                    self._idle.set()
            if error.request_id:
                state.request_id = error.request_id
            kind = retry_of(error)
            if kind is Retry.NEVER:
                raise error
            if kind is Retry.UNKNOWN:
                state.maybe_applied = True
                if write and not idempotent:
                    raise OutcomeUnknown(
                        error.code,
                        f"{error.message} (the write was sent and may have been applied; adyn "
                        "did not resend it because a second try could apply it twice)",
                        operation,
                        error.response,
                        status=error.status,
                        request_id=error.request_id,
                    ) from error
            if self.closing:
                raise self._gave_up(error, operation, state, write, "the engine was closed")
            if attempts is None:
                attempts = (policy or self.retry).attempts(sleep or self.sleep)
            if not await attempts.next():
                why = f"gave up after {state.attempts} attempts"
                raise self._gave_up(error, operation, state, write, why)
            log.debug("%s failed with %s; attempt %d", operation, error.code, state.attempts + 1)

    @staticmethod
    def _gave_up(
        error: DynamoError | None, operation: str, state: CallInfo, write: bool, why: str
    ) -> Exception:
        """The error of a call that stops retrying: unknown outcome once a write may be done."""
        if write and state.maybe_applied:
            code = error.code if error is not None else "EngineClosed"
            message = error.message if error is not None else "no answer"
            result: Exception = OutcomeUnknown(
                code,
                f"{message} ({why}; an earlier attempt may have been applied, so the write "
                "may or may not have happened)",
                operation,
                error.response if error is not None else None,
                status=error.status if error is not None else None,
                request_id=state.request_id,
            )
        elif error is None:
            result = EngineClosed(f"{operation} was not sent: {why}")
        elif why == "the engine was closed":
            result = EngineClosed(f"{operation} was not done ({error.code}): {why}")
        else:
            result = Throttled(
                error.code,
                f"{error.message} ({why})",
                operation,
                error.response,
                status=error.status,
                request_id=error.request_id,
            )
        if error is not None:
            result.__cause__ = error
        return result

    # ------------------------------------------------------------ events

    def _event(
        self,
        service: str,
        operation: str,
        request: Wire,
        response: Wire | None,
        error: BaseException | None,
        model: type | None,
        table: str | None,
        state: CallInfo,
        started: float,
    ) -> CallEvent:
        consumed = None
        if response is not None and "ConsumedCapacity" in response:
            by_table = consumed_by_table(operation, response)
            for name, capacity in by_table.items():
                have = self._consumed.get(name)
                self._consumed[name] = capacity if have is None else have + capacity
            consumed = total(by_table)
        return CallEvent(
            service=service,
            operation=operation,
            table=table if table is not None else table_of(request),
            model=model,
            duration=time.perf_counter() - started,
            attempts=state.attempts,
            consumed=consumed,
            request_id=state.request_id,
            error=error,
            items=item_count(operation, request, response),
        )

    def _emit(self, event: CallEvent) -> None:
        if _debug():
            log.debug(
                "%s %s table=%s attempts=%d %.1f ms request_id=%s%s",
                event.service,
                event.operation,
                event.table,
                event.attempts,
                event.duration * 1000,
                event.request_id,
                "" if event.error is None else f" error={type(event.error).__name__}",
            )
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                listener_log.exception("listener %r failed on %s", listener, event.operation)

    def consumed(self) -> Mapping[str, ConsumedCapacity]:
        """Capacity consumed so far, per table (with `consumed_capacity=True`)."""
        return dict(self._consumed)

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Start no new call or retry; wait until every attempt in flight has ended."""
        self.closing = True
        if self._in_flight:
            self._idle = anyio.Event()
            with anyio.CancelScope(shield=True):
                await self._idle.wait()


def _debug() -> bool:
    return log.isEnabledFor(logging.DEBUG)
