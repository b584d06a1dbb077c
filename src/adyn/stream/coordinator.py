"""The stream coordinator: shard lineage, the task group, merge order, heartbeat, partitions.

```
Stream (async with: owns one task group)
└── generation (one per position; `move_to` replaces it)
    ├── table reader loop, one per table (source.py): lists shards (DescribeStream, every
    │   page), launches a poller for each shard whose parent is read to its end, and lists again
    │   with backoff while a closed shard's children are missing
    ├── shard pollers (shard.py) ──pages, end markers──▶ one bounded buffer ──▶ consumer
    ├── heartbeat: renews iterators that wait on a full buffer
    └── dispatcher (with `partitions(n)`): routes each record to the worker of its item
```

Order: a child's poller starts only after its parent's poller has put the parent's end marker in
the buffer, and the buffer is first in, first out, so every record of a parent reaches the
consumer before any record of its children; within a shard, records keep sequence order.
Failures of background tasks are kept and raised to the consumer (never as an exception group);
leaving `async with` cancels every task.
"""

from __future__ import annotations

import base64
import logging
import random
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import anyio
import orjson
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from ..errors import RecordsExpired
from .clock import Clock, SystemClock, alarm
from .pacing import Pacing, StreamStats
from .position import Origin, encode_token, initial_ledgers, parse_position
from .record import Record, StreamSource, decode_record
from .shard import Call, Item, ReadContext, ShardEnd
from .source import TableReader

__all__ = ["Stream"]

log = logging.getLogger("adyn.stream")

Position = str | datetime
Sources = Callable[[], Awaitable[Sequence[StreamSource]]]


class Generation:
    """Every task reading from one starting position, in one cancel scope."""

    def __init__(self, stream: Stream, sources: list[TableReader]) -> None:
        self.stream = stream
        self.sources = sources
        self.send, self.recv = anyio.create_memory_object_stream[Item](stream.pacing.buffer)
        self.scope = anyio.CancelScope()
        self.heartbeat_scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self.tg: TaskGroup | None = None
        self.workers = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            with self.scope:
                async with anyio.create_task_group() as tg:
                    self.tg = tg
                    with self.send:
                        for source in self.sources:
                            source.gen = self
                            source.send = self.send.clone()
                            self.spawn(source.run)
                    tg.start_soon(self._heartbeat)
                    task_status.started()
        finally:
            self.finished.set()

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        assert self.tg is not None
        self.workers += 1
        self.tg.start_soon(self._worker, fn)

    async def _worker(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        finally:
            self.workers -= 1
            if self.workers == 0:
                self.heartbeat_scope.cancel()

    async def _heartbeat(self) -> None:
        stream = self.stream
        with self.heartbeat_scope:
            while True:
                await stream.clock.sleep(stream.pacing.heartbeat_interval)
                for source in self.sources:
                    await source.refresh_iterators()

    def fail(self, exc: BaseException) -> None:
        """Stop this generation; the consumer's next call raises `exc`."""
        if self.stream._gen is not self or self.scope.cancel_called:
            return  # a replaced generation winding down
        if self.stream._error is None:
            self.stream._error = exc
        self.scope.cancel()


def partition_of(record: Record, n: int) -> int:
    """The partition of a record's item: stable across processes and runs."""
    model = record.model
    keys = record.raw["dynamodb"]["Keys"]
    name = f"{model.__module__}.{model.__qualname__}".encode()
    body = orjson.dumps(keys, option=orjson.OPT_SORT_KEYS, default=_bytes_as_base64)
    return zlib.crc32(body, zlib.crc32(name)) % n


def _bytes_as_base64(value: Any) -> str:
    # The slow path gives binary key values as bytes, the fast path as base64: hash them alike.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot hash {type(value).__name__} in a stream key")


class _Partition:
    """One worker's share of a partitioned stream (an async iterator of `Record`)."""

    def __init__(self, stream: Stream, index: int) -> None:
        self._stream = stream
        self._index = index

    def __aiter__(self) -> _Partition:
        return self

    async def __anext__(self) -> Record:
        stream = self._stream
        while True:
            if stream._error is not None:
                raise stream._error
            receive = stream._part_recv[self._index]
            try:
                return await receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if stream._error is not None:
                    raise stream._error from None
                if stream._switching is not None:
                    await stream._switching.wait()
                    continue
                if stream._part_recv[self._index] is not receive:
                    continue
                raise StopAsyncIteration from None


class Stream:
    """A DynamoDB stream (of one or several tables) as one async iterator of `Record`.

    Open it with `async with`; see `engine.stream(...)` and docs/streams.md.
    - `position`: "trim_horizon", "latest", an aware datetime (records created at or after its
      second), or a token from `stream.token`.
    - `on_trim`: "raise" raises `RecordsExpired` when records the position needs were trimmed
      away; "skip" logs the gap and goes on.
    - `clock`, `pacing`, `rng`: time source, tuning and jitter (tests use virtual time).
    """

    def __init__(
        self,
        *,
        call: Call,
        sources: Sources,
        position: Position = "latest",
        on_trim: Literal["raise", "skip"] = "raise",
        clock: Clock | None = None,
        pacing: Pacing | None = None,
        rng: random.Random | None = None,
        observe: Callable[[datetime], None] | None = None,
    ) -> None:
        if on_trim not in ("raise", "skip"):
            raise ValueError(f"on_trim must be 'raise' or 'skip', not {on_trim!r}")
        self._origin = parse_position(position)
        self._call = call
        self._sources_fn = sources
        self.on_trim = on_trim
        self.clock: Clock = clock or SystemClock()
        self.pacing = pacing or Pacing()
        self.rng = rng or random.Random()
        self._observe = observe  # told each delivered record's creation time (telemetry)
        self.stats = StreamStats()
        self._state = "new"
        self._specs: list[StreamSource] = []
        self._sources: list[TableReader] = []
        self._floor: float | None = None
        self._carry: dict[str, Mapping[str, str]] = {}
        self._tg: TaskGroup | None = None
        self._gen: Generation | None = None
        self._error: BaseException | None = None
        self._switching: anyio.Event | None = None
        self._page: Any = None
        self._index = 0
        self._partitions = 0
        self._part_recv: list[MemoryObjectReceiveStream[Record]] = []

    def __repr__(self) -> str:
        models = ", ".join(s.model.__name__ for s in self._specs) or "?"
        return f"<Stream of {models} {self._state}>"

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Stream:
        if self._state != "new":
            raise RuntimeError("a Stream can be opened only once; create a new one")
        self._state = "opening"
        try:
            specs = list(await self._sources_fn())
            arns = [spec.stream_arn for spec in specs]
            if not specs or len(set(arns)) != len(arns):
                raise ValueError("a stream needs one or more sources with distinct stream ARNs")
            self._specs = specs
            sources = await self._prepare(self._origin)
            tg = anyio.create_task_group()
            await tg.__aenter__()
            self._tg = tg
            try:
                await self._start(sources)
            except BaseException as exc:
                await self._shutdown(exc)
                raise
        except BaseException:
            self._state = "closed"
            raise
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = "closed"
        await self._shutdown(exc)

    async def _shutdown(self, exc: BaseException | None) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        tg.cancel_scope.cancel()
        if exc is None or isinstance(exc, Exception):
            # The body's own exception propagates as it is, not wrapped in an exception group.
            await tg.__aexit__(None, None, None)
        else:
            await tg.__aexit__(type(exc), exc, exc.__traceback__)

    async def _prepare(self, origin: Origin) -> list[TableReader]:
        """List every source's shards and place each shard at the position (caller's task)."""
        floor = origin.floor
        if origin.kind == "latest":
            floor = self.clock.utcnow().timestamp() - self.pacing.latest_margin
        sources = []
        for spec in self._specs:
            ctx = ReadContext(
                spec, self._call, self.clock, self.pacing, self.on_trim, floor, self.stats, self.rng
            )
            source = TableReader(ctx)
            status, infos = await source.describe()
            ledgers, lost = initial_ledgers(origin, source.arn, infos)
            if lost:
                message = (
                    f"the stream position points into shards of {source.arn} that DynamoDB no "
                    f"longer keeps (records older than 24 hours are trimmed): {', '.join(lost)}"
                )
                if self.on_trim == "raise":
                    raise RecordsExpired(message)
                self.stats.trimmed_gaps += len(lost)
                log.warning("skipping a gap: %s", message)
            source.ledgers = ledgers
            source.merge(status, infos)
            if origin.kind == "latest":
                await source.pin_latest()
            sources.append(source)
        self._floor = floor
        arns = {spec.stream_arn for spec in self._specs}
        self._carry = {arn: e for arn, e in origin.streams.items() if arn not in arns}
        return sources

    async def _start(self, sources: list[TableReader]) -> None:
        assert self._tg is not None
        gen = Generation(self, sources)
        self._sources = sources
        self._gen = gen
        self._page = None
        await self._tg.start(gen.run)
        if self._partitions:
            self._start_dispatcher(gen)

    # ------------------------------------------------------------ consuming

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Record:
        self._check_direct()
        return await self._take(False)

    # The API takes a timeout measured on the stream's clock, which may be virtual.
    async def next(self, timeout: float | None = None) -> Record | None:  # noqa: ASYNC109
        """The next record, or None if none arrives within `timeout` seconds (or the stream
        ended)."""
        self._check_direct()
        if timeout is None:
            try:
                return await self._take(False)
            except StopAsyncIteration:
                return None
        result: Record | None = None
        error: Exception | None = None
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(alarm, self.clock, timeout, scope)
                try:
                    result = await self._take(False)
                except StopAsyncIteration:
                    pass
                except Exception as exc:
                    error = exc
                tg.cancel_scope.cancel()
        if error is not None:
            raise error
        return result

    def _check_direct(self) -> None:
        if self._state in ("new", "opening"):
            raise RuntimeError("open the stream first: `async with engine.stream(...) as s`")
        if self._partitions:
            raise RuntimeError("this stream is split into partitions; iterate those instead")

    async def _take(self, tracked: bool) -> Record:
        """The next record of the current generation (cancel-safe at its only await)."""
        while True:
            if self._error is not None:
                raise self._error
            if self._state == "closed":
                raise StopAsyncIteration
            page = self._page
            if page is not None:
                index = self._index
                records = page.records
                if index < len(records):
                    self._index = index + 1
                    raw = records[index]
                    ack = page.ledger.deliver(raw["dynamodb"]["SequenceNumber"], tracked)
                    skip = page.source.skip
                    if skip is not None and skip(raw["dynamodb"]["Keys"]):
                        if ack is not None:
                            ack()  # passed over: nothing is left to do for it
                        continue
                    record = decode_record(raw, page.source, page.shard_id, ack)
                    if self._observe is not None:
                        self._observe(record.created_at)
                    return record
                self._page = None
            gen = self._gen
            if gen is None:
                raise StopAsyncIteration
            try:
                item = await gen.recv.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if self._error is not None:
                    raise self._error from None
                if self._switching is not None:
                    await self._switching.wait()
                    continue
                if gen is not self._gen:
                    continue
                raise StopAsyncIteration from None
            if isinstance(item, ShardEnd):
                item.ledger.ended = True
            else:
                self._page = item
                self._index = 0

    @property
    def token(self) -> str:
        """A JSON-safe string; `position=token` resumes right after the last record received
        (with partitions: after the records every worker has marked `done()`)."""
        if not self._sources:
            raise RuntimeError("a stream has a token only once it is open")
        streams: dict[str, Mapping[str, str]] = dict(self._carry)
        for source in self._sources:
            streams[source.arn] = source.token_entries()
        return encode_token(self._floor, streams)

    async def move_to(self, position: Position) -> None:
        """Read from `position` from now on (same forms as `engine.stream(position=...)`)."""
        if self._state != "open":
            raise RuntimeError("move_to needs an open stream")
        origin = parse_position(position)
        switching = self._switching = anyio.Event()
        try:
            old = self._gen
            if old is not None:
                old.scope.cancel()
                await old.finished.wait()
                old.recv.close()
                for receive in self._part_recv:
                    receive.close()
            self._page = None
            self._error = None
            try:
                sources = await self._prepare(origin)
                await self._start(sources)
            except Exception as exc:
                self._error = exc
                raise
        finally:
            self._switching = None
            switching.set()

    # ------------------------------------------------------------ partitions

    def partitions(self, n: int) -> list[AsyncIterator[Record]]:
        """Split the stream into `n` async iterators, one per worker.

        Every record of an item goes to the same partition, so per-item order holds. Call
        `record.done()` when a record's work is finished: `stream.token` then covers only
        records finished by every worker.
        """
        if self._state != "open":
            raise RuntimeError("partitions() needs an open stream")
        if n < 1:
            raise ValueError("partitions(n) needs n >= 1")
        if self._partitions:
            raise RuntimeError("partitions() can be called only once per stream")
        self._partitions = n
        assert self._gen is not None
        self._start_dispatcher(self._gen)
        return [_Partition(self, i) for i in range(n)]

    def _start_dispatcher(self, gen: Generation) -> None:
        pairs = [
            anyio.create_memory_object_stream[Record](self.pacing.partition_buffer)
            for _ in range(self._partitions)
        ]
        self._part_recv = [receive for _, receive in pairs]
        sends = [send for send, _ in pairs]
        if gen.finished.is_set():
            for send in sends:
                send.close()
            return

        async def dispatch() -> None:
            with ExitStack() as stack:
                for send in sends:
                    stack.enter_context(send)
                try:
                    while True:
                        record = await self._take(True)
                        await sends[partition_of(record, len(sends))].send(record)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    gen.fail(exc)

        gen.spawn(dispatch)
