"""One shard: its place in the lineage, its iterator, and the poller that reads it.

A poller owns a shard from its start position to its end. It sends each page of records, then an
end marker, into the stream's bounded buffer, so it stops whenever the consumer falls behind.
While it waits there its iterator ages; the heartbeat (in the coordinator) renews it under the
shard's lock. An iterator that expires anyway is re-acquired after the last sequence number
fetched, never at LATEST or TRIM_HORIZON again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..errors import DynamoError, RecordsExpired
from ..errors import is_throttling as is_throttling
from .clock import Clock
from .pacing import Pacing, StreamStats
from .position import Ledger, ShardInfo, Start
from .record import StreamSource, created_epoch

__all__ = ["Call", "Page", "ReadContext", "Shard", "ShardEnd", "ShardReader"]

log = logging.getLogger("adyn.stream")

Wire = dict[str, Any]
Call = Callable[[str, Wire], Awaitable[Wire]]

EXPIRED = "ExpiredIteratorException"
TRIMMED = "TrimmedDataAccessException"
NOT_FOUND = "ResourceNotFoundException"
LIMIT = "LimitExceededException"


@dataclass(slots=True)
class Page:
    """Records of one shard, in sequence order, on their way to the consumer."""

    source: StreamSource
    shard_id: str
    ledger: Ledger
    records: list[Wire]


@dataclass(slots=True)
class ShardEnd:
    """Every record of a shard was sent before this marker."""

    ledger: Ledger


Item = Page | ShardEnd


class Shard:
    """A shard of one stream: lineage links and the state its poller and heartbeat share."""

    def __init__(self, info: ShardInfo, ledger: Ledger) -> None:
        self.id = info.shard_id
        self.parent_id = info.parent_id
        self.closed = info.closed
        self.children: list[str] = []
        self.ledger = ledger
        self.started = False  # a poller was launched
        self.finished = ledger.done  # every record was sent (or the consumer had them all)
        self.iterator: str | None = None
        self.iterator_at = 0.0  # clock time the iterator was issued
        self.last_seq: str | None = None  # last sequence number fetched
        self.lock = anyio.Lock()  # held around every call that uses or replaces the iterator
        self.next_call = 0.0  # no GetRecords before this clock time
        self.latest_used = False
        self.to_horizon = False  # skip a trimmed gap: restart at the trim horizon

    def __repr__(self) -> str:
        return f"<Shard {self.id} parent={self.parent_id} finished={self.finished}>"

    def iterator_request(self, arn: str) -> Wire:
        """GetShardIterator for where this shard's reading stands now."""
        request: Wire = {"StreamArn": arn, "ShardId": self.id}
        start = self.ledger.start
        if self.to_horizon:
            kind, seq = "TRIM_HORIZON", None
        elif self.last_seq is not None:
            kind, seq = "AFTER_SEQUENCE_NUMBER", self.last_seq
        elif start is not None and start.kind in ("after", "at"):
            kind = "AFTER_SEQUENCE_NUMBER" if start.kind == "after" else "AT_SEQUENCE_NUMBER"
            seq = start.seq
        elif start is not None and start.kind == "latest" and not self.latest_used:
            kind, seq = "LATEST", None
        else:
            # Nothing fetched yet: the shard's oldest record is where reading begins (after a
            # LATEST iterator expired unused, the stream's floor skips what came before it).
            kind, seq = "TRIM_HORIZON", None
        request["ShardIteratorType"] = kind
        if seq is not None:
            request["SequenceNumber"] = seq
        return request


@dataclass
class ReadContext:
    """What every poller of one stream shares."""

    source: StreamSource
    call: Call
    clock: Clock
    pacing: Pacing
    on_trim: str
    floor: float | None
    stats: StreamStats
    rng: random.Random


class _Gone(Exception):
    """The shard no longer exists and its gap was skipped: treat it as read to the end."""


class ShardReader:
    """Polls one shard from its start to its end (see the module docstring)."""

    def __init__(
        self,
        shard: Shard,
        context: ReadContext,
        send: MemoryObjectSendStream[Item],
        on_finished: Callable[[Shard], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.shard = shard
        self.ctx = context
        self.send = send
        self.on_finished = on_finished
        self.on_error = on_error
        self.idle = context.pacing.idle_interval
        self.attempt = 0

    async def run(self) -> None:
        shard = self.shard
        ctx = self.ctx
        try:
            with self.send:
                while True:
                    records, fetched, ended = await self._fetch()
                    if records:
                        await self.send.send(Page(ctx.source, shard.id, shard.ledger, records))
                    if ended:
                        await self.send.send(ShardEnd(shard.ledger))
                        break
                    await self._pause(empty=not fetched)
            self.on_finished(shard)
        except Exception as exc:
            self.on_error(exc)

    async def _pause(self, *, empty: bool) -> None:
        pacing = self.ctx.pacing
        if empty and not self.shard.closed:
            await self.ctx.clock.sleep(self.idle)
            self.idle = min(self.idle * 2, pacing.max_idle_interval)
        else:
            self.idle = pacing.idle_interval

    async def _fetch(self) -> tuple[list[Wire], bool, bool]:
        """One page: (records to deliver, whether any were fetched, whether the shard ended)."""
        ctx = self.ctx
        shard = self.shard
        clock = ctx.clock
        while True:
            wait = shard.next_call - clock.now()
            if wait > 0:
                await clock.sleep(wait)
            delay: float | None = 0.0
            async with shard.lock:
                try:
                    if shard.iterator is None:
                        await self._acquire()
                    request = {"ShardIterator": shard.iterator, "Limit": ctx.pacing.page_size}
                    ctx.stats.get_records += 1
                    try:
                        response = await ctx.call("GetRecords", request)
                    finally:
                        shard.next_call = clock.now() + ctx.pacing.min_interval
                except _Gone:
                    return [], False, True
                except DynamoError as exc:
                    delay = self._recover(exc)
                    if delay is None:
                        return [], False, True
                else:
                    self.attempt = 0
                    return self._accept(response)
            if delay:
                await clock.sleep(delay)

    async def _acquire(self) -> None:
        ctx = self.ctx
        shard = self.shard
        request = shard.iterator_request(ctx.source.stream_arn)
        if request["ShardIteratorType"] == "LATEST":
            shard.latest_used = True
        ctx.stats.iterators_acquired += 1
        response = await ctx.call("GetShardIterator", request)
        shard.iterator = response.get("ShardIterator")
        shard.iterator_at = ctx.clock.now()
        shard.to_horizon = False
        if shard.iterator is None:  # DynamoDB has nothing more to give for this shard
            raise _Gone

    def _accept(self, response: Wire) -> tuple[list[Wire], bool, bool]:
        ctx = self.ctx
        shard = self.shard
        records: list[Wire] = response.get("Records") or []
        shard.iterator = response.get("NextShardIterator")
        shard.iterator_at = ctx.clock.now()
        if not records:
            return records, False, shard.iterator is None
        ctx.stats.records += len(records)
        ledger = shard.ledger
        if shard.last_seq is None and ledger.start is not None and ledger.start.kind == "latest":
            # Now "latest" has a sequence number: a token taken before the consumer sees this
            # page resumes exactly here.
            ledger.start = Start("at", records[0]["dynamodb"]["SequenceNumber"])
        shard.last_seq = records[-1]["dynamodb"]["SequenceNumber"]
        floor = ctx.floor
        if floor is not None:
            records = [r for r in records if created_epoch(r) >= floor]
        return records, True, shard.iterator is None

    def _recover(self, exc: DynamoError) -> float | None:
        """Handle a failed call (under the shard lock): how long to wait, None if the shard is
        gone (its gap skipped), or raise."""
        ctx = self.ctx
        shard = self.shard
        if exc.code == EXPIRED:
            ctx.stats.iterators_expired += 1
            log.info("iterator of shard %s expired; re-acquiring it", shard.id)
            shard.iterator = None
            return 0.0
        if exc.code in (TRIMMED, NOT_FOUND):
            self._trimmed(exc)
            return None if exc.code == NOT_FOUND else 0.0
        if is_throttling(exc):
            ctx.stats.throttled += 1
            delay = ctx.pacing.backoff_delay(self.attempt, ctx.rng)
            self.attempt += 1
            log.debug("shard %s throttled (%s); retrying in %.2fs", shard.id, exc.code, delay)
            return delay
        raise exc

    def _trimmed(self, exc: DynamoError) -> None:
        ctx = self.ctx
        shard = self.shard
        where = f"after sequence number {shard.last_seq}" if shard.last_seq else "at its start"
        arn = ctx.source.stream_arn
        message = (
            f"records of shard {shard.id} of {arn} {where} were trimmed away (DynamoDB keeps "
            f"stream records for 24 hours): {exc.code}"
        )
        if ctx.on_trim == "raise":
            raise RecordsExpired(message) from exc
        ctx.stats.trimmed_gaps += 1
        log.warning("skipping a gap: %s", message)
        shard.iterator = None
        shard.to_horizon = True
