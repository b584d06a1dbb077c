"""A hypothesis state machine drives the coordinator over the fake streams service.

Steps: write, split or roll over a shard (children listed late or not), disable the table's
stream and enable a new one, let virtual time pass with heartbeats running (a slow consumer) or
jump it (a suspended process, past the 15-minute iterator expiry or the 24-hour trim), consume
(directly, or through `partitions(n)` with workers that finish records out of order or stall),
checkpoint the token, crash and resume from the checkpoint, cancel a consumer and the stream.
After every delivered record it checks:

- no duplicate, except what a crash re-delivers beyond the last checkpoint's coverage (with
  partitions: the records every worker had finished, shard by shard);
- per item, records arrive in write order with no gap except trimmed records;
- every record of a parent shard (and of a table's previous stream) arrives before any record
  of its children (of its new stream);
- with partitions, each item stays in one worker;
- records held by the coordinator never exceed `Pacing.buffer`;
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
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adyn.errors import RecordsExpired
from adyn.stream import Pacing, Partition, Record, Stream, StreamSource
from adyn.stream._partitions import _partition, partition_of
from adyn.testing.fakes import RETENTION, FakeStreams, VirtualClock, plain_source

T = TypeVar("T")
EXAMPLES = int(os.environ.get("ADYN_STREAM_EXAMPLES", "20"))
STEPS = int(os.environ.get("ADYN_STREAM_STEPS", "30"))
KEYS = [f"k{i}" for i in range(6)]
MAX_SHARDS = 10
DRAIN_WAIT = 900.0  # virtual seconds of silence that mean "nothing more is coming"
TABLE = "table"

PACING = Pacing(
    page_size=2,
    buffer=5,
    max_idle_interval=20.0,
    discovery_interval=120.0,
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
    arn: str
    shard_id: str
    wall: float


class StreamMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()
        self.clock = VirtualClock()
        self.fake: FakeStreams | None = None
        self.arns: list[str] = []  # the table's streams, oldest first
        self.workers = 0  # 0: consume the stream directly; n: through partitions(n)
        self.stream: Stream[Any] | None = None
        self.parts: list[Partition[Any]] = []
        self.held: list[list[Record[Any]]] = []  # per worker: delivered, not done yet
        self._stream_cm: AbstractContextManager[Stream[Any]] | None = None
        self.on_trim: Literal["raise", "skip"] = "raise"
        self.items: dict[str, int] = {}
        self.counter = 0
        self.written: dict[int, Written] = {}
        self.by_key: dict[str, list[int]] = {k: [] for k in KEYS}
        self.by_shard: dict[str, list[int]] = {}
        self.applied: set[int] = set()  # delivered (and not forgotten by a crash)
        self.finished: set[int] = set()  # done() (direct mode: delivered)
        self.delivered_in: dict[str, list[int]] = {}  # per shard, delivery order since opening
        self.last_index: dict[str, int] = {}  # per key: index in by_key of the last applied
        self.excused: set[int] = set()  # missed while older than retention: trimmed
        self.checkpoint: tuple[str | None, set[int]] = (None, set())
        self.checkpoint_base: set[int] = set()  # covered by the position this stream opened at
        self.blind = False  # a suspension longer than retention: loss cannot be ruled out
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

    @property
    def arn(self) -> str:
        return self.arns[-1]

    def open(self, position: str) -> None:
        async def sources() -> list[StreamSource]:
            return [plain_source(self.arn, table=TABLE)]

        stream: Stream[Any] = Stream(
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
        self.delivered_in = {}
        self.held = [[] for _ in range(self.workers)]
        if self.workers:

            async def split() -> list[Partition[Any]]:
                return stream.partitions(self.workers)

            self.parts = self.call(split)

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
        """RecordsExpired is right when a record was trimmed before delivery, when a shard
        closed more than 24 hours ago is gone (the stream cannot tell what it held), or after a
        suspension longer than the retention (DynamoDB then refuses positions it cannot prove
        complete)."""
        missing = [s for s in self.written if s not in self.applied]
        gone = [s for arn in self.arns for s in self.service.shards(arn) if self.service.removed(s)]
        assert self.blind or gone or any(self.excusable(s) for s in missing), (
            "RecordsExpired but nothing was trimmed"
        )

    def ancestors(self, arn: str, shard_id: str) -> Iterator[str]:
        parent = self.service.parent_of(arn, shard_id)
        while parent is not None:
            yield parent
            parent = self.service.parent_of(arn, parent)

    def check(self, record: Record[Any], worker: int | None = None) -> None:
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
        if worker is not None:
            assert partition_of(record, self.workers) == worker, "an item in two workers"
        order = self.by_key[written.key]
        index = order.index(seq)
        previous = self.last_index.get(written.key, -1)
        assert index > previous, f"{written.key}: record {seq} came out of write order"
        skipped = [s for s in order[previous + 1 : index] if not self.excusable(s)]
        assert not skipped, f"{written.key}: records {skipped} were lost"
        # Lineage order holds for the stream (with partitions: within each worker's share).
        for ancestor in self.ancestors(written.arn, written.shard_id):
            for s in self.by_shard.get(ancestor, ()):
                assert s in self.applied or self.excusable(s) or not self.same_worker(s, seq), (
                    f"record {seq} of {written.shard_id} came before {s} of its ancestor"
                )
        for older in self.arns[: self.arns.index(written.arn)]:
            for shard in self.service.shards(older):
                for s in self.by_shard.get(shard.shard_id, ()):
                    assert s in self.applied or self.excusable(s) or not self.same_worker(s, seq), (
                        f"record {seq} of a new stream came before {s} of the previous one"
                    )
        self.applied.add(seq)
        self.delivered_in.setdefault(written.shard_id, []).append(seq)
        self.last_index[written.key] = index

    def same_worker(self, a: int, b: int) -> bool:
        if not self.workers:
            return True
        keys = [{"id": {"S": self.written[seq].key}} for seq in (a, b)]
        return _partition(dict, keys[0], self.workers) == _partition(dict, keys[1], self.workers)

    def covered(self) -> set[int]:
        """What a token taken now covers: per shard, its records in sequence order up to the
        first one not finished (trimmed ones passed over). A token holds one position per
        shard, so with partitions a record one worker finished stays uncovered while an
        earlier record of its shard, held or not yet taken by another worker, is not done."""
        covered: set[int] = set()
        for shard_id in self.delivered_in:
            for seq in self.by_shard.get(shard_id, ()):
                if seq in self.finished:
                    covered.add(seq)
                elif not self.excusable(seq):
                    break
        return covered | self.checkpoint_base

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
                    self.finished.add(int(record.sequence_number))
            except RecordsExpired as exc:
                return exc
        return None

    async def _consume_part(
        self, worker: int, n: int, wait: float, finish: bool
    ) -> RecordsExpired | None:
        part = self.parts[worker]
        async with self.clock.autojump():
            try:
                for _ in range(n):
                    record = await part.next(timeout=wait)
                    if record is None:
                        return None
                    self.check(record, worker)
                    if finish:
                        record.done()
                        self.finished.add(int(record.sequence_number))
                    else:
                        self.held[worker].append(record)
            except RecordsExpired as exc:
                return exc
        return None

    def consume_now(self, n: int, wait: float, worker: int = 0, finish: bool = True) -> bool:
        """Consume up to n records; False if the stream (or worker) ran dry."""
        before = len(self.applied)
        if self.workers:
            expired = self.call(self._consume_part, worker, n, wait, finish)
        else:
            expired = self.call(self._consume, n, wait)
        if expired is not None:
            self.assert_loss_was_real()
            self.finish_all()
            token = self.token()
            self.checkpoint_base = self.covered()
            self.close()
            self.on_trim = "skip"
            self.open(token)
            return True
        return len(self.applied) - before == n

    def finish_all(self) -> None:
        for worker, records in enumerate(self.held):
            for record in records:
                record.done()
                self.finished.add(int(record.sequence_number))
            self.held[worker] = []

    def restore(self, covered: set[int]) -> None:
        """Forget what a crash loses: every delivery the checkpoint did not cover."""
        self.applied = set(covered)
        self.finished = set(covered)
        self.checkpoint_base = set(covered)
        self.last_index = {}
        for key, order in self.by_key.items():
            last = -1
            for i, seq in enumerate(order):
                if seq in covered:
                    last = i
                elif not self.excusable(seq):
                    break
            if last >= 0:
                self.last_index[key] = last

    # ------------------------------------------------------------ rules

    @initialize(
        shards=st.integers(1, 3),
        page_size=st.integers(1, 3),
        empty_every=st.sampled_from([0, 3]),
        throttle_every=st.sampled_from([0, 4]),
        workers=st.sampled_from([0, 0, 2, 3]),
    )
    def setup(
        self, shards: int, page_size: int, empty_every: int, throttle_every: int, workers: int
    ) -> None:
        self.fake = FakeStreams(self.clock, describe_page_size=page_size, empty_every=empty_every)
        self.arns = [self.fake.create_stream(TABLE, shards=shards)]
        self.workers = workers
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
            int(seq),
            key,
            event,
            new,
            old,
            ttl and event == "REMOVE",
            self.arn,
            shard_id,
            self.clock.epoch(),
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
        """A split (two children) or a rollover (one), children listed late or not."""
        shards = self.service.open_shards(self.arn)
        shard = shards[which % len(shards)]
        self.service.split(self.arn, shard.shard_id, children=children, list_after=late)

    @precondition(lambda self: len(self.arns) < 3)
    @rule(shards=st.integers(1, 2))
    def disable_and_enable_the_stream(self, shards: int) -> None:
        """The table's stream is disabled and enabled again: a new stream, the old one kept
        readable for 24 hours."""
        self.service.disable(self.arn)
        self.arns.append(self.service.enable(TABLE, shards=shards))

    @rule(minutes=st.sampled_from([1.0, 14.5, 16.5]))
    def slow_consumer_thinks(self, minutes: float) -> None:
        """Time passes while the consumer reads nothing; heartbeats run."""
        self.call(self.clock.advance, minutes * 60)

    @rule(minutes=st.sampled_from([16.0, 25 * 60.0]))
    def process_suspended(self, minutes: float) -> None:
        """Time jumps: nothing runs meanwhile, so iterators expire (and records get trimmed)."""
        self.suspended = True
        if minutes * 60 >= RETENTION:
            self.blind = True
        self.call(self.clock.jump, minutes * 60)

    @rule(n=st.integers(1, 12), wait=st.sampled_from([0.5, 30.0]), worker=st.integers(0, 2))
    def consume(self, n: int, wait: float, worker: int) -> None:
        self.consume_now(n, wait, worker % max(1, self.workers))

    @precondition(lambda self: self.workers > 0)
    @rule(n=st.integers(1, 6), worker=st.integers(0, 2))
    def a_worker_takes_records_and_stalls(self, n: int, worker: int) -> None:
        """A worker takes records and does not finish them (yet): others go on."""
        self.consume_now(n, 0.5, worker % self.workers, finish=False)

    @precondition(lambda self: self.workers > 0)
    @rule(worker=st.integers(0, 2), reverse=st.booleans())
    def a_worker_finishes_what_it_holds(self, worker: int, reverse: bool) -> None:
        records = self.held[worker % self.workers]
        for record in reversed(records) if reverse else list(records):
            record.done()
            self.finished.add(int(record.sequence_number))
        records.clear()

    @rule()
    def take_checkpoint(self) -> None:
        self.checkpoint = (self.token(), self.covered())

    @rule()
    def crash_and_resume(self) -> None:
        """The process dies; a new one resumes from the last checkpoint."""
        self.close()
        token, covered = self.checkpoint
        self.restore(covered)
        self.open(token or "trim_horizon")

    @precondition(lambda self: self.workers == 0)
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
                        self.finished.add(int(record.sequence_number))

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
        covered = self.covered()
        self.close()
        self.restore(covered)
        self.open(token)

    @rule()
    def drain(self) -> None:
        self.drain_and_check()

    def drain_and_check(self) -> None:
        self.finish_all()
        progress = True
        while progress:  # a worker's queue may fill while another one drains
            progress = False
            for worker in range(max(1, self.workers)):
                before = len(self.applied)
                while self.consume_now(50, DRAIN_WAIT, worker):
                    pass
                progress = progress or len(self.applied) > before
        missing = [s for s in self.written if s not in self.applied and not self.excusable(s)]
        assert not missing, f"records {missing} were never delivered"

    @invariant()
    def heartbeats_prevent_expiry(self) -> None:
        if self.fake is not None and not self.suspended:
            assert self.fake.errors["ExpiredIteratorException"] == 0

    @invariant()
    def memory_stays_within_the_buffer(self) -> None:
        if self.stream is not None:
            assert self.stream.stats.peak_held <= PACING.buffer

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
