"""A generation: every task reading a stream from one starting position, in one cancel scope.

```
Generation (one per position; `move_to` replaces it)
├── one chain per table: its streams, oldest first (`_source.py`), each a TableReader
│   (`_table_reader.py`) that lists shards and launches a poller per readable shard; the
│   next stream of a chain starts once the previous one is read to its end
│   -- or, in a consumer group, the member (`_group.py`), which launches a poller per lease
├── shard pollers (`_shard.py`) ──pages, end markers──▶ one queue ──▶ consumer or dispatcher
├── heartbeat: renews iterators that wait while the consumer is busy
└── dispatcher (with `partitions(n)`, `_partitions.py`)
```

Order: a child's poller starts only after its parent's poller has put the parent's end marker
in the queue, and the queue is first in, first out, so every record of a parent reaches the
consumer before any record of its children; within a shard, records keep sequence order. The
queue itself is unbounded: the record budget (`Pacing.buffer`) that pollers reserve before
each read is what bounds memory.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from ._clock import Budget, Clock
from ._pacing import Pacing
from ._shard import Item
from ._table_reader import TableReader

if TYPE_CHECKING:
    from ._stream import Stream

__all__ = ["Generation", "Source"]


class Source(Protocol):
    """What launches shard pollers in a generation: the chains of one table, or a group
    member."""

    async def run(self, gen: Generation, send: MemoryObjectSendStream[Item]) -> None: ...

    async def refresh_iterators(self) -> None: ...


class Chain:
    """One table's streams, oldest first: each is read to its end before the next starts.

    When the last one ends (its table's stream was disabled), `more` is asked for streams
    enabled since, which are read in turn; with none, the chain ends.
    """

    def __init__(
        self,
        readers: Sequence[TableReader],
        more: Callable[[str], Awaitable[list[TableReader]]] | None = None,
    ) -> None:
        self.readers = list(readers)
        self.more = more

    async def run(self, gen: Generation, send: MemoryObjectSendStream[Item]) -> None:
        with send:
            index = 0
            while True:
                if index == len(self.readers):
                    if self.more is None or not self.readers:
                        return
                    newer = await self.more(self.readers[-1].arn)
                    if not newer:
                        return
                    self.readers += newer
                    gen.stream._readers += newer
                reader = self.readers[index]
                index += 1
                if gen.scope.cancel_called:
                    return
                reader.spawn = gen.spawn
                reader.fail = gen.fail
                reader.send = send.clone()
                await reader.run()
                if not reader.complete():
                    return  # it failed, and the generation is stopping

    async def refresh_iterators(self) -> None:
        for reader in self.readers:
            await reader.refresh_iterators()


class Generation:
    """Every task reading from one starting position (see the module docstring)."""

    def __init__(self, stream: Stream[Any], sources: Sequence[Source]) -> None:
        self.stream = stream
        self.sources = list(sources)
        pacing: Pacing = stream.pacing
        self.clock: Clock = stream.clock
        self.budget = Budget(pacing.buffer)
        self.send, self.recv = anyio.create_memory_object_stream[Item](math.inf)
        self.scope = anyio.CancelScope()
        self.heartbeat_scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self.tg: TaskGroup | None = None
        self.workers = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            with self.scope:
                async with anyio.create_task_group() as tg:
                    self.tg = tg
                    with self.send:
                        for source in self.sources:
                            self.spawn(_bind(source, self, self.send.clone()))
                    tg.start_soon(self._heartbeat)
                    task_status.started()
        finally:
            self.finished.set()

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` in this generation; the generation ends when every such task has."""
        assert self.tg is not None
        self.workers += 1
        self.tg.start_soon(self._worker, fn)

    async def _worker(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        finally:
            self.workers -= 1
            if self.workers == 0:
                self.heartbeat_scope.cancel()

    async def _heartbeat(self) -> None:
        stream = self.stream
        with self.heartbeat_scope:
            while True:
                await self.clock.sleep(stream.pacing.heartbeat_interval)
                for source in self.sources:
                    await source.refresh_iterators()

    def fail(self, exc: BaseException) -> None:
        """Stop this generation; the consumer's next call raises `exc`."""
        self.stream._fail(self, exc)


def _bind(
    source: Source, gen: Generation, send: MemoryObjectSendStream[Item]
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await source.run(gen, send)
        except Exception as exc:
            gen.fail(exc)

    return run
