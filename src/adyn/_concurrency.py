"""Concurrency helpers: many awaitables with a bound on those in flight, and read-ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

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


class Ahead(Generic[T]):
    """Work started now and awaited later: the next page of an iterator, read ahead.

    An async iterator cannot keep a task group open across its `yield` (the consumer's code
    would run inside the group's cancel scope), so the read-ahead is one task that the iterator
    owns: it awaits it, or ends it with `aclose()` (from its `finally`) when iteration stops
    early. Its failure, if any, is raised where it is awaited.
    """

    __slots__ = ("_task",)

    def __init__(self, work: Coroutine[Any, Any, T]) -> None:
        self._task: asyncio.Task[T] = asyncio.get_running_loop().create_task(work)

    async def result(self) -> T:
        return await self._task

    async def aclose(self) -> None:
        """Cancel the work if it still runs and wait for it to end (its failure is dropped)."""
        task = self._task
        if not task.done():
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: never logged as "never retrieved"
