"""Consumer groups: many processes share one stream, each shard read by one member at a time.

`engine.stream(Post, group="indexer")` makes the stream one member of the group. Its
`GroupMember` runs one loop, every `failover / 3` seconds of its own clock:

1. heartbeat: add one to its member item's counter (one write, whatever the number of leases);
2. read the group's items (leases, members) from the lease table (`_leases.py`);
3. judge the others, on its own monotonic clock only (no wall clocks are compared across
   machines): a member whose counter has not changed for `failover` seconds since this member
   first saw that value is dead, and so are its leases (as the Kinesis Client Library judges
   leases, by a counter and the observer's clock);
4. drop the leases that are no longer its own (another member took them: a higher epoch);
5. share out the leases that can be read now (not done, parent done, the table's previous
   stream done) among the live members, ordered by id, `n // m` each and one more for the
   first `n % m`: release what is above its share (checkpointing first), take free and dead
   leases up to it (a conditional write on the epoch seen: the new owner gets epoch + 1);
6. the first member in that order (the leader) lists every shard every
   `Pacing.discovery_interval` and creates the missing leases (shard sync).

A member's own leases are valid until `failover` seconds (its clock) after the start of its last
heartbeat that was followed by a read confirming them: an observer cannot see that heartbeat
before it was written, so it cannot judge the member dead before then. Past that point (a
paused process, a throttled lease table) the member hands out no record until a heartbeat and a
read have confirmed which leases are still its own.

Each held lease has a poller (`_shard.py`) started at the lease's checkpoint. The member
checkpoints the `done()` watermark of each lease every `commit_interval`, on
`stream.commit()`, when a shard is finished (its lease then says "done" and is released, so
children can be taken), and when leaving the block, where it also releases every lease and
deletes its member item. When a shard ends, the member looks up its children (DescribeStream
with `ShardFilter`) and creates their leases, so they need not wait for the leader.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..errors import DynamoError, InvalidArgument, OutcomeUnknown
from ._clock import wait_for
from ._leases import DONE, DbCall, LeaseItem, LeaseTable, TableView, lease_key
from ._position import Ledger, Origin, ShardInfo, initial_ledgers, parse_entry
from ._shard import Item, ReadContext, Shard, ShardReader
from ._source import StreamSource, list_streams, stream_chain
from ._table_reader import list_children, list_shards, refresh_iterator

if TYPE_CHECKING:
    from ._generation import Generation
    from ._stream import Stream

__all__ = ["GroupMember", "GroupSpec", "Lease"]

log = logging.getLogger("adyn.stream.group")

LEAVE_PATIENCE = 10.0  # seconds (real) a leaving member spends checkpointing and releasing
# Each member's cap on lease-table writes: a group's items share one partition (1,000 writes a
# second), so forty members at full speed still fit.
LEASE_WRITES_PER_SECOND = 25.0


@dataclass
class GroupSpec:
    """A consumer group as `engine.stream(group=...)` describes it.

    `call` sends DynamoDB calls (the lease table's) with the engine's retries; `ensure`
    creates the lease table when it is missing (None: the member creates it itself).
    """

    name: str
    table: str
    call: DbCall
    ensure: Callable[[], Awaitable[None]] | None = None
    failover: float = 30.0
    commit_interval: float = 10.0
    member_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgument("group must be a non-empty string")
        if not isinstance(self.table, str) or not self.table:
            raise InvalidArgument("lease_table must be a non-empty string")
        for name, value in (("failover", self.failover), ("commit_interval", self.commit_interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgument(f"{name} must be a positive number of seconds, not {value!r}")


@dataclass
class Lease:
    """A lease this member holds: what fences its writes, and the reading under it."""

    member: GroupMember
    item: LeaseItem
    epoch: int
    shard: Shard
    ctx: ReadContext
    written: tuple[str | None, frozenset[str]]  # the checkpoint last written (entry, skip)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    lock: anyio.Lock = field(default_factory=anyio.Lock)  # around every write of this lease
    ended: bool = False  # its poller read the shard to its end
    lost: bool = False

    @property
    def key(self) -> str:
        return self.item.key

    @property
    def ledger(self) -> Ledger:
        return self.shard.ledger


class GroupMember:
    """One member of a consumer group inside a `Stream` (see the module docstring)."""

    def __init__(self, stream: Stream[Any], spec: GroupSpec, origin: Origin, floor: float | None):
        self.stream = stream
        self.spec = spec
        self.origin = origin
        self.floor = floor
        self.clock = stream.clock
        # From the stream's generator: a test that seeds it gets the same members every run.
        self.id = f"{stream.rng.getrandbits(64):016x}"
        self.name = spec.member_name or f"{socket.gethostname()}:{os.getpid()}"
        self.table = LeaseTable(
            spec.call, spec.table, spec.name, self.clock, LEASE_WRITES_PER_SECOND
        )
        self.held: dict[str, Lease] = {}
        self.seen: dict[str, tuple[int, float]] = {}  # member -> (counter, when first seen)
        self.view: TableView | None = None
        self.valid_until = float("-inf")
        self._sure = anyio.Event()
        self._wake = anyio.Event()
        self._next_sync = float("-inf")
        self._stopping = False
        self._cycling = anyio.Lock()  # held while a cycle runs, and while leaving
        self.gen: Generation | None = None
        self.send: MemoryObjectSendStream[Item] | None = None
        self._let_go: set[str] = set()  # leases written away since the last read
        self._arns: dict[str, StreamSource] = {}  # stream arn -> the source it belongs to
        self._contexts: dict[str, ReadContext] = {}

    def __repr__(self) -> str:
        return f"<GroupMember {self.spec.name}/{self.id} leases={len(self.held)}>"

    @property
    def interval(self) -> float:
        return self.spec.failover / 3

    # ------------------------------------------------------------ joining

    async def join(self) -> None:
        """Make sure the lease table and the group exist, and announce this member."""
        if self.spec.ensure is not None:
            await self.spec.ensure()
        else:
            await self.table.ensure()
        for spec in self.stream._specs:
            arns, _ = await stream_chain(self.stream._call, spec, Origin("trim_horizon"))
            for arn in arns:
                self._arns[arn] = spec
        await self._heartbeat()
        view = await self.table.read()
        if view.group is None:
            created = self.clock.utcnow().timestamp()
            if await self.table.create_group(created, self.floor):
                log.info("created consumer group %r in %s", self.spec.name, self.spec.table)
                await self._sync(initial=True)
            view = await self.table.read()
        assert view.group is not None
        self.floor = view.group.floor
        self._observe(view)
        self.view = view
        # The group's creator listed every shard just now; a leader lists them again a full
        # interval later (members joining together would otherwise all list at once).
        self._next_sync = self.clock.now() + self.stream.pacing.discovery_interval

    def _spec_for(self, arn: str) -> StreamSource | None:
        """The source a stream belongs to: a table's stream enabled after this member joined
        belongs to that table's source too."""
        spec = self._arns.get(arn)
        if spec is None:
            table = arn.split("/stream/", 1)[0]
            for candidate in self.stream._specs:
                if candidate.table is not None and candidate.stream_arn.startswith(table + "/"):
                    spec = self._arns[arn] = candidate
                    break
        return spec

    def _context(self, arn: str) -> ReadContext | None:
        ctx = self._contexts.get(arn)
        if ctx is None:
            spec = self._spec_for(arn)
            if spec is None:
                return None
            ctx = self._contexts[arn] = self.stream._context(spec, arn, self.floor)
        return ctx

    # ------------------------------------------------------------ the loop

    async def run(self, gen: Generation, send: MemoryObjectSendStream[Item]) -> None:
        self.gen, self.send = gen, send
        with send:
            next_commit = self.clock.now() + self.spec.commit_interval
            while not self._stopping:
                async with self._cycling:
                    if self._stopping:
                        return
                    await self._cycle()
                if self.clock.now() >= next_commit:
                    await self.commit()
                    next_commit = self.clock.now() + self.spec.commit_interval
                self._wake = anyio.Event()
                wait = min(self.interval, max(0.0, next_commit - self.clock.now()))
                await wait_for(self._wake, self.clock, wait)

    def wake(self) -> None:
        self._wake.set()

    async def _cycle(self) -> None:
        started = self.clock.now()
        try:
            await self._heartbeat()
            view = await self.table.read()
        except DynamoError as exc:
            log.warning("consumer group %r: the lease table failed: %s", self.spec.name, exc)
            return
        self.view = view
        self._let_go.clear()
        self._observe(view)
        self._drop_lost(view)
        # Idle shards share Pacing.idle_poll_rate across the whole group, not per member.
        share = self.stream.pacing.idle_poll_rate / len(self.live(view))
        for ctx in self._contexts.values():
            ctx.idle_rate = share
        self.valid_until = started + self.spec.failover
        self._sure.set()
        self._sure = anyio.Event()
        await self._finish_done()
        await self._rebalance(view)
        if self._leader(view) and self.clock.now() >= self._next_sync:
            await self._sync(initial=False)

    async def _heartbeat(self) -> None:
        started = self.clock.now()
        await self.table.heartbeat(self.id, self.name)
        self.stream.stats.lease_writes += 1
        if not self.held:  # nothing to fence yet: valid from this heartbeat on
            self.valid_until = started + self.spec.failover

    async def hold_while_unsure(self) -> None:
        """Wait, before handing out a record, while this member's leases may have lapsed."""
        while self.clock.now() >= self.valid_until and not self._stopping:
            self.wake()
            await self._sure.wait()

    def _observe(self, view: TableView) -> None:
        now = self.clock.now()
        seen = self.seen
        for member in view.members.values():
            previous = seen.get(member.id)
            if previous is None or previous[0] != member.counter:
                seen[member.id] = (member.counter, now)
        for gone in set(seen) - set(view.members):
            del seen[gone]

    def live(self, view: TableView) -> list[str]:
        """The members alive on this member's clock, in order (this member always is)."""
        now = self.clock.now()
        alive = {m for m, (_, since) in self.seen.items() if now - since < self.spec.failover}
        alive.add(self.id)
        return sorted(alive)

    def _leader(self, view: TableView) -> bool:
        return self.live(view)[0] == self.id

    # ------------------------------------------------------------ sharing out

    def available(self, view: TableView) -> list[LeaseItem]:
        """Leases that can be read now: not done, parent done (or gone), earlier streams of
        the table done, and of a stream this member reads."""
        leases = view.leases
        unfinished_streams = {lease.stream for lease in leases.values() if not lease.done}
        ready = []
        for lease in leases.values():
            if lease.done or self._spec_for(lease.stream) is None:
                continue
            parent = leases.get(lease.parent) if lease.parent else None
            if parent is not None and not parent.done:
                continue
            if any(arn in unfinished_streams for arn in lease.after):
                continue
            ready.append(lease)
        ready.sort(key=lambda lease: lease.key)
        return ready

    async def _rebalance(self, view: TableView) -> None:
        live = self.live(view)
        ready = self.available(view)
        share, extra = divmod(len(ready), len(live))
        target = share + (1 if live.index(self.id) < extra else 0)
        mine = [lease for lease in self.held.values() if not lease.ended]
        # Leases the table says are this member's but it does not read (a take whose answer
        # was lost): adopt them.
        for item in ready:
            if item.owner == self.id and item.key not in self.held and item.key not in self._let_go:
                self._start(item, item.epoch)
        if len(mine) > target:
            extra_leases = sorted(mine, key=lambda lease: lease.key, reverse=True)
            for lease in extra_leases[: len(mine) - target]:
                await self._release(lease)
            return
        alive = set(live)
        free = [
            item
            for item in ready
            if item.key not in self.held
            and item.key not in self._let_go
            and (item.owner is None or item.owner not in alive)
        ]
        if free:
            # Members start their takes at different places, so that members joining together
            # do not all race for the same leases.
            offset = live.index(self.id) * len(free) // len(live)
            free = free[offset:] + free[:offset]
        for item in free[: max(0, target - len(mine))]:
            try:
                epoch = await self.table.take(item, self.id)
            except OutcomeUnknown:
                continue  # if it was applied, the next read shows it as ours: adopted then
            except DynamoError as exc:
                log.info("could not take lease %s: %s", item.key, exc)
                continue
            self.stream.stats.lease_writes += 1
            if epoch is not None:
                self.stream.stats.leases_taken += 1
                log.info(
                    "member %s took lease %s (epoch %d, from %s)",
                    self.id,
                    item.key,
                    epoch,
                    item.owner or "nobody",
                )
                self._start(item, epoch)

    def _start(self, item: LeaseItem, epoch: int) -> None:
        ctx = self._context(item.stream)
        gen = self.gen
        if ctx is None or gen is None or self.send is None or gen.scope.cancel_called:
            return
        if self._stopping:
            return
        ledger = Ledger() if item.checkpoint is None else Ledger.from_entry(item.checkpoint)
        ledger.skip = item.skip
        shard = Shard(ShardInfo(item.shard, None, False), ledger)
        lease = Lease(self, item, epoch, shard, ctx, (item.checkpoint, item.skip))
        ledger.lease = lease
        self.held[item.key] = lease
        if ledger.done:
            lease.ended = True
            return
        send = self.send.clone()
        reader = ShardReader(lease.shard, ctx, send, lambda _: self._ended(lease), gen.fail)

        async def read() -> None:
            with lease.scope:
                await reader.run()

        gen.spawn(read)

    def _ended(self, lease: Lease) -> None:
        lease.ended = True
        self.wake()

    def _revoke(self, lease: Lease) -> None:
        if lease.lost:
            return
        lease.lost = True
        lease.ledger.revoked = True
        lease.scope.cancel()
        self.held.pop(lease.key, None)
        self.stream.stats.leases_lost += 1

    def _drop_lost(self, view: TableView) -> None:
        for lease in list(self.held.values()):
            item = view.leases.get(lease.key)
            if item is None or item.owner != self.id or item.epoch != lease.epoch:
                log.info(
                    "member %s lost lease %s (now %s, epoch %s)",
                    self.id,
                    lease.key,
                    None if item is None else item.owner,
                    None if item is None else item.epoch,
                )
                self._revoke(lease)

    async def _release(self, lease: Lease) -> None:
        """Give a lease up to rebalance: stop reading it now (records not handed out yet go to
        the next owner), checkpoint what is done, and release it."""
        lease.scope.cancel()
        lease.ledger.revoked = True
        await self._write(lease, release=True)
        self.held.pop(lease.key, None)
        self._let_go.add(lease.key)

    async def _finish_done(self) -> None:
        """Leases whose shard is read to its end and every record done: "done", released."""
        for lease in list(self.held.values()):
            if lease.ended and lease.ledger.done and await self._write(lease, release=True):
                self.held.pop(lease.key, None)
                self._let_go.add(lease.key)
                await self._children(lease)

    # ------------------------------------------------------------ checkpoints

    def _state(self, lease: Lease) -> tuple[str | None, frozenset[str]]:
        """The checkpoint a write of this lease would carry now."""
        ledger = lease.ledger
        entry = ledger.entry()
        if entry is None or entry == DONE:
            return entry, frozenset()
        mark = parse_entry(entry).seq
        assert mark is not None
        skip = {s for s in (ledger.skip | ledger.tx_done) if int(s) > int(mark)}
        return entry, frozenset(skip)

    async def _write(self, lease: Lease, *, release: bool = False) -> bool:
        """Write the lease's checkpoint (and release it); False if the lease was lost."""
        async with lease.lock:
            if lease.lost:
                return False
            state = self._state(lease)
            if state == lease.written and not release:
                return True
            entry, skip = state
            try:
                ok = await self.table.checkpoint(
                    lease.key, self.id, lease.epoch, entry, skip, release=release
                )
            except DynamoError as exc:
                log.warning("could not checkpoint lease %s: %s", lease.key, exc)
                return False
            self.stream.stats.lease_writes += 1
            if not ok:
                log.info(
                    "member %s: lease %s was taken over; its checkpoint stays", self.id, lease.key
                )
                self._revoke(lease)
                return False
            lease.written = state
            return True

    async def commit(self) -> None:
        """Checkpoint every held lease whose `done()` watermark moved."""
        for lease in list(self.held.values()):
            await self._write(lease)
        await self._finish_done()

    # ------------------------------------------------------------ shard sync

    async def _children(self, lease: Lease) -> None:
        """A finished shard's children get leases now, without waiting for the leader; a shard
        that ends without children (its stream was disabled) makes this member sync, so that
        the table's next stream gets leases too."""
        ctx = lease.ctx
        item = lease.item
        try:
            children = await list_children(ctx, item.stream, item.shard)
            for child in children:
                key = lease_key(item.stream, child.shard_id)
                if await self.table.create_lease(
                    LeaseItem(key, item.stream, child.shard_id, parent=lease.key)
                ):
                    self.stream.stats.lease_writes += 1
            if not children:
                await self._sync(initial=False)
        except DynamoError as exc:
            log.info("could not look up the children of %s: %s", lease.key, exc)
        self.wake()

    async def _sync(self, *, initial: bool) -> None:
        """List every shard of every stream and create the missing leases (the leader's job;
        `initial`: the group was just created, so `position=` places the shards)."""
        self._next_sync = self.clock.now() + self.stream.pacing.discovery_interval
        view = self.view if not initial else None
        known = dict(view.leases) if view is not None else {}
        origin = self.origin if initial else Origin("trim_horizon")
        for spec in self.stream._specs:
            arns, _ = await stream_chain(
                self.stream._call, spec, origin if initial else Origin("trim_horizon")
            )
            if spec.table is not None and not initial:
                arns = [a for _, a in await list_streams(self.stream._call, spec.table)] or arns
            earlier: list[str] = []
            for arn in arns:
                self._arns.setdefault(arn, spec)
                ctx = self._context(arn)
                assert ctx is not None
                try:
                    _, infos = await list_shards(ctx, arn)
                except DynamoError as exc:
                    log.info("shard sync: could not list %s: %s", arn, exc)
                    earlier.append(arn)
                    continue
                entries = origin.streams.get(arn) if origin.kind == "token" else None
                ledgers, lost = initial_ledgers(
                    entries,
                    infos,
                    latest=initial and origin.kind == "latest" and arn == spec.stream_arn,
                )
                if lost:
                    self.stream._lost(arn, lost, f"stream {arn} no longer keeps shards")
                listed = {info.shard_id for info in infos}
                for info in _lineage_order(infos):
                    key = lease_key(arn, info.shard_id)
                    if key in known:
                        continue
                    parent = info.parent_id if info.parent_id in listed else None
                    ledger = ledgers.get(info.shard_id)
                    checkpoint = ledger.entry() if ledger is not None else None
                    item = LeaseItem(
                        key,
                        arn,
                        info.shard_id,
                        parent=lease_key(arn, parent) if parent else None,
                        after=tuple(earlier) if parent is None else (),
                        checkpoint=checkpoint,
                    )
                    if await self.table.create_lease(item):
                        self.stream.stats.lease_writes += 1
                    known[key] = item
                for key, item in list(known.items()):
                    if item.stream == arn and item.done and item.shard not in listed:
                        await self.table.delete(key)  # read, and trimmed away since
                earlier.append(arn)

    # ------------------------------------------------------------ iterators, leaving

    async def refresh_iterators(self) -> None:
        limit = self.stream.pacing.refresh_after
        for lease in list(self.held.values()):
            if not lease.ended:
                await refresh_iterator(lease.ctx, lease.item.stream, lease.shard, limit)

    async def leave(self, gen: Generation | None) -> None:
        """Checkpoint and release every lease, and say goodbye (best effort, bounded)."""
        self._stopping = True
        self._sure.set()
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + LEAVE_PATIENCE
            # A cycle under way (it may be taking a lease) ends first; none starts after.
            async with self._cycling:
                for lease in list(self.held.values()):
                    lease.scope.cancel()
                try:
                    for lease in list(self.held.values()):
                        await self._write(lease, release=True)
                    await self.table.leave(self.id)
                except DynamoError as exc:
                    log.warning(
                        "consumer group %r: leaving cleanly failed: %s", self.spec.name, exc
                    )
        self.held.clear()


def _lineage_order(infos: Sequence[ShardInfo]) -> list[ShardInfo]:
    """Shards with every parent before its children (parents' leases are created first)."""
    by_id = {info.shard_id: info for info in infos}
    ordered: list[ShardInfo] = []
    placed: set[str] = set()

    def place(info: ShardInfo) -> None:
        if info.shard_id in placed:
            return
        parent = by_id.get(info.parent_id) if info.parent_id else None
        if parent is not None:
            place(parent)
        placed.add(info.shard_id)
        ordered.append(info)

    for info in infos:
        place(info)
    return ordered
