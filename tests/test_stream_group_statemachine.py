"""A hypothesis state machine drives a consumer group through a split storm while members join,
leave, are killed and are paused, on virtual time over the fake (streams and lease table).

Steps: write, split or roll over shards (children listed late or not), a member joins, leaves
cleanly, is killed (its line to the lease table cut), is paused past failover and resumed, and
time passes. Every member consumes what it gets at once. Checked after every step:

- within one tenure (a shard under one epoch) a member never delivers a record twice;
- per item, each member delivers records in write order;
- a child shard's record is delivered only once every record of its parent was done;
- two tenures of one shard never deliver at the same time (the old owner stops before the new
  one starts: leases are judged on each member's own clock, with the member's heartbeat);
- records held never exceed the buffer;
- in the end, with a member running, every record is delivered.

Budget: `ADYN_GROUP_EXAMPLES` (default 10) examples of up to `ADYN_GROUP_STEPS` (default 25).
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from _groups import GROUP_PACING, Link, member_stream
from adyn.stream import Stream
from adyn.testing.fakes import FakeStreams, VirtualClock

T = TypeVar("T")
EXAMPLES = int(os.environ.get("ADYN_GROUP_EXAMPLES", "10"))
STEPS = int(os.environ.get("ADYN_GROUP_STEPS", "25"))
KEYS = [f"k{i}" for i in range(8)]
MAX_SHARDS = 14
FAILOVER = 30.0


@dataclass
class Delivery:
    seq: int
    key: str
    n: int
    shard: str
    epoch: int
    member: str
    at: float


@dataclass
class Running:
    name: str
    link: Link
    stream: Stream[Any] | None = None
    stop: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)
    deliveries: list[Delivery] = field(default_factory=list)
    alive: bool = True


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()
        self.clock = VirtualClock()
        self.fake = FakeStreams(self.clock, describe_page_size=3)
        self.arn = self.fake.create_stream(shards=2)
        self.members: list[Running] = []
        self.names = iter(f"m{i}" for i in range(1000))
        self.counter = 0
        self.written: dict[int, tuple[str, int, str]] = {}  # seq -> (key, n, shard)
        self.by_shard: dict[str, list[int]] = defaultdict(list)
        self.done: set[int] = set()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def settled() -> T:
            try:
                return await fn(*args)
            finally:
                await self.clock.settle()

        return self.portal.call(settled)

    # ------------------------------------------------------------ members

    def live(self) -> list[Running]:
        return [m for m in self.members if m.alive]

    def start(self) -> Running:
        name = next(self.names)
        member = Running(name, Link(self.fake))
        self.members.append(member)
        member.stream = member_stream(
            self.fake, [self.arn], member.link, name=name, failover=FAILOVER, pacing=GROUP_PACING
        )
        self.portal.start_task_soon(self._run, member)
        self.call(self.clock.advance, 1)
        return member

    async def _run(self, member: Running) -> None:
        stream = member.stream
        assert stream is not None
        try:
            async with stream, anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for record in stream:
                        self.check(member, record)
                        record.done()
                        self.done.add(int(record.sequence_number))

                tg.start_soon(consume)
                await member.stop.wait()
                tg.cancel_scope.cancel()
        finally:
            member.finished.set()

    def check(self, member: Running, record: Any) -> None:
        seq = int(record.sequence_number)
        key, n, shard = self.written[seq]
        assert record.key == {"id": key} and record.shard_id == shard
        assert record.lease_epoch is not None
        for earlier in member.deliveries:
            assert (earlier.seq, earlier.epoch) != (seq, record.lease_epoch), (
                f"{seq} came twice in one tenure"
            )
        mine = [d.n for d in member.deliveries if d.key == key]
        parent = self.fake.parent_of(self.arn, shard)
        if parent is not None:
            unfinished = [s for s in self.by_shard.get(parent, ()) if s not in self.done]
            assert not unfinished, f"{seq} of a child came before {unfinished} of its parent"
        member.deliveries.append(
            Delivery(seq, key, n, shard, record.lease_epoch, member.name, self.clock.now())
        )
        if mine and mine[-1] > n:
            # The same member may see an item again only from a new tenure (replay after a
            # takeover starts at the checkpoint), never going back within one.
            previous = [d for d in member.deliveries if d.key == key][:-1]
            assert previous[-1].epoch != record.lease_epoch or previous[-1].shard != shard, (
                f"{key}: {n} after {mine[-1]} within one tenure"
            )

    # ------------------------------------------------------------ rules

    @initialize(members=st.integers(1, 3))
    def setup(self, members: int) -> None:
        for _ in range(members):
            self.start()

    @rule(n=st.integers(1, 10), first=st.integers(0, len(KEYS) - 1))
    def write(self, n: int, first: int) -> None:
        for i in range(n):
            key = KEYS[(first + i) % len(KEYS)]
            self.counter += 1
            wire = {"id": {"S": key}}
            shard = self.fake.shard_for(self.arn, wire).shard_id
            image = {"id": {"S": key}, "n": {"N": str(self.counter)}}
            seq = int(self.fake.put(self.arn, wire, new=image))
            self.written[seq] = (key, self.counter, shard)
            self.by_shard[shard].append(seq)

    @precondition(lambda self: len(self.fake.shards(self.arn)) < MAX_SHARDS)
    @rule(which=st.integers(0, 5), children=st.sampled_from([1, 2]), late=st.sampled_from([0, 20]))
    def split(self, which: int, children: int, late: int) -> None:
        shards = self.fake.open_shards(self.arn)
        shard = shards[which % len(shards)]
        self.fake.split(self.arn, shard.shard_id, children=children, list_after=late)

    @precondition(lambda self: len(self.live()) < 4)
    @rule()
    def join(self) -> None:
        self.start()

    @precondition(lambda self: len(self.live()) > 1)
    @rule(which=st.integers(0, 3))
    def leave(self, which: int) -> None:
        member = self.live()[which % len(self.live())]
        member.alive = False
        member.stop.set()
        self.call(member.finished.wait)

    @precondition(lambda self: len(self.live()) > 1)
    @rule(which=st.integers(0, 3))
    def kill(self, which: int) -> None:
        member = self.live()[which % len(self.live())]
        member.alive = False
        member.link.cut()  # it can no longer renew, checkpoint or release anything
        member.stop.set()
        self.call(member.finished.wait)

    @precondition(lambda self: len(self.live()) > 1)
    @rule(which=st.integers(0, 3), seconds=st.sampled_from([5.0, 45.0]))
    def pause(self, which: int, seconds: float) -> None:
        """A member's lease-table calls hang (a GC pause, a partition), then go through."""
        member = self.live()[which % len(self.live())]
        member.link.pause()
        self.call(self.clock.advance, seconds)
        member.link.resume()

    @rule(seconds=st.sampled_from([2.0, 15.0, 60.0]))
    def time_passes(self, seconds: float) -> None:
        self.call(self.clock.advance, seconds)

    # ------------------------------------------------------------ invariants

    @invariant()
    def tenures_never_overlap(self) -> None:
        spans: dict[str, dict[tuple[str, int], tuple[float, float]]] = defaultdict(dict)
        for member in self.members:
            for d in member.deliveries:
                first, last = spans[d.shard].get((d.member, d.epoch), (d.at, d.at))
                spans[d.shard][(d.member, d.epoch)] = (min(first, d.at), max(last, d.at))
        for shard, tenures in spans.items():
            ordered = sorted(tenures.items(), key=lambda item: item[0][1])
            for (a, (_, a_last)), (b, (b_first, _)) in itertools.pairwise(ordered):
                assert a_last <= b_first, f"{shard}: tenures {a} and {b} overlapped"

    @invariant()
    def memory_stays_within_the_buffer(self) -> None:
        for member in self.members:
            if member.stream is not None:
                assert member.stream.stats.peak_held <= GROUP_PACING.buffer

    def teardown(self) -> None:
        try:
            if not self.live():
                self.start()
            self.call(self.clock.advance, 3 * FAILOVER)
            for _ in range(20):
                if set(self.written) <= self.done:
                    break
                self.call(self.clock.advance, 60)
            missing = sorted(set(self.written) - self.done)
            assert not missing, f"records {missing} were never delivered"
        finally:
            for member in self.members:
                member.stop.set()
            for member in self.members:
                self.call(member.finished.wait)
            self.portal.call(self.portal.stop, True)
            self._portal_cm.__exit__(None, None, None)


GroupMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestGroupMachine = GroupMachine.TestCase
