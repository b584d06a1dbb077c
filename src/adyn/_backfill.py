"""The machinery behind `engine.backfill(...)`: a parallel scan that transforms and saves items.

One task per owned scan segment reads pages (the next page is fetched while this one is worked
on); the objects of a page are handed to the user's function concurrently, within the engine's
connection limit. Each save is conditioned on the item being unchanged since it was read
(`atomic=True`): a refused save reads the item again and calls the function on the fresh object,
up to `MAX_CONFLICTS` times. A save whose outcome is unknown (the connection broke after it was
sent) is settled by reading the item back.

Writes pass a `WriteLimiter`: at most `max_writes_per_second`, and adaptive: a write to the
table that needed retries (the engine's listeners tell: for a conditional write only a throttle
or a refused connection is retried) or that was throttled past the engine's retries halves the
rate (at most once a second); after settling, the rate climbs back by 5 % of the ceiling per
second. A throttled scan waits and resumes on its own
(`_segment_pages`): reads have a capacity of their own.

Progress is committed a page at a time: a segment's position moves to the token after a page
only once every object of that page is settled, together with the counts of that page. The
checkpoint file (JSON, replaced atomically: write a temporary file, fsync, rename) holds those
positions and counts; it is written every `CHECKPOINT_INTERVAL` seconds while anything changed,
and when the run ends (marked complete when every owned segment finished). After a crash, the
pages that were in flight are read again: the function sees those objects a second time, so it
must leave an object it already transformed alone (return None), as every backfill function
should. Counts stay exact: they describe committed pages only.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from ._files import write_atomically
from ._segment_pages import segment_pages
from ._writes import set_state, state_of
from .backfill import BackfillProgress, BackfillReport, FailedItem
from .errors import (
    AdynError,
    ConstraintViolation,
    InvalidArgument,
    OutcomeUnknown,
    Throttled,
    UniqueViolation,
)
from .retry import RetryPolicy
from .schema import ModelSchema, schema_of

if TYPE_CHECKING:
    from .engine import Engine
    from .events import CallEvent
    from .model import Model

log = logging.getLogger("adyn.backfill")

PAGE_SIZE = 100  # items per scan page: what a crash can make the function see twice
MAX_CONFLICTS = 8  # re-reads of one item whose save keeps being refused
CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoint writes while the run makes progress
PROGRESS_INTERVAL = 0.5  # seconds between progress calls while pages are long
# Waits of an item whose save was throttled after the engine's own retries (long: a backfill
# should outlast a busy table rather than give up on items).
THROTTLE_PATIENCE = RetryPolicy(max_attempts=20, base=0.2, cap=10.0)
_FORMAT = "adyn-backfill/1"
_DONE = "done"

Transform = Callable[[Any], Any]
Progress = Callable[[BackfillProgress], object]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# ---------------------------------------------------------------------- the write rate


class WriteLimiter:
    """Spaces writes out to a rate that backs off when DynamoDB throttles.

    `ceiling`: the most writes per second ever allowed (None: no ceiling; writes go as fast as
    they can until the first throttle, then from half the rate observed at that moment). After
    a cut the rate settles for `SETTLE` seconds, then climbs back by 5 % of the ceiling (or of
    the rate first observed) each second.
    """

    MIN_RATE = 1.0
    COOLDOWN = 1.0  # one cut per second, however many concurrent writes saw the throttle
    SETTLE = 5.0  # seconds after a cut before the rate starts climbing again
    WINDOW = 1.0  # seconds of writes the observed rate counts

    def __init__(
        self, ceiling: float | None, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep
    ) -> None:
        self.ceiling = ceiling
        self.rate: float | None = ceiling
        self._clock = clock
        self._sleep = sleep
        self._reference = ceiling  # what the climb back is measured against
        self._next = 0.0
        self._started = clock()
        self._last_cut = -math.inf
        self._last_raise = self._started
        self._recent: deque[float] = deque()  # when the writes of the last WINDOW started

    async def acquire(self) -> None:
        """Wait for the next write's slot."""
        now = self._clock()
        self._recover(now)
        if self.rate is not None:
            slot = max(self._next, now)
            self._next = slot + 1.0 / self.rate
            if slot > now:
                await self._sleep(slot - now)
                now = slot
        self._recent.append(now)
        self._prune(now)

    def throttled(self) -> bool:
        """DynamoDB throttled a write: halve the rate (True if it was cut now)."""
        now = self._clock()
        if now - self._last_cut < self.COOLDOWN:
            return False
        if self.rate is None:
            self._reference = base = max(self.observed(now), self.MIN_RATE)
        else:
            base = self.rate
        self.rate = max(self.MIN_RATE, base / 2)
        self._last_cut = self._last_raise = now
        log.info("throttled: writes slowed to %.1f per second", self.rate)
        return True

    def observed(self, now: float | None = None) -> float:
        """Writes per second over the last `WINDOW` seconds (or since the start)."""
        now = self._clock() if now is None else now
        self._prune(now)
        span = min(self.WINDOW, max(now - self._started, 1e-3))
        return len(self._recent) / span

    def _prune(self, now: float) -> None:
        recent, oldest = self._recent, now - self.WINDOW
        while recent and recent[0] < oldest:
            recent.popleft()

    def _recover(self, now: float) -> None:
        if self.rate is None or now - self._last_cut < self.SETTLE:
            return
        seconds = math.floor(now - self._last_raise)
        if seconds < 1:
            return
        step = max(1.0, 0.05 * (self._reference or self.rate)) * seconds
        self.rate += step
        if self.ceiling is not None:
            self.rate = min(self.ceiling, self.rate)
        self._last_raise += seconds


# ---------------------------------------------------------------------- counts


class _Counts:
    __slots__ = ("changed", "conflicts", "failed", "scanned", "throttled")

    def __init__(self) -> None:
        self.scanned = self.changed = self.conflicts = self.throttled = 0
        self.failed: list[FailedItem] = []

    def add(self, other: _Counts) -> None:
        self.scanned += other.scanned
        self.changed += other.changed
        self.conflicts += other.conflicts
        self.throttled += other.throttled
        self.failed.extend(other.failed)


# ---------------------------------------------------------------------- the checkpoint file


class Checkpoint:
    """Positions and counts of one backfill, in a JSON file replaced atomically."""

    def __init__(self, path: Path, identity: dict[str, Any], schema: ModelSchema) -> None:
        self.path = path
        self.identity = identity
        self.schema = schema

    def load(self) -> dict[str, Any] | None:
        """The saved state, None when the file does not exist (blocking: run in a thread)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidArgument(f"checkpoint {self.path}: cannot read it: {exc}") from None
        try:
            state = orjson.loads(raw)
            if not isinstance(state, dict) or state.get("format") != _FORMAT:
                raise ValueError("not an adyn backfill checkpoint")
        except ValueError as exc:
            raise InvalidArgument(f"checkpoint {self.path}: {exc}") from None
        theirs = {k: state.get(k) for k in self.identity}
        if theirs != self.identity:
            differs = ", ".join(
                f"{k} {theirs[k]!r} (now {v!r})" for k, v in self.identity.items() if theirs[k] != v
            )
            raise InvalidArgument(
                f"checkpoint {self.path} belongs to another backfill: {differs}; "
                "resume it with the same model, table and segments, or use a new file"
            )
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write the state: temporary file, fsync, rename (blocking: run in a thread)."""
        data = orjson.dumps(
            {"format": _FORMAT, **self.identity, **state}, option=orjson.OPT_INDENT_2
        )
        write_atomically(self.path, data)

    def encode_failure(self, failure: FailedItem) -> dict[str, Any]:
        return {"key": to_jsonable_python(failure.key), "error": failure.error}

    def decode_failure(self, entry: dict[str, Any]) -> FailedItem:
        key: dict[str, Any] = {}
        for name, value in entry["key"].items():
            info = self.schema.model.model_fields.get(name)
            annotation = info.annotation if info is not None else None
            try:
                key[name] = TypeAdapter(annotation).validate_python(value) if annotation else value
            except ValueError:
                key[name] = value
        return FailedItem(key, entry["error"])


# ---------------------------------------------------------------------- one run


class _Run:
    def __init__(
        self,
        engine: Engine,
        model: type[Model],
        fn: Transform,
        *,
        owned: list[int],
        total: int,
        limiter: WriteLimiter,
        checkpoint: Checkpoint | None,
        progress: Progress | None,
    ) -> None:
        self.engine = engine
        self.model = model
        self.schema = schema_of(model)
        self.fn = fn
        self.owned = owned
        self.total = total
        self.limiter = limiter
        self.checkpoint = checkpoint
        self.progress = progress
        self.positions: dict[int, str | None] = dict.fromkeys(owned)
        self.committed = _Counts()
        self.live = _Counts()
        self.dirty = False
        # objects in flight across every segment (acquired by the page, released by the item)
        self.slots = anyio.Semaphore(engine.max_connections)
        self._last_progress = -math.inf
        self._reported: tuple[int, ...] = ()
        self.key_names = [s.name for s in self.schema.key_fields]
        self.table = engine.table_name(model)

    # -------------------------------------------------------------- state

    def restore(self, state: dict[str, Any]) -> None:
        for name, value in state.get("positions", {}).items():
            segment = int(name)
            if segment in self.positions:
                self.positions[segment] = value
        counts = state.get("counts", {})
        for counts_of in (self.committed, self.live):
            counts_of.scanned = int(counts.get("scanned", 0))
            counts_of.changed = int(counts.get("changed", 0))
            counts_of.conflicts = int(counts.get("conflicts", 0))
            counts_of.throttled = int(counts.get("throttled", 0))
            assert self.checkpoint is not None
            counts_of.failed = [self.checkpoint.decode_failure(f) for f in state.get("failed", [])]

    def state(self, complete: bool) -> dict[str, Any]:
        assert self.checkpoint is not None
        c = self.committed
        return {
            "complete": complete,
            "positions": {str(s): p for s, p in self.positions.items()},
            "counts": {
                "scanned": c.scanned,
                "changed": c.changed,
                "conflicts": c.conflicts,
                "throttled": c.throttled,
            },
            "failed": [self.checkpoint.encode_failure(f) for f in c.failed],
        }

    @property
    def finished(self) -> bool:
        return all(p == _DONE for p in self.positions.values())

    def report(self) -> BackfillReport:
        c = self.committed
        return BackfillReport(
            scanned=c.scanned,
            changed=c.changed,
            conflicts=c.conflicts,
            throttled=c.throttled,
            failed=tuple(c.failed),
            segments=tuple(self.owned),
            total_segments=self.total,
        )

    async def write_checkpoint(self, complete: bool = False) -> None:
        if self.checkpoint is None:
            return
        state = self.state(complete)
        self.dirty = False
        await anyio.to_thread.run_sync(self.checkpoint.save, state)

    def report_progress(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        c = self.live
        counts = (c.scanned, c.changed, c.conflicts, len(c.failed), c.throttled)
        done = sum(p == _DONE for p in self.positions.values())
        snapshot = (*counts, done)
        if not force and (snapshot == self._reported or now - self._last_progress < 0.05):
            return
        self._reported, self._last_progress = snapshot, now
        try:
            self.progress(BackfillProgress(*counts, done, len(self.owned)))
        except Exception:
            log.exception("the backfill's progress callback failed (the backfill goes on)")

    # -------------------------------------------------------------- tasks

    async def run(self) -> None:
        """Work every owned segment to its end; the checkpoint is written however it ends."""
        errors: list[BaseException] = []
        listeners = self.engine.listeners
        listeners.append(self._on_call)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._workers, errors, tg.cancel_scope)
                tg.start_soon(self._guarded, self._ticker(), errors, tg.cancel_scope)
        finally:
            listeners.remove(self._on_call)
            with anyio.CancelScope(shield=True):
                await self.write_checkpoint(complete=self.finished and not errors)
        if errors:
            raise errors[0]
        self.report_progress(force=True)

    def _on_call(self, event: CallEvent) -> None:
        """Every call of the engine: a write to this table that needed retries was throttled
        (a call that failed is counted where its error surfaces)."""
        if (
            event.attempts > 1
            and event.error is None
            and event.operation == "UpdateItem"
            and event.table == self.table
        ):
            self._throttled()

    def _throttled(self) -> None:
        self.live.throttled += 1
        self.committed.throttled += 1
        self.limiter.throttled()

    async def _workers(self, errors: list[BaseException], everything: anyio.CancelScope) -> None:
        try:
            async with anyio.create_task_group() as tg:
                for segment in self.owned:
                    if self.positions[segment] != _DONE:
                        tg.start_soon(
                            self._guarded, self._segment(segment), errors, tg.cancel_scope
                        )
        finally:
            everything.cancel()  # the ticker

    @staticmethod
    async def _guarded(
        work: Awaitable[None], errors: list[BaseException], scope: anyio.CancelScope
    ) -> None:
        """Run `work`; its first error (unwrapped from task groups) stops its scope."""
        try:
            await work
        except Exception as exc:
            while isinstance(exc, BaseExceptionGroup) and isinstance(exc.exceptions[0], Exception):
                exc = exc.exceptions[0]
            errors.append(exc)
            scope.cancel()

    async def _ticker(self) -> None:
        last_write = time.monotonic()
        while True:
            await anyio.sleep(PROGRESS_INTERVAL / 2)
            self.report_progress()
            if self.dirty and time.monotonic() - last_write >= CHECKPOINT_INTERVAL:
                await self.write_checkpoint()
                last_write = time.monotonic()

    async def _segment(self, segment: int) -> None:
        send, receive = anyio.create_memory_object_stream[Any](1)

        def on_throttle() -> None:  # reads have their own capacity: the write rate stays
            self.live.throttled += 1
            self.committed.throttled += 1

        async def read() -> None:
            async with send:
                pages = segment_pages(
                    self.engine,
                    self.model,
                    (segment, self.total),
                    self.positions[segment],
                    page_size=PAGE_SIZE,
                    on_throttle=on_throttle,
                )
                async for page in pages:
                    await send.send(page)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            async with receive:
                async for page in receive:
                    await self._page(segment, page)

    async def _page(self, segment: int, page: Any) -> None:
        counts = _Counts()
        async with anyio.create_task_group() as tg:
            for obj in page.items:
                await self.slots.acquire()
                tg.start_soon(self._item, obj, counts)
        for key, error in page.broken:
            counts.scanned += 1
            self.live.scanned += 1
            self._fail(counts, key, error)
        self.committed.add(counts)
        self.positions[segment] = page.token if page.token is not None else _DONE
        self.dirty = True
        self.report_progress(force=True)

    # -------------------------------------------------------------- one object

    async def _item(self, obj: Any, counts: _Counts) -> None:
        try:
            counts.scanned += 1
            self.live.scanned += 1
            await self._transform(obj, counts)
        finally:
            self.slots.release()
        self.report_progress()

    async def _transform(self, obj: Any, counts: _Counts) -> None:
        key = {name: obj.__dict__.get(name) for name in self.key_names}
        # through a table model each object is the entity its item names: its own schema
        # (templates, version, fields) decides its key and what a save changes
        wire_key = schema_of(type(obj)).key_of(obj)
        current = obj
        for _ in range(MAX_CONFLICTS + 1):
            try:
                result = self.fn(current)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                self._fail(counts, key, exc)
                return
            if result is None:
                return
            problem = self._check_result(current, result, wire_key)
            if problem is not None:
                self._fail(counts, key, InvalidArgument(problem))
                return
            if not self._differs(result):
                return
            try:
                fresh = await self._save(result, key, counts)
            except AdynError as exc:
                self._fail(counts, key, exc)
                return
            if fresh is None:
                return
            current = fresh
        self._fail(
            counts,
            key,
            ConstraintViolation(
                f"{type(obj).__name__}: the item changed {MAX_CONFLICTS + 1} times while it was "
                "being transformed; it was left as the other writers made it",
                obj,
            ),
        )

    async def _save(self, result: Any, key: dict[str, Any], counts: _Counts) -> Any:
        """Save conditionally. None when done; else the fresh object to transform again."""
        attempts = THROTTLE_PATIENCE.attempts()
        while True:
            await self.limiter.acquire()
            try:
                await self.engine.save(result, atomic=True)
            except UniqueViolation:
                raise  # another item holds the value: no re-read changes that (a failure)
            except ConstraintViolation as exc:
                counts.conflicts += 1
                self.live.conflicts += 1
                fresh: Any = exc.item if exc.item is not None and state_of(exc.item) else None
                if fresh is None:
                    fresh = await self.engine.get(self.model, consistent=True, **key)
                return fresh  # None: deleted meanwhile, nothing left to transform
            except OutcomeUnknown:
                fresh = await self.engine.get(self.model, consistent=True, **key)
                if fresh is None:
                    return None
                if self._same_fields(fresh, result):  # the write was applied after all
                    counts.changed += 1
                    self.live.changed += 1
                    return None
                return fresh
            except Throttled:
                self._throttled()
                if not await attempts.next():
                    raise
                continue
            counts.changed += 1
            self.live.changed += 1
            return None

    def _check_result(self, current: Any, result: Any, wire_key: dict[str, Any]) -> str | None:
        if type(result) is not type(current):
            return (
                f"the backfill function returned {type(result).__name__}; it must return the "
                f"{type(current).__name__} it was given (changed), or None to leave it"
            )
        try:
            same_key = schema_of(type(result)).key_of(result) == wire_key
        except AdynError:
            same_key = False
        if not same_key:
            return "the backfill function changed the object's key; keys cannot change"
        if result is not current and state_of(result) is None:  # a new object: as read
            set_state(result, state_of(current))
        return None

    def _differs(self, obj: Any) -> bool:
        """Whether saving `obj` would change its stored item (its version aside)."""
        before = schema_of(type(obj)).stored_values(obj)
        if before is None:
            return True
        return not self._same_values(type(obj), before, obj.__dict__)

    def _same_fields(self, a: Any, b: Any) -> bool:
        if type(a) is not type(b):
            return False
        return self._same_values(type(a), a.__dict__, b.__dict__)

    def _same_values(self, model: Any, left: dict[str, Any], right: dict[str, Any]) -> bool:
        version = schema_of(model).version
        skip = version.name if version is not None else None
        names = (set(left) | set(right)) - {skip}
        return all(left.get(n, _MISSING) == right.get(n, _MISSING) for n in names)

    def _fail(self, counts: _Counts, key: dict[str, Any], error: BaseException) -> None:
        failure = FailedItem(dict(key), f"{type(error).__name__}: {error}", error)
        counts.failed.append(failure)
        self.live.failed.append(failure)
        log.warning("%s %s: %s", self.schema.name, key, failure.error)


_MISSING = object()


# ---------------------------------------------------------------------- the entry point


def _check_arguments(
    fn: Any, segments: Any, max_writes_per_second: Any, segment: Any
) -> tuple[list[int], int]:
    if not callable(fn):
        raise InvalidArgument(f"backfill() takes a function (object -> object | None), not {fn!r}")
    if (
        not isinstance(segments, int)
        or isinstance(segments, bool)
        or not 1 <= segments <= 1_000_000
    ):
        raise InvalidArgument(
            f"backfill(): segments must be an int from 1 to 1,000,000, not {segments!r}"
        )
    if max_writes_per_second is not None and (
        isinstance(max_writes_per_second, bool)
        or not isinstance(max_writes_per_second, int | float)
        or not max_writes_per_second > 0
        or not math.isfinite(max_writes_per_second)
    ):
        raise InvalidArgument(
            "backfill(): max_writes_per_second must be a positive number or None, "
            f"not {max_writes_per_second!r}"
        )
    if segment is None:
        return list(range(segments)), segments
    ok = (
        isinstance(segment, tuple)
        and len(segment) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in segment)
    )
    if not ok or not 0 <= segment[0] < segment[1]:
        raise InvalidArgument(
            f"backfill(): segment must be a tuple (i, n) of ints with 0 <= i < n, not {segment!r}"
        )
    share, machines = segment
    total = machines * segments
    if total > 1_000_000:
        raise InvalidArgument(
            f"backfill(): segment n times segments is {total}; DynamoDB allows 1,000,000 segments"
        )
    return list(range(share * segments, (share + 1) * segments)), total


async def run_backfill(
    engine: Engine,
    model: type[Model],
    fn: Transform,
    *,
    segments: int,
    max_writes_per_second: float | None,
    checkpoint: str | os.PathLike[str] | None,
    progress: Progress | None,
    segment: tuple[int, int] | None,
) -> BackfillReport:
    owned, total = _check_arguments(fn, segments, max_writes_per_second, segment)
    engine.scan(model)  # NotBound / EngineClosed now, before anything else happens
    schema = schema_of(model)
    store = None
    if checkpoint is not None:
        path = Path(os.fspath(checkpoint))
        if not await anyio.to_thread.run_sync(path.parent.is_dir):
            raise InvalidArgument(f"checkpoint {path}: the folder {path.parent} does not exist")
        identity = {
            "model": f"{model.__module__}.{model.__qualname__}",
            "table": engine.table_name(model),
            "total_segments": total,
            "segments": owned,
        }
        store = Checkpoint(path, identity, schema)
    run = _Run(
        engine,
        model,
        fn,
        owned=owned,
        total=total,
        limiter=WriteLimiter(max_writes_per_second),
        checkpoint=store,
        progress=progress,
    )
    if store is not None:
        state = await anyio.to_thread.run_sync(store.load)
        if state is not None:
            run.restore(state)
            if state.get("complete"):
                log.info("checkpoint %s is complete: nothing to do", store.path)
                run.report_progress(force=True)
                return run.report()
    await run.run()
    return run.report()
