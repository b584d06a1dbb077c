"""`VirtualClock`: time that moves only when a test moves it (see `adyn.testing.fakes`)."""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime, timedelta
from types import TracebackType

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ..errors import InvalidState

__all__ = ["VirtualClock"]

# Yields before asking anyio whether every task waits: most chains of wake-ups settle within
# these, and `wait_all_tasks_blocked` (which sleeps a real 0.1 s whenever some task is still
# runnable) then confirms at once.
_SPINS = 64


class VirtualClock:
    """A clock for `adyn.stream.Clock` whose time moves only when a test moves it.

    `advance(s)` walks time forward waking every sleeper in deadline order (so background tasks
    such as heartbeats run on schedule), `jump(s)` moves at once (as when a process is
    suspended), and inside `autojump()` time skips ahead whenever every task is waiting. It
    assumes no task waits on real I/O or real timers meanwhile.
    """

    def __init__(self, start: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._epoch = start
        self._now = 0.0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._counter = itertools.count()
        self._new_sleeper: anyio.Event | None = None
        self._cancelled: set[int] = set()  # sleepers that were cancelled before waking
        self._jumping = False

    def __repr__(self) -> str:
        return f"<VirtualClock {self.utcnow().isoformat()} (+{self._now:g} s)>"

    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._epoch + timedelta(seconds=self._now)

    def epoch(self) -> float:
        """The current wall-clock time as epoch seconds."""
        return self._epoch.timestamp() + self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        number = next(self._counter)
        heapq.heappush(self._sleepers, (self._now + seconds, number, event))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        try:
            await event.wait()
        finally:
            if not event.is_set():
                self._cancelled.add(number)

    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes (None if nobody sleeps)."""
        sleepers = self._sleepers
        while sleepers and sleepers[0][1] in self._cancelled:
            self._cancelled.discard(heapq.heappop(sleepers)[1])
        return sleepers[0][0] if sleepers else None

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()

    async def settle(self) -> None:
        """Let every runnable task run until all of them wait (on this clock or on each other)."""
        for _ in range(_SPINS):
            await anyio.lowlevel.checkpoint()
        await anyio.wait_all_tasks_blocked()

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking sleepers in deadline order on the way.

        Inside `autojump()` this is the same as `sleep(seconds)`."""
        if self._jumping:
            await self.sleep(seconds)
            return
        target = self._now + seconds
        while True:
            await self.settle()
            deadline = self.next_deadline()
            if deadline is None or deadline > target:
                break
            self._now = max(self._now, deadline)
            self._wake_due()
        self._now = target
        self._wake_due()
        await self.settle()

    async def jump(self, seconds: float) -> None:
        """Move time forward by `seconds` at once (nothing runs in between), then wake sleepers."""
        if self._jumping:
            raise InvalidState("jump() inside autojump(): leave the autojump block first")
        await self.settle()
        self._now += seconds
        self._wake_due()
        await self.settle()

    def autojump(self) -> _Autojump:
        """`async with clock.autojump():` skip time forward whenever every task waits."""
        return _Autojump(self)

    async def _jumper(self) -> None:
        if self._jumping:
            raise InvalidState("autojump() is already active on this clock")
        self._jumping = True
        try:
            await self._jump_forever()
        finally:
            self._jumping = False

    async def _jump_forever(self) -> None:
        while True:
            await self.settle()
            deadline = self.next_deadline()
            if deadline is None:
                self._new_sleeper = anyio.Event()
                await self._new_sleeper.wait()
                self._new_sleeper = None
                continue
            self._now = max(self._now, deadline)
            self._wake_due()


class _Autojump:
    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> VirtualClock:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._clock._jumper)
        return self._clock

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        # Never hand the body's exception to the task group (anyio would wrap it in a group).
        await self._tg.__aexit__(None, None, None)
