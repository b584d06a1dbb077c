"""Fake services for tests: DynamoDB Streams in memory, on a virtual clock.

`FakeStreams` is a transport (`adyn.Transport`): plug it in with `Engine(transport=fake)` and
read through `engine.stream(Post, clock=fake.clock)`. It answers the DynamoDB Streams API
(DescribeStream, GetShardIterator, GetRecords, ListStreams) with the real request and response
shapes, and does what moto cannot: shards split into one or two children and roll over,
children can be listed late, DescribeStream pages can be tiny, iterators expire after 15
minutes, records are trimmed after 24 hours (and an iterator for a sequence number older than
the trim point is refused, as DynamoDB does), a disabled stream stays readable for 24 hours
beside the table's new one, pages can come back empty while data waits, and calls are throttled
as DynamoDB throttles them (GetRecords beyond five per second on a shard, DescribeStream beyond
ten per second) or as a test injects. It counts what it served (`requests`, `errors`,
`peak_rate(...)`, `served_records`).

It also answers the DynamoDB calls `engine.bind` and `engine.stream` need for its tables
(CreateTable, DescribeTable with the stream's ARN and view type, DescribeTimeToLive,
UpdateTimeToLive). Every other DynamoDB call goes to `inner` (another transport: a consumer
group's lease table can live on moto while the streams are fake); without one, the fake keeps
the items itself (see `_fake_tables.py`), and writes to a table with a stream record changes
exactly as DynamoDB does.

```python
clock = VirtualClock()
fake = FakeStreams(clock, describe_page_size=2)
arn = fake.create_stream("posts", view_type="NEW_AND_OLD_IMAGES")
fake.insert(Post(id="a", n=1))               # or, on the wire: fake.put(arn, key, new=...)
async with Engine(transport=fake) as engine:
    await engine.bind(Post)
    async with clock.autojump(), engine.stream(Post, clock=clock, position="trim_horizon") as s:
        record = await s.next(timeout=60)
```

`VirtualClock` only moves when told to: `advance(s)` walks time forward waking every sleeper in
deadline order (so background tasks such as heartbeats run on schedule), `jump(s)` moves at once
(as when a process is suspended), and inside `autojump()` time skips ahead whenever every task is
waiting. It assumes no task waits on real I/O or real timers meanwhile. For tests across
processes, `FakeStreams(SystemClock())` runs on real time and `fake.serve()` answers over HTTP.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import itertools
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio.lowlevel
import orjson

from ..errors import DynamoError, Throttled, service_error
from ..stream._source import StreamSource
from ._fake_tables import Tables
from ._virtual_clock import VirtualClock

__all__ = ["ITERATOR_TTL", "RETENTION", "FakeStreams", "VirtualClock", "plain_source"]

Wire = dict[str, Any]

RETENTION = 24 * 3600.0
ITERATOR_TTL = 15 * 60.0
HASH_SPACE = 2**32
STREAMS = "dynamodbstreams"
_THROTTLING = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})
_TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
_VIEWS = frozenset({"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"})


class _Clock(Protocol):
    def now(self) -> float: ...

    def utcnow(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class _Transport(Protocol):
    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]: ...


@dataclass
class _Record:
    seq: int
    wall: float  # exact creation time (epoch seconds): what trimming looks at
    wire: Wire  # its own copy of what `put` was given; GetRecords hands it out as it is


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

    def trim_point(self) -> int:
        """The oldest sequence number an iterator may still be asked for."""
        if self.trimmed < len(self.records):
            return self.records[self.trimmed].seq
        if self.records:
            return self.records[-1].seq + 1
        return self.start_seq


@dataclass
class _Stream:
    arn: str
    label: str
    table: str
    view_type: str
    key_schema: list[Wire]
    shards: dict[str, _Shard] = field(default_factory=dict)  # creation order
    status: str = "ENABLED"
    disabled_at: float | None = None


@dataclass
class _Table:
    name: str
    description: Wire
    streams: list[str] = field(default_factory=list)  # oldest first
    ttl: Wire = field(default_factory=lambda: {"TimeToLiveStatus": "DISABLED"})


@dataclass
class _Iterator:
    arn: str
    shard_id: str
    index: int
    issued: float


class FakeStreams:
    """An in-memory DynamoDB Streams service (see the module docstring).

    Use it as a transport (`await fake.call(service, operation, request, idempotent=...)`), or
    call it with the Streams API alone: `await fake(operation, request)`. Options:
    `describe_page_size` (shards per DescribeStream page, whatever `Limit` asks),
    `page_limit` (records per GetRecords page at most), `empty_every` (every n-th GetRecords
    on a shard answers an empty page without moving, even when data waits), `rate_limit`
    (GetRecords per shard per second before LimitExceededException; 0 disables),
    `describe_rate_limit` (DescribeStream calls per second, 10 as DynamoDB; 0 disables),
    `seq_start` (first sequence number; the default makes them grow from 20 to 21 digits),
    `shards` (open shards of a stream that CreateTable makes), `inner` (the transport for
    DynamoDB calls about tables the fake does not keep).
    """

    def __init__(
        self,
        clock: _Clock | None = None,
        *,
        describe_page_size: int = 100,
        page_limit: int = 1000,
        empty_every: int = 0,
        rate_limit: int = 5,
        describe_rate_limit: int = 10,
        seq_start: int = 10**20 - 5,
        record_calls: bool = True,
        shards: int = 1,
        inner: _Transport | None = None,
    ) -> None:
        self.clock: _Clock = clock or VirtualClock()
        self.describe_page_size = describe_page_size
        self.page_limit = page_limit
        self.empty_every = empty_every
        self.rate_limit = rate_limit
        self.describe_rate_limit = describe_rate_limit
        self.record_calls = record_calls
        self.default_shards = shards
        self.inner = inner
        self.calls: list[tuple[float, str, Wire]] = []
        self.errors: Counter[str] = Counter()  # error code -> times raised
        self.requests: Counter[str] = Counter()  # operation -> times called
        self.served_records = 0  # records GetRecords has returned
        self.items = Tables()  # the items of tables the fake keeps (no inner transport)
        self._windows: dict[str, deque[float]] = {}
        self._peaks: Counter[str] = Counter()
        self._streams: dict[str, _Stream] = {}
        self._tables: dict[str, _Table] = {}
        self._iterators: dict[str, _Iterator] = {}
        self._faults: dict[str, deque[str]] = {}
        self._every: dict[str, tuple[int, str]] = {}
        self._seq = seq_start
        self._ids = itertools.count(1)
        self._describes: deque[float] = deque()

    def __repr__(self) -> str:
        return f"<FakeStreams streams={len(self._streams)} tables={len(self._tables)}>"

    # ------------------------------------------------------------ time

    def _now(self) -> float:
        return self.clock.now()

    def _epoch(self) -> float:
        return self.clock.utcnow().timestamp()

    # ------------------------------------------------------------ test controls

    def create_stream(
        self,
        table: str = "table",
        *,
        view_type: str = "NEW_AND_OLD_IMAGES",
        shards: int = 1,
        key_schema: list[Wire] | None = None,
    ) -> str:
        """A table's stream with `shards` open shards splitting the key space; returns its ARN.

        The table is created too when the fake does not know it yet (with `key_schema`, by
        default a string hash key "id").
        """
        if view_type not in _VIEWS:
            raise ValueError(f"view_type must be one of {sorted(_VIEWS)}")
        schema = key_schema or [{"AttributeName": "id", "KeyType": "HASH"}]
        known = self._tables.get(table)
        if known is None:
            definitions = [
                {"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in schema
            ]
            known = self._add_table(
                table, {"KeySchema": schema, "AttributeDefinitions": definitions}
            )
        elif known.streams and self._streams[known.streams[-1]].status == "ENABLED":
            raise ValueError(f"table {table!r} already has an enabled stream")
        schema = known.description.get("KeySchema") or schema
        label = self._label()
        arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/{label}"
        stream = _Stream(arn, label, table, view_type, schema)
        self._streams[arn] = stream
        known.streams.append(arn)
        step = HASH_SPACE // shards
        for i in range(shards):
            hi = HASH_SPACE if i == shards - 1 else (i + 1) * step
            self._new_shard(stream, None, i * step, hi, self._now())
        return arn

    def enable(self, table: str, *, view_type: str | None = None, shards: int = 1) -> str:
        """Enable the stream of a table whose stream was disabled: a new stream, with a new
        ARN; the previous one stays readable for 24 hours. Returns the new ARN."""
        known = self._tables.get(table)
        if known is None or not known.streams:
            raise ValueError(f"table {table!r} has had no stream")
        view = view_type or self._streams[known.streams[-1]].view_type
        return self.create_stream(table, view_type=view, shards=shards)

    def stream_arns(self, table: str) -> list[str]:
        """The table's streams, oldest first (including removed ones)."""
        return list(self._tables[table].streams)

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
        wall = self._epoch()
        body: Wire = {
            "ApproximateCreationDateTime": float(int(wall)),
            "Keys": key,
            "SequenceNumber": str(self._seq),
            "SizeBytes": 0,
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
        data = orjson.dumps(wire)
        wire = orjson.loads(data)  # a copy: the caller may change what it passed
        wire["dynamodb"]["SizeBytes"] = len(data)  # about what DynamoDB counts
        shard.records.append(_Record(self._seq, wall, wire))
        shard.seqs.append(self._seq)
        return str(self._seq)

    # Friendly writes from model objects.

    def insert(self, obj: Any, *, table: str | None = None) -> str:
        """Record the creation of `obj` (an adyn model object) in its table's stream."""
        arn, key, image = self._image_of(obj, table)
        return self.put(arn, key, new=image)

    def modify(self, old: Any, new: Any, *, table: str | None = None) -> str:
        """Record that the item of `old` became `new` (same key)."""
        arn, key, old_image = self._image_of(old, table)
        _, new_key, new_image = self._image_of(new, table)
        if new_key != key:
            raise ValueError("modify() needs two objects with the same key")
        return self.put(arn, key, new=new_image, old=old_image)

    def remove(self, obj: Any, *, ttl: bool = False, table: str | None = None) -> str:
        """Record the removal of `obj`'s item (`ttl=True`: by DynamoDB's TTL process)."""
        arn, key, image = self._image_of(obj, table)
        return self.put(arn, key, old=image, ttl=ttl)

    def _image_of(self, obj: Any, table: str | None) -> tuple[str, Wire, Wire]:
        from ..schema import schema_of

        schema = schema_of(type(obj))
        name = table or schema.table_name
        known = self._tables.get(name)
        if known is None or not known.streams:
            raise ValueError(
                f"the fake has no stream for table {name!r} (tables: {sorted(self._tables)}); "
                "pass table= when the engine's table_name_template renames it"
            )
        return known.streams[-1], schema.key_of(obj), schema.encode_item(obj)

    # Shards.

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
        which DescribeStream lists only `list_after` seconds from now (never before their
        parent)."""
        if children not in (1, 2):
            raise ValueError("a shard splits into one or two children")
        stream = self._streams[arn]
        shard = stream.shards[shard_id] if shard_id else self.open_shards(arn)[0]
        if shard.end_seq is not None:
            raise ValueError(f"shard {shard.shard_id} is already closed")
        self._close(shard)
        listed = max(self._now() + list_after, shard.listed_at)
        if children == 1:
            ranges = [(shard.lo, shard.hi)]
        else:
            mid = (shard.lo + shard.hi) // 2
            ranges = [(shard.lo, mid), (mid, shard.hi)]
        return [self._new_shard(stream, shard.shard_id, lo, hi, listed) for lo, hi in ranges]

    def disable(self, arn: str) -> None:
        """Disable the stream: every open shard closes and no children follow. It stays
        readable for 24 hours."""
        stream = self._streams[arn]
        now = self._now()
        for shard in stream.shards.values():
            if shard.end_seq is None:
                self._close(shard)
            shard.listed_at = min(shard.listed_at, now)  # a disabled stream lists every shard
        stream.status = "DISABLED"
        stream.disabled_at = self._now()

    def open_shards(self, arn: str) -> list[_Shard]:
        return [s for s in self._streams[arn].shards.values() if s.end_seq is None]

    def shards(self, arn: str) -> list[_Shard]:
        return list(self._streams[arn].shards.values())

    def parent_of(self, arn: str, shard_id: str) -> str | None:
        shard = self._streams[arn].shards.get(shard_id)
        return shard.parent_id if shard else None

    def fail(self, operation: str, code: str, times: int = 1) -> None:
        """Make the next `times` calls of `operation` fail with `code` (throttling codes raise
        `Throttled`, as the engine does once its own retries are spent)."""
        self._faults.setdefault(operation, deque()).extend([code] * times)

    def fail_every(self, operation: str, n: int, code: str = "LimitExceededException") -> None:
        """Make every n-th call of `operation` fail with `code` (0 stops it)."""
        if n:
            self._every[operation] = (n, code)
        else:
            self._every.pop(operation, None)

    def peak_rate(self, operation: str) -> int:
        """The most calls of `operation` served in any one second so far."""
        return self._peaks[operation]

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1") -> AsyncIterator[str]:
        """`async with fake.serve() as url:` answer DynamoDB's HTTP protocol on `url`, so
        engines in other processes can use the fake (`Engine(endpoint_url=url)`)."""
        from ._fake_http import serve

        async with serve(self, host) as url:
            yield url

    # ------------------------------------------------------------ the service

    async def __call__(self, operation: str, request: Mapping[str, Any]) -> Wire:
        """A DynamoDB Streams call (the coordinator's own call shape)."""
        return await self.call(STREAMS, operation, dict(request), idempotent=True)

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        """One call, as `adyn.Transport` defines it."""
        await anyio.lowlevel.checkpoint()
        self.requests[operation] += 1
        if self.record_calls:
            self.calls.append((self._now(), operation, dict(request)))
        try:
            self._inject(operation)
            if service == STREAMS:
                handler = _HANDLERS.get(operation)
                if handler is None:
                    raise service_error("UnknownOperationException", operation, operation)
                response = handler(self, dict(request))
            else:
                response = await self._dynamodb(operation, request, idempotent)
        except DynamoError as exc:
            self.errors[exc.code] += 1
            raise
        self._count(operation)
        return response

    def _count(self, operation: str) -> None:
        now = self._now()
        window = self._windows.setdefault(operation, deque())
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) > self._peaks[operation]:
            self._peaks[operation] = len(window)

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
            if code in _THROTTLING:
                raise Throttled(code, "injected by FakeStreams", operation)
            raise service_error(code, "injected by FakeStreams", operation, status=400)

    # ------------------------------------------------------------ DynamoDB

    async def _dynamodb(self, operation: str, request: Wire, idempotent: bool) -> Wire:
        name = request.get("TableName")
        known = self._tables.get(name) if isinstance(name, str) else None
        if operation == "CreateTable":
            return await self._create_table(request, idempotent)
        if known is not None and operation == "DescribeTable":
            return {"Table": self._describe_table(known)}
        if known is not None and operation == "DescribeTimeToLive":
            return {"TimeToLiveDescription": dict(known.ttl)}
        if known is not None and operation == "UpdateTimeToLive":
            spec = request.get("TimeToLiveSpecification") or {}
            status = "ENABLED" if spec.get("Enabled") else "DISABLED"
            known.ttl = {"TimeToLiveStatus": status, "AttributeName": spec.get("AttributeName")}
            if self.inner is not None:
                await self.inner.call("dynamodb", operation, request, idempotent=idempotent)
            return {"TimeToLiveSpecification": spec}
        if self.inner is not None:
            return await self.inner.call("dynamodb", operation, request, idempotent=idempotent)
        if operation == "DescribeTable":
            raise service_error(
                "ResourceNotFoundException", f"Requested resource not found: {name}", operation
            )
        response = self.items.handle(operation, request)
        if response is None:
            raise service_error(
                "UnknownOperationException",
                f"FakeStreams does not answer {operation} (give it an inner transport)",
                operation,
            )
        return response

    async def _create_table(self, request: Wire, idempotent: bool) -> Wire:
        name = request.get("TableName")
        if not isinstance(name, str) or not request.get("KeySchema"):
            raise service_error("ValidationException", "CreateTable needs a name and keys")
        if name in self._tables:
            raise service_error(
                "ResourceInUseException", f"Table already exists: {name}", "CreateTable"
            )
        if self.inner is not None:
            await self.inner.call("dynamodb", "CreateTable", request, idempotent=idempotent)
        known = self._add_table(name, request)
        spec = request.get("StreamSpecification") or {}
        if spec.get("StreamEnabled"):
            view = spec.get("StreamViewType", "NEW_AND_OLD_IMAGES")
            self.create_stream(name, view_type=view, shards=self.default_shards)
        return {"TableDescription": self._describe_table(known)}

    def _add_table(self, name: str, request: Wire) -> _Table:
        description = {
            k: copy.deepcopy(v)
            for k, v in request.items()
            if k
            in (
                "KeySchema",
                "AttributeDefinitions",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "BillingMode",
                "ProvisionedThroughput",
            )
        }
        known = _Table(name, description)
        self._tables[name] = known
        if self.inner is None:
            table = self.items.add(name, description)
            table.on_change = lambda key, old, new: self._changed(known, key, old, new)
        return known

    def _changed(self, known: _Table, key: Wire, old: Wire | None, new: Wire | None) -> None:
        if not known.streams:
            return
        arn = known.streams[-1]
        if self._streams[arn].status == "ENABLED":
            self.put(arn, key, new=new, old=old)

    def _describe_table(self, known: _Table) -> Wire:
        description: Wire = {
            "TableName": known.name,
            "TableStatus": "ACTIVE",
            "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{known.name}",
            "ItemCount": 0,
            "TableSizeBytes": 0,
            "CreationDateTime": self._epoch(),
            **copy.deepcopy(known.description),
        }
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for index in description.get(kind) or []:
                index["IndexStatus"] = "ACTIVE"
        if known.streams:
            stream = self._streams[known.streams[-1]]
            description["LatestStreamArn"] = stream.arn
            description["LatestStreamLabel"] = stream.label
            enabled = stream.status == "ENABLED"
            description["StreamSpecification"] = {"StreamEnabled": enabled}
            if enabled:
                description["StreamSpecification"]["StreamViewType"] = stream.view_type
        return description

    # ------------------------------------------------------------ DynamoDB Streams

    def _stream(self, request: Wire, operation: str) -> _Stream:
        stream = self._streams.get(request.get("StreamArn", ""))
        if stream is None or self._stream_removed(stream):
            raise service_error(
                "ResourceNotFoundException", "Requested resource not found", operation
            )
        return stream

    def _stream_removed(self, stream: _Stream) -> bool:
        return stream.disabled_at is not None and self._now() - stream.disabled_at > RETENTION

    def _visible(self, stream: _Stream) -> list[_Shard]:
        now = self._now()
        shards = []
        for shard in stream.shards.values():
            self._trim(shard)
            if shard.listed_at > now or self.removed(shard):
                continue
            shards.append(shard)
        return shards

    def _list_streams(self, request: Wire) -> Wire:
        table = request.get("TableName")
        limit = int(request.get("Limit", 100))
        if not 1 <= limit <= 100:
            raise service_error("ValidationException", "Limit must be 1..100", "ListStreams")
        streams = [
            s
            for s in self._streams.values()
            if (table is None or s.table == table) and not self._stream_removed(s)
        ]
        start = request.get("ExclusiveStartStreamArn")
        if start:
            arns = [s.arn for s in streams]
            streams = streams[arns.index(start) + 1 :] if start in arns else []
        page = streams[:limit]
        response: Wire = {
            "Streams": [
                {"StreamArn": s.arn, "TableName": s.table, "StreamLabel": s.label} for s in page
            ]
        }
        if len(streams) > limit:
            response["LastEvaluatedStreamArn"] = page[-1].arn
        return response

    def _describe(self, request: Wire) -> Wire:
        op = "DescribeStream"
        stream = self._stream(request, op)
        limit = int(request.get("Limit", 100))
        if not 1 <= limit <= 100:
            raise service_error("ValidationException", "Limit must be 1..100", op)
        if self.describe_rate_limit:
            now = self._now()
            calls = self._describes
            while calls and calls[0] <= now - 1.0:
                calls.popleft()
            if len(calls) >= self.describe_rate_limit:
                raise service_error("LimitExceededException", "Rate exceeded for stream", op)
            calls.append(now)
        ids = list(stream.shards)
        start = request.get("ExclusiveStartShardId")
        begin = ids.index(start) + 1 if start in stream.shards else 0
        after = set(ids[begin:])
        visible = [s for s in self._visible(stream) if s.shard_id in after]
        shard_filter = request.get("ShardFilter")
        if shard_filter:
            if shard_filter.get("Type") != "CHILD_SHARDS" or not shard_filter.get("ShardId"):
                raise service_error("ValidationException", "bad ShardFilter", op)
            visible = [s for s in visible if s.parent_id == shard_filter["ShardId"]]
        page = visible[: min(limit, self.describe_page_size)]
        description: Wire = {
            "StreamArn": stream.arn,
            "StreamLabel": stream.label,
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
            raise service_error(
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
                raise service_error(
                    "ValidationException", f"sequence number {seq} is not in the shard", op
                )
            if seq < shard.trim_point():
                # DynamoDB refuses a position older than the trim point, whether or not any
                # record after it was trimmed.
                raise service_error(
                    "TrimmedDataAccessException", "the sequence number is beyond retention", op
                )
            find = bisect.bisect_left if kind == "AT_SEQUENCE_NUMBER" else bisect.bisect_right
            index = find(shard.seqs, seq)
        else:
            raise service_error("ValidationException", f"bad ShardIteratorType {kind!r}", op)
        return {"ShardIterator": self._issue(stream.arn, shard, index)}

    def _issue(self, arn: str, shard: _Shard, index: int) -> str:
        token = f"it-{next(self._ids)}"
        self._iterators[token] = _Iterator(arn, shard.shard_id, index, self._now())
        return token

    def _get_records(self, request: Wire) -> Wire:
        op = "GetRecords"
        iterator = self._iterators.get(request.get("ShardIterator", ""))
        if iterator is None:
            raise service_error("ValidationException", "Invalid ShardIterator", op)
        limit = int(request.get("Limit", 1000))
        if not 1 <= limit <= 1000:
            raise service_error("ValidationException", "Limit must be 1..1000", op)
        now = self._now()
        if now - iterator.issued >= ITERATOR_TTL:
            raise service_error("ExpiredIteratorException", "Iterator expired", op)
        shard = self._streams[iterator.arn].shards[iterator.shard_id]
        self._trim(shard)
        if iterator.index < shard.trimmed:
            raise service_error("TrimmedDataAccessException", "the records were trimmed", op)
        if self.rate_limit:
            calls = shard.calls
            while calls and calls[0] <= now - 1.0 + 1e-9:
                calls.popleft()
            if len(calls) >= self.rate_limit:
                raise service_error("LimitExceededException", "Rate exceeded for shard", op)
            calls.append(now)
        shard.served += 1
        index = iterator.index
        if self.empty_every and shard.served % self.empty_every == 0:
            records: list[_Record] = []
        else:
            records = shard.records[index : index + min(limit, self.page_limit)]
        index += len(records)
        self.served_records += len(records)
        response: Wire = {"Records": [r.wire for r in records]}
        if shard.end_seq is None or index < len(shard.records):
            response["NextShardIterator"] = self._issue(iterator.arn, shard, index)
        return response

    # ------------------------------------------------------------ internals

    def _label(self) -> str:
        """A stream label: its creation time, as DynamoDB writes it (unique, in order)."""
        stamp = datetime.fromtimestamp(self._epoch(), UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{next(self._ids):06d}"

    def _new_shard(
        self, stream: _Stream, parent: str | None, lo: int, hi: int, listed_at: float
    ) -> str:
        number = next(self._ids)
        shard_id = f"shardId-{int(self._epoch() * 1000):020d}-{number:08x}"
        stream.shards[shard_id] = _Shard(
            shard_id, parent, lo, hi, self._seq + 1, self._now(), listed_at
        )
        return shard_id

    def _close(self, shard: _Shard) -> None:
        shard.end_seq = max(self._seq, shard.start_seq)
        shard.closed_at = self._now()

    def _trim(self, shard: _Shard) -> None:
        cutoff = self._epoch() - RETENTION
        records = shard.records
        while shard.trimmed < len(records) and records[shard.trimmed].wall < cutoff:
            shard.trimmed += 1

    def removed(self, shard: _Shard) -> bool:
        """True once a closed shard is older than the retention period (DynamoDB drops it)."""
        return shard.closed_at is not None and self._now() - shard.closed_at > RETENTION


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
    arn: str, model: type = dict, view_type: str = "NEW_AND_OLD_IMAGES", table: str | None = None
) -> StreamSource:
    """A `StreamSource` that decodes images and keys into plain dicts (no adyn model needed)."""

    def decode(item: Wire) -> dict[str, Any]:
        return {name: plain_value(value) for name, value in item.items()}

    return StreamSource(arn, model, view_type, decode, decode, table)


def _hash(key: Wire) -> int:
    text = repr(sorted((name, sorted(value.items())) for name, value in key.items()))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


_HANDLERS = {
    "DescribeStream": FakeStreams._describe,
    "GetShardIterator": FakeStreams._get_shard_iterator,
    "GetRecords": FakeStreams._get_records,
    "ListStreams": FakeStreams._list_streams,
}
