"""`TableReader`: one stream of a table inside the coordinator: its shard tree, its discovery
loop and its token entries.

The tree starts from a full DescribeStream listing (every page, within the stream's
DescribeStream rate). A shard becomes readable when its parent has been read to its end (or is
not listed: trimmed away). When a shard ends, its children are looked up with DescribeStream's
`ShardFilter` (one small call, not a listing of every shard), with backoff until they appear, so
no lineage is dropped; a full listing runs only every `Pacing.discovery_interval`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..errors import DynamoError, RecordsExpired, ResourceNotFoundError, TrimmedDataAccessError
from ._clock import wait_for
from ._position import Ledger, ShardInfo, Start
from ._shard import Item, ReadContext, Shard, ShardReader, patient_call

__all__ = ["TableReader", "list_children", "list_shards"]

log = logging.getLogger("adyn.stream")

Spawn = Callable[[Callable[[], Awaitable[None]]], None]


async def list_shards(ctx: ReadContext, arn: str) -> tuple[str, list[ShardInfo]]:
    """Every shard DescribeStream lists, following `LastEvaluatedShardId` to the end."""
    request: dict[str, Any] = {"StreamArn": arn, "Limit": ctx.pacing.describe_limit}
    return await _describe(ctx, request)


async def list_children(ctx: ReadContext, arn: str, shard_id: str) -> list[ShardInfo]:
    """The children of one shard (DescribeStream with a `CHILD_SHARDS` filter)."""
    request: dict[str, Any] = {
        "StreamArn": arn,
        "Limit": ctx.pacing.describe_limit,
        "ShardFilter": {"Type": "CHILD_SHARDS", "ShardId": shard_id},
    }
    _, infos = await _describe(ctx, request)
    # A service that ignores the filter lists every shard: keep the children only.
    return [info for info in infos if info.parent_id == shard_id]


async def _describe(ctx: ReadContext, request: dict[str, Any]) -> tuple[str, list[ShardInfo]]:
    status = "ENABLED"
    infos: dict[str, ShardInfo] = {}
    while True:
        response = await patient_call(ctx, "DescribeStream", request)
        description = response.get("StreamDescription") or {}
        status = description.get("StreamStatus") or status
        for wire in description.get("Shards") or ():
            info = ShardInfo.from_wire(wire)
            infos.setdefault(info.shard_id, info)
        last = description.get("LastEvaluatedShardId")
        if not last:
            return status, list(infos.values())
        request = {**request, "ExclusiveStartShardId": last}


class TableReader:
    """One stream within a generation: its shard tree, discovery loop and pollers."""

    def __init__(self, ctx: ReadContext, arn: str) -> None:
        self.ctx = ctx
        self.arn = arn
        self.stats = ctx.stats
        self.shards: dict[str, Shard] = {}
        self.ledgers: dict[str, Ledger] = {}
        self.status = "ENABLED"
        self.spawn: Spawn | None = None
        self.fail: Callable[[BaseException], None] | None = None
        self.send: MemoryObjectSendStream[Item] | None = None
        self.wake = anyio.Event()
        self.stopping = False

    def __repr__(self) -> str:
        return f"<TableReader {self.arn} shards={len(self.shards)}>"

    # ------------------------------------------------------------ listing

    async def describe(self) -> tuple[str, list[ShardInfo]]:
        return await list_shards(self.ctx, self.arn)

    def merge(self, status: str, infos: Sequence[ShardInfo]) -> None:
        """Fold a listing into the tree; forget shards that are gone and fully delivered."""
        self.status = status
        listed = set()
        for info in infos:
            listed.add(info.shard_id)
            shard = self.shards.get(info.shard_id)
            if shard is None:
                ledger = self.ledgers.setdefault(info.shard_id, Ledger())
                self.shards[info.shard_id] = Shard(info, ledger)
            elif info.closed:
                shard.closed = True
        for shard in self.shards.values():
            parent = self.shards.get(shard.parent_id) if shard.parent_id else None
            if parent is not None and shard.id not in parent.children:
                parent.children.append(shard.id)
        gone = [s.id for s in self.shards.values() if s.id not in listed and s.finished]
        for shard_id in gone:
            if not self.ledgers[shard_id].done:
                continue
            del self.shards[shard_id]
            del self.ledgers[shard_id]

    async def pin_latest(self) -> None:
        """Take a LATEST iterator for every shard that starts there, now: "latest" means after
        the stream opened, not after its pollers first ran."""
        ctx = self.ctx
        pending = [s for s in self.shards.values() if s.ledger.start == Start("latest")]
        limiter = anyio.CapacityLimiter(16)

        async def pin(shard: Shard) -> None:
            request = shard.iterator_request(self.arn)
            async with limiter:
                response = await patient_call(ctx, "GetShardIterator", request)
            self.stats.iterators_acquired += 1
            shard.latest_used = True
            shard.iterator = response.get("ShardIterator")
            shard.iterator_at = ctx.clock.now()

        async with anyio.create_task_group() as tg:
            for shard in pending:
                tg.start_soon(pin, shard)

    # ------------------------------------------------------------ pollers

    def start_eligible(self) -> None:
        for shard in list(self.shards.values()):
            if shard.started or shard.finished:
                continue
            parent = self.shards.get(shard.parent_id) if shard.parent_id else None
            if parent is None or parent.finished:
                self.launch(shard)

    def launch(self, shard: Shard) -> None:
        if self.stopping or self.spawn is None or self.send is None or self.fail is None:
            return
        try:
            send = self.send.clone()
        except anyio.ClosedResourceError:
            return  # the discovery loop has ended: its generation is winding down
        shard.started = True
        self.spawn(ShardReader(shard, self.ctx, send, self.on_finished, self.fail).run)

    def on_finished(self, shard: Shard) -> None:
        shard.finished = True
        shard.closed = True
        self.start_eligible()
        if not shard.children:
            self.wake.set()  # look up its children soon: they may not be listed yet

    def awaiting_children(self) -> list[Shard]:
        return [s for s in self.shards.values() if s.finished and not s.children]

    def complete(self) -> bool:
        return self.status == "DISABLED" and all(s.finished for s in self.shards.values())

    async def run(self) -> None:
        """Launch pollers as shards become readable; find children and new shards.

        Returns once the stream is disabled and read to its end.
        """
        assert self.send is not None and self.fail is not None
        ctx = self.ctx
        try:
            with self.send:
                attempts = ctx.attempts()
                last_listing = ctx.clock.now()
                while True:
                    self.start_eligible()
                    if self.complete():
                        return
                    waiting = self.awaiting_children()
                    if waiting and self.status != "DISABLED":
                        await attempts.next()
                        await self._find_children(waiting)
                        if ctx.clock.now() - last_listing < ctx.pacing.discovery_interval:
                            continue
                    else:
                        attempts.reset()
                        self.wake = anyio.Event()
                        wait = ctx.pacing.discovery_interval - (ctx.clock.now() - last_listing)
                        if await wait_for(self.wake, ctx.clock, max(0.0, wait)):
                            continue
                    status, infos = await self.describe()
                    last_listing = ctx.clock.now()
                    self.merge(status, infos)
        except ResourceNotFoundError as exc:
            try:
                self._gone(exc)
            except Exception as error:
                self.fail(error)
        except Exception as exc:
            self.fail(exc)

    def _gone(self, exc: DynamoError) -> None:
        """The stream itself is gone (disabled more than 24 hours ago): what was not read of it
        was trimmed away."""
        unread = [s.id for s in self.shards.values() if not s.finished]
        self.status = "DISABLED"
        for shard in self.shards.values():
            shard.finished = True
        if not unread:
            return
        message = (
            f"stream {self.arn} is gone (a disabled stream is kept for 24 hours) with shards "
            f"not read to their end: {', '.join(unread)} ({exc.code})"
        )
        if self.ctx.on_trim == "raise":
            raise RecordsExpired(message) from exc
        self.stats.trimmed_gaps += len(unread)
        log.warning("skipping a gap: %s", message)

    async def _find_children(self, waiting: list[Shard]) -> None:
        found: list[ShardInfo] = []
        for shard in waiting:
            found += await list_children(self.ctx, self.arn, shard.id)
        if found:
            known = [ShardInfo(s.id, s.parent_id, s.closed) for s in self.shards.values()]
            self.merge(self.status, [*known, *found])
        else:
            # No children yet: the stream may have been disabled meanwhile (one small page
            # carries its status).
            request = {"StreamArn": self.arn, "Limit": 1}
            response = await patient_call(self.ctx, "DescribeStream", request)
            status = (response.get("StreamDescription") or {}).get("StreamStatus")
            if status == "DISABLED":
                # Disabled: every shard it will ever have is listed now; take them all in.
                status, infos = await self.describe()
                self.merge(status, infos)

    async def refresh_iterators(self) -> None:
        """Renew every iterator close to its 15-minute expiry, at the same position."""
        ctx = self.ctx
        limit = ctx.pacing.refresh_after
        for shard in list(self.shards.values()):
            await refresh_iterator(ctx, self.arn, shard, limit)

    # ------------------------------------------------------------ tokens

    def token_entries(self) -> dict[str, str]:
        entries = {
            shard_id: entry
            for shard_id, ledger in self.ledgers.items()
            if (entry := ledger.entry()) is not None
        }
        kept = {}
        for shard_id, entry in entries.items():
            if entry == "done":
                shard = self.shards.get(shard_id)
                # A done parent is implied by any child the token names.
                if shard is None or any(child in entries for child in shard.children):
                    continue
            kept[shard_id] = entry
        return kept


async def refresh_iterator(ctx: ReadContext, arn: str, shard: Shard, limit: float) -> None:
    """Renew the iterator of `shard` if it is older than `limit`, at the same position."""
    clock = ctx.clock
    if shard.finished or shard.iterator is None or shard.lock.locked():
        return
    if clock.now() - shard.iterator_at < limit:
        return
    request = shard.iterator_request(arn)
    if request["ShardIteratorType"] == "LATEST":
        return  # its poller takes a fresh one before it reads (see ShardReader._fetch)
    async with shard.lock:
        if shard.iterator is None or clock.now() - shard.iterator_at < limit:
            return
        request = shard.iterator_request(arn)
        try:
            response = await ctx.call("GetShardIterator", request)
        except DynamoError as exc:
            log.debug("could not renew the iterator of shard %s: %s", shard.id, exc)
            if isinstance(exc, TrimmedDataAccessError | ResourceNotFoundError):
                shard.iterator = None  # its poller meets the error and decides
            return
        shard.iterator = response.get("ShardIterator")
        shard.iterator_at = clock.now()
        ctx.stats.iterators_refreshed += 1
