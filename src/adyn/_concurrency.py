"""Run many awaitables with a bound on how many are in flight, inside one task group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


async def run_bounded(items: Sequence[T], fn: Callable[[T], Awaitable[R]], limit: int) -> list[R]:
    """`[await fn(x) for x in items]`, up to `limit` at once; every call runs to its end.

    When calls fail, the first failure (in item order) is raised once all have finished, with
    a note naming how many others failed: callers see one adyn error, not an ExceptionGroup,
    and no call is cancelled half-way because another one failed.
    """
    if len(items) == 1:
        return [await fn(items[0])]
    results: list[Any] = [None] * len(items)
    errors: list[tuple[int, BaseException]] = []
    limiter = anyio.Semaphore(max(1, limit))

    async def one(i: int, item: T) -> None:
        async with limiter:
            try:
                results[i] = await fn(item)
            except Exception as exc:
                errors.append((i, exc))

    async with anyio.create_task_group() as tg:
        for i, item in enumerate(items):
            tg.start_soon(one, i, item)
    if errors:
        errors.sort(key=lambda e: e[0])
        first = errors[0][1]
        if len(errors) > 1:
            first.add_note(
                f"{len(errors) - 1} other call(s) of the same request also failed: "
                + "; ".join(f"{type(e).__name__}: {e}" for _, e in errors[1:4])
            )
        raise first
    return results
