"""`stream.partitions(n)`: one stream split into `n` async iterators for parallel workers.

The dispatcher takes pages from the generation's queue and puts each record in the queue of
its item's partition (a stable hash of the model and the key), so per-item order holds within
a worker. It never waits for a worker: a slow or stalled worker's queue grows while the others
go on, and the stream's record budget (`Pacing.buffer`), which every queued record counts
against until its worker takes it, bounds the whole. Only once a stalled worker holds nearly
the whole budget do the pollers stop.

A record that fails to decode is handed to its item's worker as the error it raised, so that
worker (alone) sees it, and no token or checkpoint ever passes it.
"""

from __future__ import annotations

import base64
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import orjson

from ..errors import InvalidItem
from ._clock import next_within
from ._record import Record, decode_record
from ._shard import Page, ShardEnd

if TYPE_CHECKING:
    from ._generation import Generation
    from ._stream import Stream

__all__ = ["Partition", "Partitions", "partition_of"]

M = TypeVar("M", covariant=True)  # records only come out: a Stream[Post] is a Stream[Model]


def partition_of(record: Record[Any], n: int) -> int:
    """The partition of a record's item: stable across processes and runs."""
    return _partition(record.model, record.raw["dynamodb"]["Keys"], n)


def _partition(model: type, keys: Any, n: int) -> int:
    name = f"{model.__module__}.{model.__qualname__}".encode()
    body = orjson.dumps(keys, option=orjson.OPT_SORT_KEYS, default=_bytes_as_base64)
    return zlib.crc32(body, zlib.crc32(name)) % n


def _bytes_as_base64(value: Any) -> str:
    # Binary key values are base64 text on the wire; hash any raw bytes the same way.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot hash {type(value).__name__} in a stream key")


class Partitions:
    """The per-worker queues of one stream, refilled by one dispatcher per generation."""

    def __init__(self, stream: Stream[Any], n: int) -> None:
        self.stream = stream
        self.n = n
        self.queues: list[deque[Record[Any] | InvalidItem]] = [deque() for _ in range(n)]
        self.wakers: list[anyio.Event] = [anyio.Event() for _ in range(n)]
        self.ended = False
        self.gen: Generation | None = None

    def attach(self, gen: Generation) -> None:
        """Feed the queues from `gen` (dropping what an earlier generation left in them)."""
        for queue in self.queues:
            queue.clear()
        self.gen = gen
        self.ended = gen.finished.is_set()
        if not self.ended:
            gen.spawn(lambda: self._dispatch(gen))
        self._wake_all()

    def _wake_all(self) -> None:
        for i, event in enumerate(self.wakers):
            event.set()
            self.wakers[i] = anyio.Event()

    async def _dispatch(self, gen: Generation) -> None:
        try:
            while True:
                try:
                    item = await gen.recv.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    return
                if isinstance(item, ShardEnd):
                    item.ledger.ended = True
                    continue
                self._route(gen, item)
        except Exception as exc:
            gen.fail(exc)
        finally:
            if self.gen is gen:
                self.ended = True
                self._wake_all()

    def _route(self, gen: Generation, page: Page) -> None:
        ledger = page.ledger
        if ledger.revoked:
            gen.budget.release(len(page.records))
            return
        source = page.source
        lease = ledger.lease
        epoch = lease.epoch if lease is not None else None
        n = self.n
        touched = set()
        routes = page.routes
        for position, raw in enumerate(page.records):
            entity = source if routes is None else routes[position]
            index = _partition(entity.model, raw["dynamodb"]["Keys"], n)
            seq = raw["dynamodb"]["SequenceNumber"]
            item: Record[Any] | InvalidItem
            try:
                item = decode_record(raw, entity, page.shard_id, lease_epoch=epoch, ledger=ledger)
            except InvalidItem as exc:
                ledger.block(seq)
                item = exc
            else:
                object.__setattr__(item, "_ack", ledger.deliver(seq, True))
            self.queues[index].append(item)
            touched.add(index)
        for index in touched:
            event = self.wakers[index]
            event.set()
            self.wakers[index] = anyio.Event()


class Partition(Generic[M]):
    """One worker's share of a partitioned stream (an async iterator of `Record`)."""

    def __init__(self, partitions: Partitions, index: int) -> None:
        self._partitions = partitions
        self._index = index

    def __repr__(self) -> str:
        return f"<Partition {self._index} of {self._partitions.n}>"

    def __aiter__(self) -> Partition[M]:
        return self

    # The API takes a timeout measured on the stream's clock, which may be virtual.
    async def next(self, timeout: float | None = None) -> Record[M] | None:  # noqa: ASYNC109
        """This worker's next record, or None if none arrives within `timeout` seconds (or
        the stream ended)."""
        return await next_within(self._partitions.stream.clock, timeout, self.__anext__)

    async def __anext__(self) -> Record[M]:
        parts = self._partitions
        stream = parts.stream
        index = self._index
        while True:
            stream._raise_failure()
            queue = parts.queues[index]
            if queue:
                item = queue.popleft()
                gen = parts.gen
                if gen is not None:
                    gen.budget.release(1)
                if isinstance(item, InvalidItem):
                    raise item
                if item._ledger is not None and item._ledger.revoked:
                    continue
                await stream._before_delivery(item)
                if stream._observe is not None:
                    stream._observe(item.created_at)
                return item
            if stream._switching is not None:
                await stream._switching.wait()
                continue
            if parts.ended or stream._state == "closed":
                stream._raise_failure()
                raise StopAsyncIteration
            await parts.wakers[index].wait()
