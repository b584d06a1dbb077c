"""Streams on the fake streams service: records per second, and a consumer group at scale.

Throughput (`run()`, what `python -m benchmarks` reports): a 4-shard stream holds records
whose new and old images are 10-attribute items, read from the trim horizon through
`Engine(transport=fake).stream(...)` on virtual time (so no polling wait is measured), each
record decoded into a `Record` with two model objects and marked done. Three figures, records
per second of wall-clock time on one core: one stream; one member of a consumer group (its
lease table in the fake); a group of 4 members in one event loop sharing the shards.

Scale (`--scale`): a stream of 1,000 shards read by a group of 10 members on virtual time,
the lease table in the fake. It reports what AWS limits: DescribeStream calls in any one
second (DynamoDB allows 10), lease-table writes in any one second (the group's items share one
partition, which takes 1,000), GetRecords calls per second once idle, and how long the group
took to share the shards out (100 each).

    python benchmarks/bench_stream.py [--quick] [--scale]
"""

from __future__ import annotations

import sys
import time
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import anyio

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from adyn import Engine, HashKey, Model, RangeKey
from adyn.schema import schema_of
from adyn.stream import Pacing
from adyn.testing import FakeStreams, VirtualClock

SHARDS = 4


class Event(Model):
    class Meta:
        table_name = "bench_events"
        stream = "new_and_old"

    tenant: Annotated[str, HashKey()]
    seq: Annotated[int, RangeKey()]
    kind: str
    score: Decimal
    count: int
    active: bool
    tags: set[str]
    payload: dict[str, int]
    items: list[str]
    at: datetime


def image(i: int, version: int) -> dict[str, Any]:
    return {
        "tenant": {"S": f"tenant-{i % 97}"},
        "seq": {"N": str(i)},
        "kind": {"S": "click" if i % 2 else "view"},
        "score": {"N": f"{i % 1000}.{version}"},
        "count": {"N": str(version)},
        "active": {"BOOL": bool(i % 3)},
        "tags": {"SS": ["a", "b", f"t{i % 7}"]},
        "payload": {"M": {"x": {"N": str(i)}, "y": {"N": "2"}}},
        "items": {"L": [{"S": "one"}, {"S": "two"}]},
        "at": {"S": datetime(2024, 1, 1, tzinfo=UTC).isoformat()},
    }


async def build(records: int) -> tuple[FakeStreams, VirtualClock]:
    clock = VirtualClock()
    fake = FakeStreams(clock, record_calls=False, shards=SHARDS, rate_limit=0)
    async with Engine(transport=fake) as engine:
        await engine.bind(Event)
    (arn,) = fake.stream_arns(schema_of(Event).table_name)
    for i in range(records):
        key = {"tenant": {"S": f"tenant-{i % 97}"}, "seq": {"N": str(i)}}
        fake.put(arn, key, new=image(i, 2), old=image(i, 1))
    return fake, clock


async def consume(records: int, members: int | None) -> float:
    """Seconds to receive `records` records: one stream (`members` None) or a group."""
    fake, clock = await build(records)
    engines = [Engine(transport=fake) for _ in range(members or 1)]
    for engine in engines:
        await engine.open()
        await engine.bind(Event)
    seen = 0
    done = anyio.Event()
    start = time.perf_counter()
    async with clock.autojump(), anyio.create_task_group() as tg:

        async def member(engine: Engine) -> None:
            nonlocal seen
            group = None if members is None else "bench"
            stream = engine.stream(
                Event, position="trim_horizon", clock=clock, group=group, commit_interval=5
            )
            async with stream:
                async for record in stream:
                    assert record.new is not None
                    record.done()
                    seen += 1
                    if seen >= records:
                        done.set()
                    if done.is_set():
                        return

        for engine in engines:
            tg.start_soon(member, engine)
        await done.wait()
        elapsed = time.perf_counter() - start
        tg.cancel_scope.cancel()
    for engine in engines:
        await engine.close()
    return elapsed


def run(quick: bool = False) -> dict[str, Any]:
    """Records per second for one stream, one group member and a group of four."""
    records = 2_000 if quick else 100_000  # --quick is a smoke run: too few records to read
    anyio.run(consume, 500 if quick else 2_000, None)  # warm up: imports, decoders, caches
    one = anyio.run(consume, records, None)
    member = anyio.run(consume, records, 1)
    four = anyio.run(consume, records, 4)
    return {
        "records": records,
        "shards": SHARDS,
        "seconds": round(one, 3),
        "records_per_second": round(records / one),
        "group_member_records_per_second": round(records / member),
        "group_of_4_records_per_second": round(records / four),
    }


# ---------------------------------------------------------------- scale


class Counting:
    """A member's transport to the fake that counts its lease-table writes per second."""

    WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})

    def __init__(self, fake: FakeStreams, clock: VirtualClock, log: deque[float]) -> None:
        self.fake, self.clock, self.log = fake, clock, log

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        if operation in self.WRITES and request.get("TableName") == "adyn-leases":
            self.log.append(self.clock.now())
        return await self.fake.call(service, operation, request, idempotent=idempotent)


def peak(times: deque[float]) -> int:
    """The most events in any window of one second."""
    best, window = 0, deque[float]()
    for t in sorted(times):
        window.append(t)
        while window[0] <= t - 1.0:
            window.popleft()
        best = max(best, len(window))
    return best


async def scale(
    shards: int = 1000, members: int = 10, minutes: float = 5.0, rate: int = 200
) -> dict[str, Any]:
    """A group of `members` on `shards` shards: share-out, then `minutes` of `rate` writes a
    second (every record done at once, so checkpoints move), then a minute idle."""
    clock = VirtualClock()
    fake = FakeStreams(clock, record_calls=False, shards=shards)
    async with Engine(transport=fake) as engine:
        await engine.bind(Event)
    (arn,) = fake.stream_arns(schema_of(Event).table_name)
    writes: deque[float] = deque()
    held: dict[int, int] = {}
    received = 0
    balanced_at: float | None = None
    started = time.perf_counter()
    async with clock.autojump(), anyio.create_task_group() as tg:

        async def member(index: int) -> None:
            nonlocal received
            async with Engine(transport=Counting(fake, clock, writes)) as engine:
                await engine.bind(Event)
                stream = engine.stream(Event, group="scale", clock=clock, pacing=Pacing())
                async with stream:
                    while True:
                        record = await stream.next(timeout=5)
                        if record is not None:
                            record.done()
                            received += 1
                        assert stream.member is not None
                        held[index] = len(stream.member.held)

        for index in range(members):
            tg.start_soon(member, index)
        while balanced_at is None:
            await clock.sleep(1)
            if len(held) == members and set(held.values()) == {shards // members}:
                balanced_at = clock.now()
        traffic_from = clock.now()
        reads_before = fake.requests["GetRecords"]
        written = 0
        while clock.now() - traffic_from < minutes * 60:
            for _ in range(rate):
                i = written
                written += 1
                key = {"tenant": {"S": f"tenant-{i % 5000}"}, "seq": {"N": str(i)}}
                fake.put(arn, key, new=image(i, 1))
            await clock.sleep(1)
        traffic_reads = fake.requests["GetRecords"] - reads_before
        traffic_to = clock.now()
        while received < written:
            await clock.sleep(1)
        await clock.sleep(60)
        before = fake.requests["GetRecords"]
        await clock.sleep(60)
        idle_reads = fake.requests["GetRecords"] - before
        tg.cancel_scope.cancel()
    during = [t for t in writes if traffic_from + 30 <= t < traffic_to]
    span = traffic_to - traffic_from - 30
    return {
        "shards": shards,
        "members": members,
        "seconds_to_share_out": round(balanced_at, 1),
        "describe_stream_peak_per_second": fake.peak_rate("DescribeStream"),
        "describe_stream_calls": fake.requests["DescribeStream"],
        "errors": dict(fake.errors),
        "lease_writes_peak_per_second": peak(writes),
        "lease_writes_per_second_under_traffic": round(len(during) / span, 1),
        "lease_writes": len(writes),
        "records": written,
        "records_delivered": received,
        "get_records_per_second_under_traffic": round(traffic_reads / (traffic_to - traffic_from)),
        "idle_get_records_per_second": round(idle_reads / 60, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    if "--scale" in sys.argv:
        print(anyio.run(scale))
    else:
        print(run(quick="--quick" in sys.argv))
