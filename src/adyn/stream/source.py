"""One table's stream inside the coordinator: its shard tree, discovery loop and tokens.

The tree is rebuilt from DescribeStream listings (every page). A shard becomes readable when its
parent has been read to its end (or is no longer listed); a shard that ends with no children
listed yet makes the loop list again with backoff until they appear, so no lineage is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..errors import DynamoError
from .clock import wait_for
from .position import Ledger, ShardInfo, Start
from .shard import NOT_FOUND, TRIMMED, Item, ReadContext, Shard, ShardReader, is_throttling

if TYPE_CHECKING:
    from .coordinator import Generation

__all__ = ["TableReader"]

log = logging.getLogger("adyn.stream")


class TableReader:
    """One table's stream within a generation: its shard tree and its discovery loop."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.arn = ctx.source.stream_arn
        self.stats = ctx.stats
        self.shards: dict[str, Shard] = {}
        self.ledgers: dict[str, Ledger] = {}
        self.status = "ENABLED"
        self.gen: Generation | None = None
        self.send: MemoryObjectSendStream[Item] | None = None
        self.wake = anyio.Event()

    async def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One Streams call, waited out with backoff for as long as it is throttled.

        A stream reader has nothing better to do than wait: unlike a request handler it has no
        caller to hand the failure to, so throttling never ends it.
        """
        ctx = self.ctx
        attempt = 0
        while True:
            try:
                return await ctx.call(operation, request)
            except DynamoError as exc:
                if not is_throttling(exc):
                    raise
                self.stats.throttled += 1
                await ctx.clock.sleep(ctx.pacing.backoff_delay(attempt, ctx.rng))
                attempt += 1

    # ------------------------------------------------------------ listing

    async def describe(self) -> tuple[str, list[ShardInfo]]:
        """Every shard DescribeStream lists, following `LastEvaluatedShardId` to the end."""
        ctx = self.ctx
        request: dict[str, Any] = {"StreamArn": self.arn, "Limit": ctx.pacing.describe_limit}
        status = self.status
        infos: dict[str, ShardInfo] = {}
        while True:
            self.stats.describe_calls += 1  # pages; throttled attempts count in `throttled`
            response = await self._call("DescribeStream", request)
            description = response.get("StreamDescription") or {}
            status = description.get("StreamStatus") or status
            for wire in description.get("Shards") or ():
                info = ShardInfo.from_wire(wire)
                infos.setdefault(info.shard_id, info)
            last = description.get("LastEvaluatedShardId")
            if not last:
                return status, list(infos.values())
            request = {**request, "ExclusiveStartShardId": last}

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
                response = await self._call("GetShardIterator", request)
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
        gen = self.gen
        assert gen is not None and self.send is not None
        if gen.scope.cancel_called:
            return
        try:
            send = self.send.clone()
        except anyio.ClosedResourceError:
            return  # the source loop has ended: its generation is winding down
        shard.started = True
        gen.spawn(ShardReader(shard, self.ctx, send, self.on_finished, gen.fail).run)

    def on_finished(self, shard: Shard) -> None:
        shard.finished = True
        shard.closed = True
        self.start_eligible()
        if not shard.children:
            self.wake.set()  # list again soon: its children may not be listed yet

    def awaiting_children(self) -> bool:
        return any(s.finished and not s.children for s in self.shards.values())

    def complete(self) -> bool:
        return self.status == "DISABLED" and all(s.finished for s in self.shards.values())

    async def run(self) -> None:
        """Launch pollers as shards become readable; list shards again when needed."""
        gen = self.gen
        assert gen is not None and self.send is not None
        ctx = self.ctx
        try:
            with self.send:
                attempt = 0
                while True:
                    self.start_eligible()
                    if self.complete():
                        return
                    if self.awaiting_children():
                        await ctx.clock.sleep(ctx.pacing.backoff_delay(attempt, ctx.rng))
                        attempt += 1
                    else:
                        attempt = 0
                        self.wake = anyio.Event()
                        await wait_for(self.wake, ctx.clock, ctx.pacing.discovery_interval)
                    status, infos = await self.describe()
                    self.merge(status, infos)
        except Exception as exc:
            gen.fail(exc)

    async def refresh_iterators(self) -> None:
        """Renew every iterator close to its 15-minute expiry, at the same position."""
        ctx = self.ctx
        clock = ctx.clock
        limit = ctx.pacing.refresh_after
        for shard in list(self.shards.values()):
            if shard.finished or shard.iterator is None or shard.lock.locked():
                continue
            if clock.now() - shard.iterator_at < limit:
                continue
            request = shard.iterator_request(self.arn)
            if request["ShardIteratorType"] in ("LATEST", "TRIM_HORIZON"):
                continue  # no sequence number yet: such a poller is polling, not waiting
            async with shard.lock:
                if shard.iterator is None or clock.now() - shard.iterator_at < limit:
                    continue
                request = shard.iterator_request(self.arn)
                try:
                    response = await ctx.call("GetShardIterator", request)
                except DynamoError as exc:
                    log.debug("could not renew the iterator of shard %s: %s", shard.id, exc)
                    if exc.code in (TRIMMED, NOT_FOUND):
                        shard.iterator = None  # its poller meets the error and decides
                    continue
                shard.iterator = response.get("ShardIterator")
                shard.iterator_at = clock.now()
                self.stats.iterators_refreshed += 1

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
