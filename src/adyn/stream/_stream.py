"""`Stream`: the consumer's side of a DynamoDB stream. Its lifecycle (`async with`), consuming
(`async for`, `next`), positions (`token`, `move_to`), `partitions(n)` and, in a consumer group,
`commit()`.

The reading itself happens in a generation (`_generation.py`) that `Stream` owns through its
task group; failures of background tasks are kept and raised to the consumer as themselves
(never as an exception group), and an exception raised in the `async with` block leaves it
unchanged. Leaving the block cancels every task.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from ..errors import (
    DynamoError,
    InvalidArgument,
    InvalidItem,
    InvalidState,
    RecordsExpired,
    ResourceNotFoundError,
    specific,
)
from ._clock import Budget, Clock, RateLimiter, SystemClock, next_within
from ._generation import Chain, Generation
from ._pacing import Pacing, StreamStats
from ._partitions import Partition, Partitions
from ._position import Origin, caught_up, encode_token, initial_ledgers, parse_position
from ._record import Record, decode_record
from ._shard import Page, ReadContext, ShardEnd
from ._source import StreamCall, StreamSource, list_streams, stream_chain
from ._table_reader import TableReader

if TYPE_CHECKING:
    from ._generation import Source
    from ._group import GroupMember, GroupSpec

__all__ = ["Stream"]

log = logging.getLogger("adyn.stream")

M = TypeVar("M", covariant=True)  # records only come out: a Stream[Post] is a Stream[Model]
Position = str | datetime
Sources = Callable[[], Awaitable[Sequence[StreamSource]]]


def _mapped(call: StreamCall) -> StreamCall:
    """`call`, raising each service error as its class (see `adyn.errors.specific`)."""

    async def mapped(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return await call(operation, request)
        except DynamoError as exc:
            raise specific(exc) from exc.__cause__

    return mapped


class Stream(Generic[M]):
    """A DynamoDB stream (of one or several tables) as one async iterator of `Record`.

    Open it with `async with`; see `engine.stream(...)` and docs/streams.md.
    - `position`: "trim_horizon", "latest", an aware datetime (records created at or after its
      second), or a token from `stream.token`.
    - `on_trim`: "raise" raises `RecordsExpired` when records the position needs were trimmed
      away; "skip" logs the gap and goes on.
    - `clock`, `pacing`, `rng`: time source, tuning and jitter (tests use virtual time).
    - `group`: read as one member of a consumer group (see `engine.stream(group=...)`).
    - `observe`: told each delivered record's creation time (telemetry: the stream's lag).
    """

    def __init__(
        self,
        *,
        call: StreamCall,
        sources: Sources,
        position: Position = "latest",
        on_trim: Literal["raise", "skip"] = "raise",
        clock: Clock | None = None,
        pacing: Pacing | None = None,
        rng: random.Random | None = None,
        group: GroupSpec | None = None,
        observe: Callable[[datetime], None] | None = None,
    ) -> None:
        if on_trim not in ("raise", "skip"):
            raise InvalidArgument(f"on_trim must be 'raise' or 'skip', not {on_trim!r}")
        self._origin = parse_position(position)
        self._call = _mapped(call)
        self._sources_fn = sources
        self.on_trim = on_trim
        self.clock: Clock = clock or SystemClock()
        self.pacing = pacing or Pacing()
        self.rng = rng or random.Random()
        self.stats = StreamStats()
        self._observe = observe
        self.describes = RateLimiter(self.clock, self.pacing.describe_rate)
        self._group_spec = group
        self.member: GroupMember | None = None
        self._state = "new"
        self._specs: list[StreamSource] = []
        self._readers: list[TableReader] = []
        self._floor: float | None = None
        self._carry: dict[str, dict[str, str]] = {}
        self._tg: TaskGroup | None = None
        self._gen: Generation | None = None
        self._error: BaseException | None = None
        self._switching: anyio.Event | None = None
        self._page: Page | None = None
        self._index = 0
        self._partitions: Partitions | None = None
        self._next_budget = Budget(self.pacing.buffer)  # the records the next generation holds

    def __repr__(self) -> str:
        models = ", ".join(s.model.__name__ for s in self._specs) or "?"
        group = f" group={self._group_spec.name!r}" if self._group_spec else ""
        return f"<Stream of {models}{group} {self._state}>"

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Stream[M]:
        if self._state != "new":
            raise InvalidState("a Stream can be opened only once; create a new one")
        self._state = "opening"
        try:
            specs = list(await self._sources_fn())
            arns = [spec.stream_arn for spec in specs]
            if not specs or len(set(arns)) != len(arns):
                raise InvalidArgument(
                    "a stream needs one or more sources with distinct stream ARNs"
                )
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
        member = self.member
        if member is not None and self._state == "open":
            await member.leave(self._gen)
        self._state = "closed"
        await self._shutdown(exc)

    async def _shutdown(self, exc: BaseException | None) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        tg.cancel_scope.cancel()
        # Never hand the body's exception to the task group: anyio would wrap it in an
        # exception group (so `sys.exit(3)` would no longer exit with 3). Returning lets it
        # propagate exactly as it was raised.
        try:
            await tg.__aexit__(None, None, None)
        except BaseException:
            if exc is None:
                raise
            log.debug("a stream task failed while the block was raising", exc_info=True)

    def _context(self, spec: StreamSource, arn: str, floor: float | None) -> ReadContext:
        return ReadContext(
            spec,
            arn,
            self._call,
            self.clock,
            self.pacing,
            self.on_trim,
            floor,
            self.stats,
            self.rng,
            self._next_budget,
            self.describes,
        )

    async def _prepare(self, origin: Origin) -> list[Source]:
        """List every source's shards and place each shard at the position (caller's task)."""
        self._next_budget = Budget(self.pacing.buffer)
        floor = origin.floor
        if origin.kind == "latest":
            floor = self.clock.utcnow().timestamp() - self.pacing.latest_margin
        if self._group_spec is not None:
            return await self._prepare_member(origin, floor)
        chains: list[Source] = []
        readers: list[TableReader] = []
        named = set()
        for spec in self._specs:
            arns, gone = await stream_chain(self._call, spec, origin)
            named.update(gone)
            for arn in gone:
                named_entries = origin.streams.get(arn, {})
                lost = [shard for shard, entry in named_entries.items() if not caught_up(entry)]
                if lost:
                    self._lost(arn, lost, f"stream {arn} of table {spec.table} is gone")
            chain = []
            for arn in arns:
                named.add(arn)
                reader = TableReader(self._context(spec, arn, floor), arn)
                entries: Mapping[str, str] | None = (
                    origin.streams.get(arn) if origin.kind == "token" else None
                )
                try:
                    status, infos = await reader.describe()
                except ResourceNotFoundError:
                    if arn == spec.stream_arn:
                        raise
                    lost = [s for s, e in (entries or {}).items() if not caught_up(e)]
                    if lost:
                        self._lost(arn, lost, f"stream {arn} of table {spec.table} is gone")
                    continue
                ledgers, lost = initial_ledgers(
                    entries, infos, latest=origin.kind == "latest" and arn == spec.stream_arn
                )
                if lost:
                    self._lost(arn, lost, f"stream {arn} no longer keeps shards")
                reader.ledgers = ledgers
                reader.merge(status, infos)
                if origin.kind == "latest":
                    await reader.pin_latest()
                chain.append(reader)
            readers += chain
            chains.append(Chain(chain, self._newer_streams(spec, floor)))
        self._floor = floor
        self._readers = readers
        self._carry = {
            arn: dict(entries) for arn, entries in origin.streams.items() if arn not in named
        }
        return chains

    def _newer_streams(
        self, spec: StreamSource, floor: float | None
    ) -> Callable[[str], Awaitable[list[TableReader]]] | None:
        """For a chain of `spec`'s table: the streams enabled after `arn`, ready to read from
        their trim horizon."""
        table = spec.table
        if table is None:
            return None

        async def newer(arn: str) -> list[TableReader]:
            # Labels are creation times: later streams sort after (even once `arn` is gone).
            label = arn.rsplit("/stream/", 1)[-1]
            listed = await list_streams(self._call, table)
            readers = []
            for later in [a for lab, a in listed if lab > label]:
                reader = TableReader(self._context(spec, later, floor), later)
                status, infos = await reader.describe()
                reader.merge(status, infos)
                readers.append(reader)
            return readers

        return newer

    def _lost(self, arn: str, shards: list[str], what: str) -> None:
        message = (
            f"the stream position points into records that DynamoDB no longer keeps ({what}; "
            f"records older than 24 hours are trimmed): {', '.join(shards)}"
        )
        if self.on_trim == "raise":
            raise RecordsExpired(message)
        self.stats.trimmed_gaps += len(shards)
        log.warning("skipping a gap: %s", message)

    async def _prepare_member(self, origin: Origin, floor: float | None) -> list[Source]:
        from ._group import GroupMember

        spec = self._group_spec
        assert spec is not None
        member = GroupMember(self, spec, origin, floor)
        await member.join()
        self.member = member
        self._floor = member.floor
        return [member]

    async def _start(self, sources: list[Source]) -> None:
        assert self._tg is not None
        gen = Generation(self, sources)
        gen.budget = self._next_budget
        self._gen = gen
        self._page = None
        await self._tg.start(gen.run)
        if self._partitions is not None:
            self._partitions.attach(gen)

    def _fail(self, gen: Generation, exc: BaseException) -> None:
        if self._gen is not gen or gen.scope.cancel_called:
            return  # a replaced generation winding down
        if self._error is None:
            self._error = exc
        gen.scope.cancel()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    async def _before_delivery(self, record: Record[Any]) -> None:
        """Wait, in a group, while this member's leases may have lapsed (see `_group.py`)."""
        member = self.member
        if member is not None and record._ledger is not None:
            await member.hold_while_unsure()

    # ------------------------------------------------------------ consuming

    def __aiter__(self) -> Stream[M]:
        return self

    async def __anext__(self) -> Record[M]:
        self._check_direct()
        return await self._take()

    # The API takes a timeout measured on the stream's clock, which may be virtual.
    async def next(self, timeout: float | None = None) -> Record[M] | None:  # noqa: ASYNC109
        """The next record, or None if none arrives within `timeout` seconds (or the stream
        ended)."""
        self._check_direct()
        return await next_within(self.clock, timeout, self._take)

    def _check_direct(self) -> None:
        if self._state in ("new", "opening"):
            raise InvalidState("open the stream first: `async with engine.stream(...) as s`")
        if self._partitions is not None:
            raise InvalidState("this stream is split into partitions; iterate those instead")

    async def _take(self) -> Record[M]:
        """The next record of the current generation (cancel-safe at its awaits)."""
        tracked = self.member is not None
        while True:
            self._raise_failure()
            if self._state == "closed":
                raise StopAsyncIteration
            page = self._page
            gen = self._gen
            if page is not None and gen is not None:
                ledger = page.ledger
                records = page.records
                index = self._index
                if ledger.revoked:
                    gen.budget.release(len(records) - index)
                    self._page = None
                    continue
                if index < len(records):
                    if ledger.lease is not None and self.member is not None:
                        await self.member.hold_while_unsure()
                        if ledger.revoked or self._page is not page:
                            continue
                    self._index = index + 1
                    gen.budget.release(1)
                    raw = records[index]
                    seq = raw["dynamodb"]["SequenceNumber"]
                    lease = ledger.lease
                    try:
                        record: Record[M] = decode_record(
                            raw,
                            page.source if page.routes is None else page.routes[index],
                            page.shard_id,
                            lease_epoch=None if lease is None else lease.epoch,
                            ledger=ledger,
                        )
                    except InvalidItem:
                        ledger.block(seq)  # never counted as delivered: no token passes it
                        raise
                    ack = ledger.deliver(seq, tracked)
                    if ack is not None:
                        object.__setattr__(record, "_ack", ack)
                    if self._observe is not None:
                        self._observe(record.created_at)
                    return record
                self._page = None
            if gen is None:
                raise StopAsyncIteration
            try:
                item = await gen.recv.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._raise_failure()
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
        if self._group_spec is not None:
            raise InvalidArgument(
                "a consumer group keeps its position in its lease table: use "
                "`await stream.commit()` instead of `stream.token`"
            )
        if not self._readers:
            raise InvalidState("a stream has a token only once it is open")
        streams: dict[str, dict[str, str]] = dict(self._carry)
        for reader in self._readers:
            entries = reader.token_entries()
            if entries or reader.arn not in streams:
                streams[reader.arn] = entries
        return encode_token(self._floor, streams)

    async def move_to(self, position: Position) -> None:
        """Read from `position` from now on (same forms as `engine.stream(position=...)`)."""
        if self._state != "open":
            raise InvalidState("move_to needs an open stream")
        if self._group_spec is not None:
            raise InvalidArgument("a consumer group member cannot move_to(): the group decides")
        origin = parse_position(position)
        switching = self._switching = anyio.Event()
        try:
            old = self._gen
            if old is not None:
                old.scope.cancel()
                await old.finished.wait()
                old.recv.close()
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

    def partitions(self, n: int) -> list[Partition[M]]:
        """Split the stream into `n` async iterators, one per worker.

        Every record of an item goes to the same partition, so per-item order holds. Call
        `record.done()` when a record's work is finished: `stream.token` (and a group's
        checkpoints) then cover only records finished by every worker.
        """
        if self._state != "open":
            raise InvalidState("partitions() needs an open stream")
        if not isinstance(n, int) or n < 1:
            raise InvalidArgument("partitions(n) needs an int n >= 1")
        if self._partitions is not None:
            raise InvalidState("partitions() can be called only once per stream")
        if self._page is not None:
            raise InvalidState("partitions() must be called before the first record is taken")
        parts = self._partitions = Partitions(self, n)
        assert self._gen is not None
        parts.attach(self._gen)
        return [Partition(parts, i) for i in range(n)]

    # ------------------------------------------------------------ groups

    async def commit(self) -> None:
        """Checkpoint, in the group's lease table, every record finished (`record.done()`) so
        far on the shards this member holds. Leases lost meanwhile are left as they are: a
        member that lost a lease never moves its checkpoint."""
        member = self.member
        if member is None:
            raise InvalidArgument(
                "commit() is for consumer groups (engine.stream(..., group=...)); "
                "outside a group, store `stream.token`"
            )
        if self._state != "open":
            raise InvalidState("commit() needs an open stream")
        await member.commit()
