"""Time for the stream coordinator: a `Clock` seam so tests can run it on virtual time.

Every wait of the coordinator (polling pace, backoff, heartbeat, `next(timeout=...)`) goes through
a `Clock`, and iterator ages are measured with `Clock.now()`. `adyn.testing.fakes.VirtualClock`
implements the same protocol with time that moves only when a test says so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock", "alarm", "wait_for"]


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
