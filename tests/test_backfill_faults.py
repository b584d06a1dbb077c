"""Backfills under injected faults (moto behind FaultProxy), and the adaptive write rate."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import pytest

from adyn import Engine, HashKey, Model, RetryPolicy, Version
from adyn._backfill import WriteLimiter
from harness import DropAfter, FaultProxy, Rule, Throttle


class Ticket(Model):
    class Meta:
        table_name = "backfill_tickets"

    id: Annotated[str, HashKey()]
    status: str = "open"
    priority: int = 0
    version: Annotated[int, Version()] = 0


N = 40


def escalate(ticket: Ticket) -> Ticket | None:
    if ticket.priority:
        return None
    ticket.priority = 1
    return ticket


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(moto_endpoint, seed=13) as p:
        yield p


async def tickets(proxy: FaultProxy, name: str, retry: RetryPolicy) -> Engine:
    engine = Engine(
        endpoint_url=proxy.url, table_name_template=f"{{table_name}}-{name}", retry=retry
    )
    await engine.open()
    await engine.bind(Ticket)
    async with engine.batch() as batch:
        batch.save(*(Ticket(id=f"t{i:02d}") for i in range(N)))
    return engine


async def final(engine: Engine) -> list[Ticket]:
    return await engine.scan(Ticket, consistent=True).all()


class Capacity:
    """A table's write capacity: requests past `per_second` in any one second are throttled."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.accepted: deque[float] = deque()

    def __call__(self, body: Any) -> bool:
        now = time.monotonic()
        while self.accepted and self.accepted[0] < now - 1.0:
            self.accepted.popleft()
        if len(self.accepted) >= self.per_second:
            return True  # throttle this one
        self.accepted.append(now)
        return False


@pytest.mark.parametrize(
    "tries",
    [
        2,  # throttling gets past the engine's retries to the backfill itself
        10,  # the engine's retries absorb it; its listeners tell the backfill to slow down
    ],
)
async def test_throttling_slows_the_backfill_down_and_loses_nothing(
    proxy: FaultProxy, tries: int
) -> None:
    retry = RetryPolicy(max_attempts=tries, base=0.001, cap=0.01)
    engine = await tickets(proxy, f"throttled-{tries}", retry)
    try:
        proxy.add(Rule(Throttle(), operation="UpdateItem", when=Capacity(15)))
        proxy.add(Rule(Throttle("ThrottlingException"), operation="Scan", times=3))
        report = await engine.backfill(Ticket, escalate, segments=2)
        assert proxy.count(Throttle, operation="UpdateItem") > 0
        assert proxy.count(Throttle, operation="Scan") == 3
        assert report.throttled > 0 and report.failed == ()
        assert (report.scanned, report.changed) == (N, N)
        after = await final(engine)
        assert {(t.priority, t.version) for t in after} == {(1, 1)}  # each written once
    finally:
        await engine.close()


async def test_a_save_whose_answer_was_lost_is_settled_by_reading_it_back(
    proxy: FaultProxy,
) -> None:
    engine = await tickets(proxy, "dropped", RetryPolicy(max_attempts=3, base=0.001, cap=0.01))
    try:
        # the server applies these saves, but the backfill never hears back
        proxy.add(Rule(DropAfter(), operation="UpdateItem", chance=0.3))
        report = await engine.backfill(Ticket, escalate, segments=2)
        assert proxy.count(DropAfter) > 0
        assert report.failed == () and (report.scanned, report.changed) == (N, N)
        assert report.conflicts == 0  # a lost answer is not someone else's change
        after = await final(engine)
        assert {(t.priority, t.version) for t in after} == {(1, 1)}
    finally:
        await engine.close()


async def test_a_concurrent_writer_loses_nothing_while_a_backfill_runs(
    proxy: FaultProxy,
) -> None:
    engine = await tickets(proxy, "racing", RetryPolicy(max_attempts=5, base=0.001, cap=0.01))
    writes = 0
    try:
        async with anyio.create_task_group() as tg:

            async def writer() -> None:
                nonlocal writes
                for round_ in range(3):
                    for i in range(N):
                        ticket = await engine.get(Ticket, id=f"t{i:02d}", consistent=True)
                        assert ticket is not None
                        ticket.status = f"seen-{round_}"
                        try:
                            await engine.save(ticket)  # versioned: refused if stale
                            writes += 1
                        except Exception:
                            continue

            async def slow_escalate(ticket: Ticket) -> Ticket | None:
                await anyio.sleep(0.01)
                return escalate(ticket)

            tg.start_soon(writer)
            report = await engine.backfill(Ticket, slow_escalate, segments=4)
        after = await final(engine)
        assert {t.priority for t in after} == {1}
        assert all(t.status.startswith("seen-") for t in after)  # the writer's work kept
        # every successful write of either side bumped the version exactly once
        assert sum(t.version for t in after) == writes + report.changed
        assert report.failed == ()
    finally:
        await engine.close()


# ------------------------------------------------------------------ the limiter on its own


class Clock:
    """Virtual time: sleeping moves it forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def writes_in(limiter: WriteLimiter, clock: Clock, seconds: float) -> int:
    end = clock.now + seconds
    n = 0
    while clock.now < end:
        await limiter.acquire()
        n += 1
    return n


async def test_the_ceiling_spaces_writes_out() -> None:
    clock = Clock()
    limiter = WriteLimiter(50, clock=clock, sleep=clock.sleep)
    assert 499 <= await writes_in(limiter, clock, 10) <= 502


async def test_throttling_halves_the_rate_once_a_second_then_it_climbs_back() -> None:
    clock = Clock()
    limiter = WriteLimiter(100, clock=clock, sleep=clock.sleep)
    await writes_in(limiter, clock, 2)
    assert limiter.throttled() is True and limiter.rate == 50
    assert limiter.throttled() is False and limiter.rate == 50  # the same burst of throttles
    clock.now += 1.0
    assert limiter.throttled() is True and limiter.rate == 25
    assert await writes_in(limiter, clock, 4) < 4 * 30  # settling: still slow
    await writes_in(limiter, clock, 30)
    assert limiter.rate == 100  # back to the ceiling, never above it


async def test_without_a_ceiling_the_first_throttle_starts_from_half_the_observed_rate() -> None:
    clock = Clock()
    limiter = WriteLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        for _ in range(400):  # 400 writes a second, unlimited
            await limiter.acquire()
        clock.now += 1.0
    assert limiter.rate is None
    limiter.throttled()
    assert limiter.rate == 200
    clock.now += 0.5
    limiter.throttled()
    assert limiter.rate == 200
    clock.now += 1.0
    for _ in range(100):
        limiter.throttled()
        clock.now += 1.0
    assert limiter.rate == WriteLimiter.MIN_RATE  # never stops altogether
