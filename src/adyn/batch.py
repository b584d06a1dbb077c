"""Batch reads (`engine.load`) and batch writes (`engine.batch()`).

Both split work into DynamoDB's request limits (100 keys / 25 writes), send requests
concurrently with a bound, and resend unprocessed keys or items under the engine's
`RetryPolicy`. Every entry ends in exactly one account: done, not done (`BatchIncomplete.objects`)
or, for writes whose request may have reached DynamoDB before the connection failed, unknown
(`BatchIncomplete.unknown`). `engine.batch(progress=fn)` calls `fn(BatchProgress(...))` as each
request's entries are settled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orjson import Fragment, dumps, loads

from ._calls import CallInfo
from ._concurrency import run_bounded
from ._context import Context
from ._encoder import encode_checked
from ._writes import set_state, state_of
from .errors import BatchIncomplete, DynamoError, InvalidItem, MissingObjects, OutcomeUnknown
from .schema import ItemState, ModelSchema

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Batch", "BatchProgress", "load_objects"]

log = logging.getLogger("adyn.batch")

Wire = dict[str, Any]
Identity = tuple[str, tuple[Any, ...]]

READ_CHUNK = 100
WRITE_CHUNK = 25
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def identity(table: str, key: Wire) -> Identity:
    """Who a key belongs to, the same for every wire form of equal values ("1.50"/"1.5") and
    distinct for values that trade places between hash and range."""
    return _identity_of(table, key, sorted(key))


def _identity_of(table: str, wire: Wire, names: Iterable[str]) -> Identity:
    parts = []
    for name in names:
        ((tag, value),) = wire[name].items()
        if tag == "N":
            value = Decimal(value).normalize()
        parts.append((name, tag, value))
    return table, tuple(parts)


def _key_names(schema: ModelSchema) -> list[str]:
    return [s.wire for s in schema.key_fields]


_SORTED_KEYS: dict[ModelSchema, tuple[str, ...]] = {}


def item_identity(table: str, item: Wire, schema: ModelSchema) -> Identity:
    """`identity` of an item's key, read from the item itself (no key dict built)."""
    names = _SORTED_KEYS.get(schema)
    if names is None:
        names = _SORTED_KEYS[schema] = tuple(sorted(_key_names(schema)))
    return _identity_of(table, item, names)


def fill(obj: Any, schema: ModelSchema, item: Wire, table: str) -> bool:
    """Overwrite an object's fields with a stored item (in place); False when the item is one
    a shared table's rule skips (it names no known entity)."""
    decoded = schema.read(item, table)
    if decoded is None:
        return False
    if type(decoded) is not type(obj):
        raise InvalidItem(
            schema.name,
            None,
            f"the item of table {table!r} at {schema.decode_key(item)} is a "
            f"{type(decoded).__name__}; a {type(obj).__name__} object cannot hold it (read it "
            f"with engine.get({type(decoded).__name__}, ...))",
            obj,
        )
    obj.__dict__.clear()
    obj.__dict__.update(decoded.__dict__)
    object.__setattr__(obj, "__pydantic_fields_set__", set(decoded.__pydantic_fields_set__))
    set_state(obj, state_of(decoded))  # what it remembers of `item`: the same values
    return True


# ---------------------------------------------------------------- reads


async def load_objects(ctx: Context, objs: Sequence[Model], consistent: bool) -> None:
    wanted: dict[Identity, list[tuple[Any, ModelSchema]]] = {}
    keys: list[tuple[str, Wire]] = []
    key_names: dict[str, list[str]] = {}
    for obj in objs:
        schema, table = ctx.bound(type(obj))
        key = schema.key_of(obj)
        ident = identity(table, key)
        if ident not in wanted:
            wanted[ident] = []
            keys.append((table, key))
            key_names.setdefault(table, _key_names(schema))
        wanted[ident].append((obj, schema))
    if not keys:
        return

    found: dict[Identity, Wire] = {}
    skipped: set[Identity] = set()  # items a shared table's rule passes over: missing
    unread: list[tuple[str, Wire]] = []
    errors: list[DynamoError] = []
    chunks = [keys[i : i + READ_CHUNK] for i in range(0, len(keys), READ_CHUNK)]

    async def read_chunk(chunk: list[tuple[str, Wire]]) -> None:
        pending = chunk
        attempts = ctx.retry.attempts(ctx.sleep)
        while pending:
            request: dict[str, Wire] = {}
            for table, key in pending:
                entry = request.setdefault(table, {"Keys": []})
                entry["Keys"].append(key)
                if consistent:
                    entry["ConsistentRead"] = True
            try:
                response = await ctx.call("BatchGetItem", {"RequestItems": request})
            except DynamoError as exc:  # throttled to the end, or refused: these keys are unread
                errors.append(exc)
                unread.extend(pending)
                return
            for table, items in (response.get("Responses") or {}).items():
                names = key_names.get(table)
                if names is None:
                    continue
                for item in items:
                    found[identity(table, {n: item[n] for n in names})] = item
            pending = [
                (table, key)
                for table, entry in (response.get("UnprocessedKeys") or {}).items()
                for key in entry.get("Keys", [])
            ]
            if pending and not await attempts.next():
                unread.extend(pending)
                return

    await run_bounded(chunks, read_chunk, max(1, ctx.limit // 2))

    for ident, entries in wanted.items():
        item = found.get(ident)
        if item is not None:
            for obj, schema in entries:
                if not fill(obj, schema, item, ident[0]):
                    skipped.add(ident)
                    break
    not_read = {identity(t, k) for t, k in unread}
    missing = [
        obj
        for ident, entries in wanted.items()
        if (ident not in found or ident in skipped) and ident not in not_read
        for obj, _ in entries
    ]
    if not_read:
        objects = [obj for ident in wanted if ident in not_read for obj, _ in wanted[ident]]
        error = BatchIncomplete(
            f"{len(objects)} object(s) could not be read: DynamoDB kept returning their keys "
            "as unprocessed, throttling, or failing, after every retry",
            objects,
        )
        if missing:
            error.add_note(f"besides, {len(missing)} object(s) have no item: {missing[:5]}")
        if errors:
            raise error from errors[0]
        raise error
    if missing:
        raise MissingObjects(f"{len(missing)} object(s) have no stored item", missing)


# ---------------------------------------------------------------- writes


class _Op:
    """One queued write: a put's item as serialized JSON (`item`), or a delete's `key`.

    A queued put keeps its item as bytes (about a sixth of the memory of the dicts, and nothing
    for the garbage collector to walk), which also becomes what the object remembers of its
    stored item once written.
    """

    __slots__ = ("ident", "item", "key", "obj", "schema", "table")

    def __init__(
        self,
        table: str,
        ident: Identity,
        item: bytes | None,
        key: Wire | None,
        obj: Any,
        schema: ModelSchema,
    ) -> None:
        self.table, self.ident, self.item, self.key = table, ident, item, key
        self.obj, self.schema = obj, schema

    def entry(self, fragments: bool) -> Wire:
        """The request entry: the item embedded as is when the transport takes fragments."""
        if self.item is None:
            return {"DeleteRequest": {"Key": self.key}}
        return {"PutRequest": {"Item": Fragment(self.item) if fragments else loads(self.item)}}


@dataclass(frozen=True)
class BatchProgress:
    """How far a batch is, as its `progress=` callback sees it after each request.

    `written`: puts and deletes done so far; `failed`: those given up (not done); `unknown`:
    those that may or may not have been applied; `total`: every write handed to DynamoDB so far
    (the block's exit and each `flush()` add the writes queued since). Once a flush returns,
    `written + failed + unknown == total`.
    """

    written: int
    failed: int
    unknown: int
    total: int


class Batch:
    """Collects full-item puts and deletes and writes them with BatchWriteItem on exit.

    Each object is checked when it is added (`InvalidItem` at once, nothing sent). On exit the
    writes go out 25 a request, several requests at once; unprocessed items are resent with
    backoff. When something cannot be done, `BatchIncomplete` names exactly what was not written
    (`.objects`) and what may or may not have been (`.unknown`); everything else was written
    once. Operations on the same key run in the order they were added.
    An exception inside the block sends nothing that was not already sent by `await flush()`.
    `progress`: called with a `BatchProgress` as each request's entries are settled (an
    exception in it is logged and never stops the batch).
    """

    def __init__(
        self, ctx: Context, progress: Callable[[BatchProgress], object] | None = None
    ) -> None:
        self._ctx = ctx
        self._ops: list[_Op] = []
        self._flushed: list[Any] = []
        self._progress = progress
        self._counts = [0, 0, 0, 0]  # written, failed, unknown, total

    def save(self, *objs: Model) -> None:
        """Queue a full put of each object (no condition; replaces the whole item)."""
        bound, ops = self._ctx.bound, self._ops
        for obj in objs:
            schema, table = bound(type(obj))
            if schema.unique:
                _refuse_unique(schema, obj, "save")
            item, _ = encode_checked(schema, obj)  # one pass: the item and its size
            ident = item_identity(table, item, schema)
            ops.append(_Op(table, ident, dumps(item), None, obj, schema))

    def delete(self, *objs: Model) -> None:
        """Queue a delete of each object's item (by key)."""
        for obj in objs:
            schema, table = self._ctx.bound(type(obj))
            _refuse_unique(schema, obj, "delete")
            key = schema.key_of(obj)
            self._ops.append(_Op(table, identity(table, key), None, key, obj, schema))

    def __len__(self) -> int:
        return len(self._ops)

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            discarded = len(self._ops)
            self._ops.clear()
            if isinstance(exc, Exception):
                exc.add_note(
                    f"adyn batch: {discarded} queued write(s) were not sent; "
                    f"{len(self._flushed)} had already been written by flush()"
                )
            return
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far (the block's exit does this for you)."""
        ops, self._ops = self._ops, []
        if not ops:
            return
        self._counts[3] += len(ops)
        # Writes to the same key go in successive rounds so their order holds and no request
        # carries one key twice (DynamoDB refuses that).
        rounds: list[list[_Op]] = []
        if len({op.ident for op in ops}) == len(ops):
            rounds.append(ops)  # every key once (the common case): one round
        else:
            depth: dict[Identity, int] = {}
            for op in ops:
                n = depth.get(op.ident, 0)
                depth[op.ident] = n + 1
                if n == len(rounds):
                    rounds.append([])
                rounds[n].append(op)
        outcome = _Outcome()
        for round_ops in rounds:
            await self._write_round(round_ops, outcome)
        if outcome.failed or outcome.unknown:
            settled = {id(op) for op in outcome.failed} | {id(op) for op in outcome.unknown}
            done_ok = [op for op in ops if id(op) not in settled]
        else:
            done_ok = ops
        for op in done_ok:
            set_state(op.obj, None if op.item is None else ItemState(op.item, None))
        self._flushed.extend(op.obj for op in done_ok)
        if outcome.failed or outcome.unknown:
            error = BatchIncomplete(
                f"of {len(ops)} write(s), {len(outcome.failed)} were not done and "
                f"{len(outcome.unknown)} may or may not have been applied (their request may "
                "have reached DynamoDB before the connection failed); everything else was "
                "written once",
                [op.obj for op in outcome.failed],
                [op.obj for op in outcome.unknown],
            )
            if outcome.errors:
                raise error from outcome.errors[0]
            raise error

    async def _write_round(self, ops: list[_Op], outcome: _Outcome) -> None:
        chunks = [ops[i : i + WRITE_CHUNK] for i in range(0, len(ops), WRITE_CHUNK)]
        ctx = self._ctx
        fragments = ctx.accepts_fragments

        async def write_chunk(chunk: list[_Op]) -> None:
            pending = chunk
            uncertain: set[int] = set()  # ops an earlier attempt may have applied
            attempts = ctx.retry.attempts(ctx.sleep)
            while pending:
                by_ident = {op.ident: op for op in pending}
                request: dict[str, list[Wire]] = {}
                for op in pending:
                    request.setdefault(op.table, []).append(op.entry(fragments))
                info = CallInfo()
                try:
                    response = await ctx.call(
                        "BatchWriteItem", {"RequestItems": request}, info=info
                    )
                except OutcomeUnknown as exc:
                    outcome.errors.append(exc)
                    outcome.unknown.extend(pending)
                    self._report(unknown=len(pending))
                    return
                except DynamoError as exc:  # nothing of this request was applied
                    outcome.errors.append(exc)
                    self._give_up(pending, uncertain, outcome)
                    return
                if info.maybe_applied:
                    uncertain.update(id(op) for op in pending)
                left = []
                for table, requests in (response.get("UnprocessedItems") or {}).items():
                    for entry in requests:
                        unprocessed = by_ident.get(_entry_identity(table, entry, pending))
                        if unprocessed is not None:
                            left.append(unprocessed)
                self._report(written=len(pending) - len(left))
                pending = left
                if pending and not await attempts.next():
                    self._give_up(pending, uncertain, outcome)
                    return

        await run_bounded(chunks, write_chunk, max(1, ctx.limit // 2))

    def _give_up(self, pending: list[_Op], uncertain: set[int], outcome: _Outcome) -> None:
        unknown = [op for op in pending if id(op) in uncertain]
        failed = [op for op in pending if id(op) not in uncertain]
        outcome.unknown.extend(unknown)
        outcome.failed.extend(failed)
        self._report(failed=len(failed), unknown=len(unknown))

    def _report(self, written: int = 0, failed: int = 0, unknown: int = 0) -> None:
        counts = self._counts
        counts[0] += written
        counts[1] += failed
        counts[2] += unknown
        if self._progress is None or not (written or failed or unknown):
            return
        try:
            self._progress(BatchProgress(*counts))
        except Exception:
            log.exception("the batch's progress callback failed (the batch goes on)")


def _refuse_unique(schema: ModelSchema, obj: Any, what: str) -> None:
    if schema.unique:
        raise InvalidItem(
            schema.name,
            schema.unique[0].name,
            f"a batch cannot {what} an object with Unique fields: their guard items need a "
            f"conditional write in the same transaction; use engine.{what} or a transaction",
            obj,
        )


class _Outcome:
    """What a flush could not do: not written, maybe written, and the errors behind them."""

    __slots__ = ("errors", "failed", "unknown")

    def __init__(self) -> None:
        self.failed: list[_Op] = []
        self.unknown: list[_Op] = []
        self.errors: list[DynamoError] = []


def _entry_identity(table: str, entry: Wire, pending: Iterable[_Op]) -> Identity:
    put = entry.get("PutRequest")
    item = put["Item"] if put is not None else entry["DeleteRequest"]["Key"]
    for op in pending:
        if op.table == table:
            names = _key_names(op.schema)
            return identity(table, {n: item[n] for n in names if n in item})
    return identity(table, item)
