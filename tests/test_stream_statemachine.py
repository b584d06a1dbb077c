"""A hypothesis state machine drives the coordinator over the fake streams service.

Steps: write, split or roll over a shard (children listed late or not), let virtual time pass
with heartbeats running (a slow consumer) or jump it (a suspended process, past the 15-minute
iterator expiry or the 24-hour trim), consume, checkpoint the token, crash and resume from the
checkpoint, cancel a consumer and the stream. After every delivered record it checks:

- no duplicate, except what a crash re-delivers after the last checkpoint;
- per item, records arrive in write order with no gap except trimmed records;
- every record of a parent shard arrives before any record of its children;
- a resumed stream delivers exactly the rest; heartbeats prevent iterator expiry;
- after draining, nothing written within retention is missing.

Budget: `ADYN_STREAM_EXAMPLES` (default 20) examples of up to `ADYN_STREAM_STEPS` (default 30)
steps; docs/streams.md shows a longer run for contributors.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adyn.errors import RecordsExpired
from adyn.stream import Pacing, Record, Stream, StreamSource
from adyn.testing.fakes import RETENTION, FakeStreams, VirtualClock, plain_source

T = TypeVar("T")
EXAMPLES = int(os.environ.get("ADYN_STREAM_EXAMPLES", "20"))
STEPS = int(os.environ.get("ADYN_STREAM_STEPS", "30"))
KEYS = [f"k{i}" for i in range(6)]
MAX_SHARDS = 10
DRAIN_WAIT = 900.0  # virtual seconds of silence that mean "nothing more is coming"

PACING = Pacing(
    page_size=2,
    buffer=2,
    max_idle_interval=5.0,
    discovery_interval=60.0,
    backoff=0.5,
    max_backoff=5.0,
)


@dataclass
class Written:
    seq: int
    key: str
    event: str
    new: int | None
    old: int | None
    ttl: bool
    shard_id: str
    wall: float


class StreamMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()
        self.clock = VirtualClock()
        self.fake: FakeStreams | None = None
        self.arn = ""
        self.stream: Stream | None = None
        self._stream_cm: AbstractContextManager[Stream] | None = None
        self.on_trim: Literal["raise", "skip"] = "raise"
        self.items: dict[str, int] = {}
        self.counter = 0
        self.written: dict[int, Written] = {}
        self.by_key: dict[str, list[int]] = {k: [] for k in KEYS}
        self.by_shard: dict[str, list[int]] = {}
        self.effective: list[int] = []  # what a consumer storing the token with effects applied
        self.applied: set[int] = set()
        self.last_index: dict[str, int] = {}  # per key: index in by_key of the last applied
        self.excused: set[int] = set()  # missed while older than retention: trimmed
        self.checkpoint: tuple[str | None, int] = (None, 0)
        self.suspended = False

    # ------------------------------------------------------------ helpers

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `fn` in the event loop, then let every task run until all wait again: each step
        starts from a quiet loop, so runs are deterministic and shrink well."""

        async def settled() -> T:
            try:
                return await fn(*args)
            finally:
                await self.clock.settle()

        return self.portal.call(settled)

    @property
    def service(self) -> FakeStreams:
        assert self.fake is not None
        return self.fake

    def open(self, position: str) -> None:
        async def sources() -> list[StreamSource]:
            return [plain_source(self.arn)]

        stream = Stream(
            call=self.service,
            sources=sources,
            position=position,
            on_trim=self.on_trim,
            clock=self.clock,
            pacing=PACING,
            rng=random.Random(7),
        )
        cm = self.portal.wrap_async_context_manager(stream)
        try:
            # Opening lists shards, which may be throttled and back off on the virtual clock.
            with self.portal.wrap_async_context_manager(self.clock.autojump()):
                cm.__enter__()
            self.call(self.clock.settle)
        except RecordsExpired:
            self.assert_loss_was_real()
            self.on_trim = "skip"  # the consumer accepts the gap and goes on
            self.open(position)
            return
        self.stream, self._stream_cm = stream, cm

    def close(self) -> None:
        cm, self._stream_cm = self._stream_cm, None
        if cm is not None:
            cm.__exit__(None, None, None)
            self.call(self.clock.settle)

    def token(self) -> str:
        stream = self.stream
        assert stream is not None

        async def token() -> str:
            return stream.token

        return self.call(token)

    def excusable(self, seq: int) -> bool:
        if seq in self.excused:
            return True
        if seq not in self.applied and self.written[seq].wall < self.clock.epoch() - RETENTION:
            self.excused.add(seq)
            return True
        return False

    def assert_loss_was_real(self) -> None:
        """RecordsExpired is right when a record was trimmed before delivery, or when a shard
        closed more than 24 hours ago is gone (the stream cannot tell what it held)."""
        missing = [s for s in self.written if s not in self.applied]
        gone = [s for s in self.service.shards(self.arn) if self.service.removed(s)]
        assert gone or any(self.excusable(s) for s in missing), (
            "RecordsExpired but nothing was trimmed"
        )

    def ancestors(self, shard_id: str) -> Iterator[str]:
        parent = self.service.parent_of(self.arn, shard_id)
        while parent is not None:
            yield parent
            parent = self.service.parent_of(self.arn, parent)

    def check(self, record: Record) -> None:
        seq = int(record.sequence_number)
        written = self.written.get(seq)
        assert written is not None, f"record {seq} was never written"
        assert seq not in self.applied, f"record {seq} delivered twice without a crash"
        assert record.key == {"id": written.key}
        assert record.event == written.event.lower()
        assert record.expired == written.ttl
        assert record.shard_id == written.shard_id
        assert (record.new or {}).get("n") == written.new
        assert (record.old or {}).get("n") == written.old
        order = self.by_key[written.key]
        index = order.index(seq)
        previous = self.last_index.get(written.key, -1)
        assert index > previous, f"{written.key}: record {seq} came out of write order"
        skipped = [s for s in order[previous + 1 : index] if not self.excusable(s)]
        assert not skipped, f"{written.key}: records {skipped} were lost"
        for ancestor in self.ancestors(written.shard_id):
            for s in self.by_shard.get(ancestor, ()):
                assert s in self.applied or self.excusable(s), (
                    f"record {seq} of {written.shard_id} came before {s} of its ancestor"
                )
        self.effective.append(seq)
        self.applied.add(seq)
        self.last_index[written.key] = index

    async def _consume(self, n: int, wait: float) -> RecordsExpired | None:
        stream = self.stream
        assert stream is not None
        async with self.clock.autojump():
            try:
                for _ in range(n):
                    record = await stream.next(timeout=wait)
                    if record is None:
                        return None
                    self.check(record)
            except RecordsExpired as exc:
                return exc
        return None

    def consume_now(self, n: int, wait: float) -> bool:
        """Consume up to n records; False if the stream ran dry."""
        before = len(self.effective)
        expired = self.call(self._consume, n, wait)
        if expired is not None:
            self.assert_loss_was_real()
            token = self.token()
            self.close()
            self.on_trim = "skip"
            self.open(token)
            return True
        return len(self.effective) - before == n

    # ------------------------------------------------------------ rules

    @initialize(
        shards=st.integers(1, 3),
        page_size=st.integers(1, 3),
        empty_every=st.sampled_from([0, 3]),
        throttle_every=st.sampled_from([0, 4]),
    )
    def setup(self, shards: int, page_size: int, empty_every: int, throttle_every: int) -> None:
        self.fake = FakeStreams(self.clock, describe_page_size=page_size, empty_every=empty_every)
        self.arn = self.fake.create_stream(shards=shards)
        self.fake.fail_every("GetRecords", throttle_every)
        self.fake.fail_every("DescribeStream", throttle_every + 1 if throttle_every else 0)
        self.open("trim_horizon")

    @rule(key=st.sampled_from(KEYS), remove=st.booleans(), ttl=st.booleans())
    def write(self, key: str, remove: bool, ttl: bool) -> None:
        old = self.items.get(key)
        wire_key = {"id": {"S": key}}
        old_image = None if old is None else {"id": {"S": key}, "n": {"N": str(old)}}
        shard_id = self.service.shard_for(self.arn, wire_key).shard_id
        if remove and old is not None:
            new = None
            del self.items[key]
            seq = self.service.put(self.arn, wire_key, old=old_image, ttl=ttl)
            event = "REMOVE"
        else:
            self.counter += 1
            new = self.items[key] = self.counter
            image = {"id": {"S": key}, "n": {"N": str(new)}}
            seq = self.service.put(self.arn, wire_key, new=image, old=old_image)
            event = "MODIFY" if old is not None else "INSERT"
            ttl = False
        written = Written(
            int(seq), key, event, new, old, ttl and event == "REMOVE", shard_id, self.clock.epoch()
        )
        self.written[written.seq] = written
        self.by_key[key].append(written.seq)
        self.by_shard.setdefault(shard_id, []).append(written.seq)

    @rule(n=st.integers(2, 12), first=st.integers(0, len(KEYS) - 1))
    def write_burst(self, n: int, first: int) -> None:
        """Many writes at once: a backlog the pollers are still working through later."""
        for i in range(n):
            self.write(KEYS[(first + i) % len(KEYS)], remove=False, ttl=False)

    @precondition(lambda self: len(self.service.shards(self.arn)) < MAX_SHARDS)
    @rule(which=st.integers(0, 3), children=st.sampled_from([1, 2]), late=st.sampled_from([0, 40]))
    def split(self, which: int, children: int, late: int) -> None:
        shards = self.service.open_shards(self.arn)
        shard = shards[which % len(shards)]
        self.service.split(self.arn, shard.shard_id, children=children, list_after=late)

    @rule(minutes=st.sampled_from([1.0, 14.5, 16.5]))
    def slow_consumer_thinks(self, minutes: float) -> None:
        """Time passes while the consumer reads nothing; heartbeats run."""
        self.call(self.clock.advance, minutes * 60)

    @rule(minutes=st.sampled_from([16.0, 25 * 60.0]))
    def process_suspended(self, minutes: float) -> None:
        """Time jumps: nothing runs meanwhile, so iterators expire (and records get trimmed)."""
        self.suspended = True
        self.call(self.clock.jump, minutes * 60)

    @rule(n=st.integers(1, 12), wait=st.sampled_from([0.5, 30.0]))
    def consume(self, n: int, wait: float) -> None:
        self.consume_now(n, wait)

    @rule()
    def take_checkpoint(self) -> None:
        self.checkpoint = (self.token(), len(self.effective))

    @rule()
    def crash_and_resume(self) -> None:
        """The process dies; a new one resumes from the last checkpoint."""
        self.close()
        token, length = self.checkpoint
        self.effective = self.effective[:length]
        self.applied = set(self.effective)
        self.last_index = {}
        for seq in self.effective:
            written = self.written[seq]
            self.last_index[written.key] = self.by_key[written.key].index(seq)
        self.open(token or "trim_horizon")

    @rule(wait=st.sampled_from([0.1, 3.0]))
    def cancel_a_waiting_consumer_then_the_stream(self, wait: float) -> None:
        """Cancel a `next()` in flight, then leave the stream and reopen it from its token."""
        stream = self.stream
        assert stream is not None

        async def cancel_midway() -> None:
            async with self.clock.autojump(), anyio.create_task_group() as tg:

                async def consumer() -> None:
                    record = await stream.next()
                    if record is not None:
                        self.check(record)

                tg.start_soon(consumer)
                await self.clock.sleep(wait)
                tg.cancel_scope.cancel()

        try:
            self.call(cancel_midway)
        except BaseExceptionGroup as group:  # a RecordsExpired from inside the task group
            expired, rest = group.split(RecordsExpired)
            if rest is not None or expired is None:
                raise
            self.assert_loss_was_real()
            self.on_trim = "skip"
        token = self.token()
        self.close()
        self.open(token)

    @rule()
    def drain(self) -> None:
        self.drain_and_check()

    def drain_and_check(self) -> None:
        while self.consume_now(50, DRAIN_WAIT):
            pass
        missing = [s for s in self.written if s not in self.applied and not self.excusable(s)]
        assert not missing, f"records {missing} were never delivered"

    @invariant()
    def heartbeats_prevent_expiry(self) -> None:
        if self.fake is not None and not self.suspended:
            assert self.fake.errors["ExpiredIteratorException"] == 0

    def teardown(self) -> None:
        try:
            if self.stream is not None and self._stream_cm is not None:
                self.drain_and_check()
        finally:
            try:
                self.close()
            finally:
                self.portal.call(self.portal.stop, True)  # cancel whatever is left
                self._portal_cm.__exit__(None, None, None)


StreamMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStreamMachine = StreamMachine.TestCase
