"""`RetryPolicy`: the one way adyn waits before trying again.

Every loop that backs off uses it: the engine around each call to its transport, batches around
unprocessed items, transactions around conflicts, `bind` while a table is created, and streams
(on their own clock, without end). One formula: exponential steps with full jitter.

```python
attempts = policy.attempts(clock.sleep)
while True:
    try:
        return await send()
    except Throttled:
        if not await attempts.next():   # sleeps the backoff; False once the budget is spent
            raise
```
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from .errors import InvalidArgument

__all__ = ["Attempts", "RetryPolicy"]

Sleep = Callable[[float], Awaitable[None]]

_SHARED_RNG = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently adyn tries again.

    `max_attempts` counts every try of one operation (1: never retry; None: no end). The wait
    before try `n + 1` is a uniform draw below `min(cap, base * 2**n)` seconds (full jitter).
    """

    max_attempts: int | None = 10
    base: float = 0.025
    cap: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int) or self.max_attempts < 1
        ):
            raise InvalidArgument(
                f"RetryPolicy.max_attempts must be an int >= 1 or None, not {self.max_attempts!r}"
            )
        if not (self.base > 0 and self.cap >= self.base):
            raise InvalidArgument(
                f"RetryPolicy needs 0 < base <= cap, got base={self.base!r}, cap={self.cap!r}"
            )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after the `attempt`-th failed try (1-based), with full jitter."""
        step = min(self.cap, self.base * (2 ** min(attempt, 62)))
        return (rng or _SHARED_RNG).uniform(0.0, step)

    def attempts(self, sleep: Sleep | None = None, rng: random.Random | None = None) -> Attempts:
        """A fresh budget of tries for one operation; `sleep` is the clock to wait on."""
        return Attempts(self, sleep or anyio.sleep, rng)


class Attempts:
    """The tries of one operation under a `RetryPolicy`: `await attempts.next()` before each
    retry."""

    __slots__ = ("_policy", "_rng", "_sleep", "count")

    def __init__(self, policy: RetryPolicy, sleep: Sleep, rng: random.Random | None) -> None:
        self._policy = policy
        self._sleep = sleep
        self._rng = rng
        self.count = 1  # the first try is under way

    @property
    def left(self) -> bool:
        """Whether another try is allowed."""
        limit = self._policy.max_attempts
        return limit is None or self.count < limit

    async def next(self) -> bool:
        """Wait the backoff and count one more try; False (without waiting) when none is left."""
        if not self.left:
            return False
        await self._sleep(self._policy.delay(self.count, self._rng))
        self.count += 1
        return True

    def reset(self) -> None:
        """Start counting again (after progress, as a stream does after a successful call)."""
        self.count = 1
