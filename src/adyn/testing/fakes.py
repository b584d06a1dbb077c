"""Fake services for tests: DynamoDB Streams in memory, on a virtual clock.

`FakeStreams` answers the three calls the stream coordinator makes (DescribeStream,
GetShardIterator, GetRecords) with the real request and response shapes, through the same seam as
`Transport.streams`, and does what moto cannot: shards split into one or two children and roll
over, children can be listed late, DescribeStream pages can be tiny, iterators expire after 15
minutes, records are trimmed after 24 hours, pages can come back empty while data waits, and calls
can be throttled (injected faults, and GetRecords beyond five calls per second on a shard).

```python
clock = VirtualClock()
fake = FakeStreams(clock, describe_page_size=2)
arn = fake.create_stream(view_type="NEW_AND_OLD_IMAGES")
fake.put(arn, {"id": {"S": "a"}}, new={"id": {"S": "a"}, "n": {"N": "1"}})
stream = Stream(call=fake, sources=..., clock=clock, position="trim_horizon")
async with clock.autojump(), stream:
    record = await stream.next(timeout=60)
```

`VirtualClock` only moves when told to: `advance(s)` walks time forward waking every sleeper in
deadline order (so background tasks such as heartbeats run on schedule), `jump(s)` moves at once
(as when a process is suspended), and inside `autojump()` time skips ahead whenever every task is
waiting. It assumes no task waits on real I/O or real timers meanwhile.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import heapq
import itertools
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ..errors import DynamoError, Throttled
from ..stream.record import StreamSource

__all__ = ["ITERATOR_TTL", "RETENTION", "FakeStreams", "VirtualClock", "plain_source"]

Wire = dict[str, Any]

RETENTION = 24 * 3600.0
ITERATOR_TTL = 15 * 60.0
HASH_SPACE = 2**32
_THROTTLING = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})
_TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}


class VirtualClock:
    """A clock for `adyn.stream.Clock` whose time moves only when a test moves it."""

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
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        quiet = 0
        for _ in range(100_000):
            await anyio.lowlevel.checkpoint()
            # asyncio's queue of runnable callbacks: empty means every other task is waiting.
            quiet = quiet + 1 if ready is None or not ready else 0
            if quiet >= (3 if ready is not None else 50):
                return

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
            raise RuntimeError("jump() inside autojump(): leave the autojump block first")
        await self.settle()
        self._now += seconds
        self._wake_due()
        await self.settle()

    def autojump(self) -> _Autojump:
        """`async with clock.autojump():` skip time forward whenever every task waits."""
        return _Autojump(self)

    async def _jumper(self) -> None:
        if self._jumping:
            raise RuntimeError("autojump() is already active on this clock")
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
        if exc is None or isinstance(exc, Exception):
            await self._tg.__aexit__(None, None, None)  # let the body's exception through as is
        else:
            await self._tg.__aexit__(exc_type, exc, tb)


@dataclass
class _Record:
    seq: int
    wall: float  # exact creation time (epoch seconds): what trimming looks at
    wire: Wire


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    lo: int  # the key hashes it takes, [lo, hi)
    hi: int
    start_seq: int
    created: float  # clock time
    listed_at: float  # clock time from which DescribeStream shows it
    end_seq: int | None = None
    closed_at: float | None = None
    records: list[_Record] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    trimmed: int = 0  # records[:trimmed] are gone
    calls: deque[float] = field(default_factory=deque)  # recent GetRecords times (rate limit)
    served: int = 0  # GetRecords answered (for `empty_every`)

    def wire(self) -> Wire:
        numbers: Wire = {"StartingSequenceNumber": str(self.start_seq)}
        if self.end_seq is not None:
            numbers["EndingSequenceNumber"] = str(self.end_seq)
        shard: Wire = {"ShardId": self.shard_id, "SequenceNumberRange": numbers}
        if self.parent_id is not None:
            shard["ParentShardId"] = self.parent_id
        return shard


@dataclass
class _Stream:
    arn: str
    table: str
    view_type: str
    key_schema: list[Wire]
    shards: dict[str, _Shard] = field(default_factory=dict)  # creation order
    status: str = "ENABLED"


@dataclass
class _Iterator:
    arn: str
    shard_id: str
    index: int
    issued: float


class FakeStreams:
    """An in-memory DynamoDB Streams service (see the module docstring).

    Call it like `Transport.streams`: `await fake(operation, request)`. Options:
    `describe_page_size` (shards per DescribeStream page, whatever `Limit` asks),
    `page_limit` (records per GetRecords page at most), `empty_every` (every n-th GetRecords
    on a shard answers an empty page without moving, even when data waits), `rate_limit`
    (GetRecords per shard per second before LimitExceededException; 0 disables),
    `seq_start` (first sequence number; the default makes them grow from 20 to 21 digits).
    """

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        describe_page_size: int = 100,
        page_limit: int = 1000,
        empty_every: int = 0,
        rate_limit: int = 5,
        seq_start: int = 10**20 - 5,
        record_calls: bool = True,
    ) -> None:
        self.clock = clock or VirtualClock()
        self.describe_page_size = describe_page_size
        self.page_limit = page_limit
        self.empty_every = empty_every
        self.rate_limit = rate_limit
        self.record_calls = record_calls
        self.calls: list[tuple[float, str, Wire]] = []
        self.errors: Counter[str] = Counter()  # error code -> times raised
        self.requests: Counter[str] = Counter()  # operation -> times called
        self._streams: dict[str, _Stream] = {}
        self._iterators: dict[str, _Iterator] = {}
        self._faults: dict[str, deque[str]] = {}
        self._every: dict[str, tuple[int, str]] = {}
        self._seq = seq_start
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ test controls

    def create_stream(
        self,
        table: str = "table",
        *,
        view_type: str = "NEW_AND_OLD_IMAGES",
        shards: int = 1,
        key_schema: list[Wire] | None = None,
    ) -> str:
        """A new stream with `shards` open shards splitting the key space; returns its ARN."""
        arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/{next(self._ids)}"
        schema = key_schema or [{"AttributeName": "id", "KeyType": "HASH"}]
        stream = _Stream(arn, table, view_type, schema)
        self._streams[arn] = stream
        step = HASH_SPACE // shards
        for i in range(shards):
            hi = HASH_SPACE if i == shards - 1 else (i + 1) * step
            self._new_shard(stream, None, i * step, hi, 0.0)
        return arn

    def put(
        self,
        arn: str,
        key: Wire,
        new: Wire | None = None,
        old: Wire | None = None,
        *,
        ttl: bool = False,
    ) -> str:
        """Record one change of the item `key`; returns its sequence number.

        INSERT when only `new` is given, MODIFY with both, REMOVE with only `old`; `ttl` marks a
        removal by DynamoDB's TTL process.
        """
        stream = self._streams[arn]
        if stream.status != "ENABLED":
            raise ValueError("the stream is disabled")
        if new is not None:
            event = "MODIFY" if old is not None else "INSERT"
        elif old is not None:
            event = "REMOVE"
        else:
            raise ValueError("put() needs new, old or both")
        shard = self.shard_for(arn, key)
        self._seq += 1
        wall = self.clock.epoch()
        body: Wire = {
            "ApproximateCreationDateTime": float(int(wall)),
            "Keys": key,
            "SequenceNumber": str(self._seq),
            "SizeBytes": 10,
            "StreamViewType": stream.view_type,
        }
        if new is not None and stream.view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["NewImage"] = new
        if old is not None and stream.view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["OldImage"] = old
        wire: Wire = {
            "eventID": f"{self._seq:x}",
            "eventName": event,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": body,
        }
        if ttl:
            wire["userIdentity"] = dict(_TTL_IDENTITY)
        shard.records.append(_Record(self._seq, wall, wire))
        shard.seqs.append(self._seq)
        return str(self._seq)

    def shard_for(self, arn: str, key: Wire) -> _Shard:
        """The open shard that takes writes of `key`."""
        point = _hash(key)
        for shard in self._streams[arn].shards.values():
            if shard.end_seq is None and shard.lo <= point < shard.hi:
                return shard
        raise AssertionError("no open shard covers this key")  # pragma: no cover

    def split(
        self, arn: str, shard_id: str | None = None, *, children: int = 2, list_after: float = 0.0
    ) -> list[str]:
        """Close an open shard (the first one by default); writes go on in its 1 or 2 children,
        which DescribeStream lists only `list_after` seconds from now."""
        if children not in (1, 2):
            raise ValueError("a shard splits into one or two children")
        stream = self._streams[arn]
        shard = stream.shards[shard_id] if shard_id else self.open_shards(arn)[0]
        if shard.end_seq is not None:
            raise ValueError(f"shard {shard.shard_id} is already closed")
        self._close(shard)
        listed = self.clock.now() + list_after
        if children == 1:
            ranges = [(shard.lo, shard.hi)]
        else:
            mid = (shard.lo + shard.hi) // 2
            ranges = [(shard.lo, mid), (mid, shard.hi)]
        return [self._new_shard(stream, shard.shard_id, lo, hi, listed) for lo, hi in ranges]

    def disable(self, arn: str) -> None:
        """Disable the stream: every open shard closes and no children follow."""
        stream = self._streams[arn]
        for shard in stream.shards.values():
            if shard.end_seq is None:
                self._close(shard)
        stream.status = "DISABLED"

    def open_shards(self, arn: str) -> list[_Shard]:
        return [s for s in self._streams[arn].shards.values() if s.end_seq is None]

    def shards(self, arn: str) -> list[_Shard]:
        return list(self._streams[arn].shards.values())

    def parent_of(self, arn: str, shard_id: str) -> str | None:
        shard = self._streams[arn].shards.get(shard_id)
        return shard.parent_id if shard else None

    def fail(self, operation: str, code: str, times: int = 1) -> None:
        """Make the next `times` calls of `operation` fail with `code` (throttling codes raise
        `Throttled`, as the transport does once its own retries are spent)."""
        self._faults.setdefault(operation, deque()).extend([code] * times)

    def fail_every(self, operation: str, n: int, code: str = "LimitExceededException") -> None:
        """Make every n-th call of `operation` fail with `code` (0 stops it)."""
        if n:
            self._every[operation] = (n, code)
        else:
            self._every.pop(operation, None)

    # ------------------------------------------------------------ the service

    async def __call__(self, operation: str, request: Mapping[str, Any]) -> Wire:
        await anyio.lowlevel.checkpoint()
        self.requests[operation] += 1
        if self.record_calls:
            self.calls.append((self.clock.now(), operation, dict(request)))
        try:
            self._inject(operation)
            handler = _HANDLERS.get(operation)
            if handler is None:
                raise DynamoError("UnknownOperationException", operation, operation)
            return handler(self, dict(request))
        except DynamoError as exc:
            self.errors[exc.code] += 1
            raise

    def _inject(self, operation: str) -> None:
        code = None
        queue = self._faults.get(operation)
        if queue:
            code = queue.popleft()
        elif operation in self._every:
            n, every_code = self._every[operation]
            if self.requests[operation] % n == 0:
                code = every_code
        if code is not None:
            error = Throttled if code in _THROTTLING else DynamoError
            raise error(code, "injected by FakeStreams", operation)

    def _stream(self, request: Wire, operation: str) -> _Stream:
        stream = self._streams.get(request.get("StreamArn", ""))
        if stream is None:
            raise DynamoError("ResourceNotFoundException", "Stream not found", operation)
        return stream

    def _visible(self, stream: _Stream) -> list[_Shard]:
        now = self.clock.now()
        shards = []
        for shard in stream.shards.values():
            self._trim(shard)
            if shard.listed_at > now or self.removed(shard):
                continue
            shards.append(shard)
        return shards

    def _describe(self, request: Wire) -> Wire:
        stream = self._stream(request, "DescribeStream")
        limit = int(request.get("Limit", 100))
        if not 1 <= limit <= 100:
            raise DynamoError("ValidationException", "Limit must be 1..100", "DescribeStream")
        ids = list(stream.shards)
        start = request.get("ExclusiveStartShardId")
        begin = ids.index(start) + 1 if start in stream.shards else 0
        after = set(ids[begin:])
        visible = [s for s in self._visible(stream) if s.shard_id in after]
        page = visible[: min(limit, self.describe_page_size)]
        description: Wire = {
            "StreamArn": stream.arn,
            "StreamLabel": stream.arn.rsplit("/", 1)[-1],
            "StreamStatus": stream.status,
            "StreamViewType": stream.view_type,
            "TableName": stream.table,
            "KeySchema": stream.key_schema,
            "Shards": [s.wire() for s in page],
        }
        if len(visible) > len(page):
            description["LastEvaluatedShardId"] = page[-1].shard_id
        return {"StreamDescription": description}

    def _shard(self, stream: _Stream, shard_id: str, operation: str) -> _Shard:
        shard = stream.shards.get(shard_id)
        if shard is None or self.removed(shard):
            raise DynamoError(
                "ResourceNotFoundException", f"Shard {shard_id} does not exist", operation
            )
        return shard

    def _get_shard_iterator(self, request: Wire) -> Wire:
        op = "GetShardIterator"
        stream = self._stream(request, op)
        shard = self._shard(stream, request.get("ShardId", ""), op)
        self._trim(shard)
        kind = request.get("ShardIteratorType")
        if kind == "TRIM_HORIZON":
            index = shard.trimmed
        elif kind == "LATEST":
            index = len(shard.records)
        elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            seq = int(request["SequenceNumber"])
            if seq < shard.start_seq or (shard.end_seq is not None and seq > shard.end_seq):
                raise DynamoError(
                    "ValidationException", f"sequence number {seq} is not in the shard", op
                )
            find = bisect.bisect_left if kind == "AT_SEQUENCE_NUMBER" else bisect.bisect_right
            index = find(shard.seqs, seq)
            if index < shard.trimmed:
                raise DynamoError("TrimmedDataAccessException", "the records were trimmed", op)
        else:
            raise DynamoError("ValidationException", f"bad ShardIteratorType {kind!r}", op)
        return {"ShardIterator": self._issue(stream.arn, shard, index)}

    def _issue(self, arn: str, shard: _Shard, index: int) -> str:
        token = f"it-{next(self._ids)}"
        self._iterators[token] = _Iterator(arn, shard.shard_id, index, self.clock.now())
        return token

    def _get_records(self, request: Wire) -> Wire:
        op = "GetRecords"
        iterator = self._iterators.get(request.get("ShardIterator", ""))
        if iterator is None:
            raise DynamoError("ValidationException", "Invalid ShardIterator", op)
        limit = int(request.get("Limit", 1000))
        if not 1 <= limit <= 1000:
            raise DynamoError("ValidationException", "Limit must be 1..1000", op)
        now = self.clock.now()
        if now - iterator.issued >= ITERATOR_TTL:
            raise DynamoError("ExpiredIteratorException", "Iterator expired", op)
        shard = self._streams[iterator.arn].shards[iterator.shard_id]
        self._trim(shard)
        if iterator.index < shard.trimmed:
            raise DynamoError("TrimmedDataAccessException", "the records were trimmed", op)
        if self.rate_limit:
            calls = shard.calls
            while calls and calls[0] <= now - 1.0 + 1e-9:
                calls.popleft()
            if len(calls) >= self.rate_limit:
                raise DynamoError("LimitExceededException", "Rate exceeded for shard", op)
            calls.append(now)
        shard.served += 1
        index = iterator.index
        if self.empty_every and shard.served % self.empty_every == 0:
            records: list[_Record] = []
        else:
            records = shard.records[index : index + min(limit, self.page_limit)]
        index += len(records)
        response: Wire = {"Records": [r.wire for r in records]}
        if shard.end_seq is None or index < len(shard.records):
            response["NextShardIterator"] = self._issue(iterator.arn, shard, index)
        return response

    # ------------------------------------------------------------ internals

    def _new_shard(
        self, stream: _Stream, parent: str | None, lo: int, hi: int, listed_at: float
    ) -> str:
        number = next(self._ids)
        shard_id = f"shardId-{int(self.clock.epoch() * 1000):020d}-{number:08x}"
        stream.shards[shard_id] = _Shard(
            shard_id, parent, lo, hi, self._seq + 1, self.clock.now(), listed_at
        )
        return shard_id

    def _close(self, shard: _Shard) -> None:
        shard.end_seq = max(self._seq, shard.start_seq)
        shard.closed_at = self.clock.now()

    def _trim(self, shard: _Shard) -> None:
        cutoff = self.clock.epoch() - RETENTION
        records = shard.records
        while shard.trimmed < len(records) and records[shard.trimmed].wall < cutoff:
            shard.trimmed += 1

    def removed(self, shard: _Shard) -> bool:
        """True once a closed shard is older than the retention period (DynamoDB drops it)."""
        return shard.closed_at is not None and self.clock.now() - shard.closed_at > RETENTION


def plain_value(value: Wire) -> Any:
    """A wire attribute value as plain Python (N as int or float, maps and lists recursively)."""
    ((kind, inner),) = value.items()
    if kind == "N":
        number = float(inner)
        return int(number) if number.is_integer() and "." not in inner else number
    if kind == "M":
        return {k: plain_value(v) for k, v in inner.items()}
    if kind == "L":
        return [plain_value(v) for v in inner]
    if kind == "NULL":
        return None
    return inner


def plain_source(
    arn: str, model: type = dict, view_type: str = "NEW_AND_OLD_IMAGES"
) -> StreamSource:
    """A `StreamSource` that decodes images and keys into plain dicts (no adyn model needed)."""

    def decode(item: Wire) -> dict[str, Any]:
        return {name: plain_value(value) for name, value in item.items()}

    return StreamSource(arn, model, view_type, decode, decode)


def _hash(key: Wire) -> int:
    text = repr(sorted((name, sorted(value.items())) for name, value in key.items()))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


_HANDLERS = {
    "DescribeStream": FakeStreams._describe,
    "GetShardIterator": FakeStreams._get_shard_iterator,
    "GetRecords": FakeStreams._get_records,
}
