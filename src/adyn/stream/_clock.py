"""Time for the stream coordinator: a `Clock` seam so tests can run it on virtual time.

Every wait of the coordinator (polling pace, backoff, heartbeat, leases, `next(timeout=...)`)
goes through a `Clock`, and iterator and lease ages are measured with `Clock.now()`.
`adyn.testing.VirtualClock` implements the same protocol with time that moves only when a test
says so. Two small tools built on it live here too: `RateLimiter` (at most so many calls per
second) and `Budget` (records held in memory).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import anyio

from ..errors import InvalidArgument

__all__ = ["Budget", "Clock", "RateLimiter", "SystemClock", "alarm", "next_within", "wait_for"]

T = TypeVar("T")


class Clock(Protocol):
    """Where the coordinator reads the time and sleeps."""

    def now(self) -> float:
        """Seconds on a monotonic scale, for intervals and deadlines."""
        ...

    def utcnow(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `datetime.now(UTC)` and `anyio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


async def alarm(clock: Clock, seconds: float, scope: anyio.CancelScope) -> None:
    """Cancel `scope` after `seconds` of `clock` time."""
    await clock.sleep(seconds)
    scope.cancel()


async def wait_for(event: anyio.Event, clock: Clock, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` of `clock` time pass; True if it was set."""
    if event.is_set():
        return True
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(alarm, clock, seconds, scope)
            await event.wait()
            tg.cancel_scope.cancel()
    return event.is_set()


async def next_within(
    clock: Clock,
    seconds: float | None,
    take: Callable[[], Awaitable[T]],
) -> T | None:
    """`await take()`, or None when it raises StopAsyncIteration or `seconds` of `clock` time
    pass first (None: no limit). Its exceptions come out as themselves (not in a group)."""
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0
    ):
        raise InvalidArgument(f"timeout must be a number of seconds >= 0 or None, not {seconds!r}")
    if seconds is None:
        try:
            return await take()
        except StopAsyncIteration:
            return None
    result: T | None = None
    error: Exception | None = None
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(alarm, clock, seconds, scope)
            try:
                result = await take()
            except StopAsyncIteration:
                pass
            except Exception as exc:
                error = exc
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return result


class RateLimiter:
    """At most `rate` acquisitions in any window of one second of `clock` time.

    Callers queue in arrival order; a waiting caller sleeps until the oldest acquisition of the
    window leaves it.
    """

    def __init__(self, clock: Clock, rate: float) -> None:
        if rate <= 0:
            raise ValueError("a rate limit must be positive")
        self._clock = clock
        self._interval = 1.0 / rate if rate < 1 else 0.0
        self._burst = max(1, int(rate))
        self._times: deque[float] = deque()
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            clock = self._clock
            times = self._times
            while True:
                now = clock.now()
                while times and times[0] <= now - 1.0:
                    times.popleft()
                wait = 0.0
                if len(times) >= self._burst:
                    wait = times[0] + 1.0 - now
                elif self._interval and times:
                    wait = times[-1] + self._interval - now
                if wait <= 0:
                    times.append(now)
                    return
                await clock.sleep(wait)


class Budget:
    """A count of records the coordinator may hold at once (fetched, not yet handed over).

    Pollers reserve room before each GetRecords call (and ask for no more than they got), give
    back what the page did not fill, and the consumer gives back one unit per record it takes.
    Whatever the number of shards, records held never exceed `capacity`. Waiting pollers are
    served in arrival order, and only once a useful amount is free (an eighth of the capacity,
    or what they asked for if less): a full budget then refills with large pages, not
    one-record ones, and a stalled worker holding most of the budget stops no one until it holds
    seven eighths of it.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a budget needs room for at least one record")
        self.capacity = capacity
        self.free = capacity
        self._waiters: deque[tuple[anyio.Event, int]] = deque()

    @property
    def held(self) -> int:
        return self.capacity - self.free

    async def reserve(self, most: int) -> int:
        """Wait until enough room is free; take up to `most` of it and return how much."""
        want = max(1, min(most, self.capacity // 8))
        first = True
        while self.free < want or (first and self._waiters):
            entry = (anyio.Event(), want)
            if first:
                self._waiters.append(entry)
            else:
                self._waiters.appendleft(entry)  # woken, but the room went: keep its turn
            first = False
            try:
                await entry[0].wait()
            except BaseException:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                else:
                    self._wake()  # pass on the wake-up this waiter got
                raise
        taken = min(most, self.free)
        self.free -= taken
        self._wake()
        return taken

    def release(self, count: int) -> None:
        if count <= 0:
            return
        self.free = min(self.capacity, self.free + count)
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters and self.free >= waiters[0][1]:
            waiters.popleft()[0].set()
