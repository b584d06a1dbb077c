"""One shard: its place in the lineage, its iterator, and the poller that reads it.

A poller owns a shard from its start position to its end. Before each GetRecords call it
reserves room in the stream's record budget (and asks for no more records than it got room
for), then puts the page, and at the end an end marker, in the stream's queue. The budget, not
the number of shards, bounds what is held in memory; a slow consumer stops every poller.

While a poller waits for room its iterator ages; the heartbeat (see `_generation.py`) renews it
under the shard's lock. An iterator that expires anyway is re-acquired after the last sequence
number fetched, never at LATEST or TRIM_HORIZON again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..errors import (
    DynamoError,
    ExpiredIteratorError,
    RecordsExpired,
    ResourceNotFoundError,
    TrimmedDataAccessError,
    is_throttling,
)
from ..retry import Attempts
from ._clock import Budget, Clock, RateLimiter
from ._pacing import Pacing, StreamStats
from ._position import Ledger, ShardInfo, Start
from ._record import created_epoch
from ._source import StreamCall, StreamSource

__all__ = ["Item", "Page", "ReadContext", "Shard", "ShardEnd", "ShardReader"]

log = logging.getLogger("adyn.stream")

Wire = dict[str, Any]
RETENTION = 24 * 3600.0  # DynamoDB keeps stream records this long


@dataclass(slots=True)
class Page:
    """Records of one shard, in sequence order, on their way to the consumer."""

    source: StreamSource
    shard_id: str
    ledger: Ledger
    records: list[Wire]
    routes: list[StreamSource] | None = None  # per record, on a table shared by entities


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
        self.lock = anyio.Lock()  # held around every call that uses or replaces the iterator
        self.next_call = 0.0  # no GetRecords before this clock time
        self.latest_used = False
        self.to_horizon = False  # restart at the trim horizon (a gap skipped, or caught up)

    def __repr__(self) -> str:
        return f"<Shard {self.id} parent={self.parent_id} finished={self.finished}>"

    @property
    def last_seq(self) -> str | None:
        return self.ledger.fetched

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

    def caught_up_at(self) -> float | None:
        """When this shard was last seen holding nothing after the position it would resume
        from (None if that is not known)."""
        ledger = self.ledger
        if ledger.fetched is not None:
            return ledger.head_at
        start = ledger.start
        return start.caught_at if start is not None else None


@dataclass
class ReadContext:
    """What every poller of one stream (in one generation) shares."""

    source: StreamSource
    arn: str  # the stream read (a table's previous stream, or its latest)
    call: StreamCall
    clock: Clock
    pacing: Pacing
    on_trim: str
    floor: float | None
    stats: StreamStats
    rng: random.Random
    budget: Budget
    describes: RateLimiter
    idle: set[str] = field(default_factory=set)  # shards whose last page was empty
    idle_rate: float = 0.0  # GetRecords a second the idle shards share (0: the pacing's)

    def attempts(self) -> Attempts:
        return self.pacing.retry.attempts(self.clock.sleep, self.rng)


async def patient_call(ctx: ReadContext, operation: str, request: Wire) -> Wire:
    """One Streams call, waited out with backoff for as long as it is throttled.

    A stream reader has nothing better to do than wait: unlike a request handler it has no
    caller to hand the failure to, so throttling never ends it. DescribeStream calls also pass
    the stream's rate limit.
    """
    attempts = ctx.attempts()
    while True:
        if operation == "DescribeStream":
            await ctx.describes.acquire()
            ctx.stats.describe_calls += 1
        try:
            return await ctx.call(operation, request)
        except DynamoError as exc:
            if not is_throttling(exc):
                raise
            ctx.stats.throttled += 1
            await attempts.next()


class _Gone(Exception):
    """The shard has nothing more to give (its gap was skipped, or it is gone)."""


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
        self.attempts = context.attempts()

    async def run(self) -> None:
        shard = self.shard
        ctx = self.ctx
        try:
            with self.send:
                while True:
                    records, fetched, ended = await self._fetch()
                    if records:
                        self.send.send_nowait(self._page(records))
                    if ended:
                        self.send.send_nowait(ShardEnd(shard.ledger))
                        break
                    await self._pause(empty=not fetched)
            ctx.idle.discard(shard.id)
            self.on_finished(shard)
        except Exception as exc:
            ctx.idle.discard(shard.id)
            self.on_error(exc)

    def _page(self, records: list[Wire]) -> Page:
        source = self.ctx.source
        routes = None
        if source.route is not None:  # each record as its entity (None ones were dropped)
            routes = [source.route(raw) or source for raw in records]
        return Page(source, self.shard.id, self.shard.ledger, records, routes)

    async def _pause(self, *, empty: bool) -> None:
        ctx = self.ctx
        pacing = ctx.pacing
        if empty and not self.shard.closed:
            ctx.idle.add(self.shard.id)
            # Idle shards share `idle_poll_rate`: with many of them, each waits longer.
            shared = len(ctx.idle) / (ctx.idle_rate or pacing.idle_poll_rate)
            wait = self.idle
            if shared > wait:
                wait = ctx.rng.uniform(shared * 0.9, shared * 1.1)
            await ctx.clock.sleep(wait)
            self.idle = min(self.idle * 2, pacing.max_idle_interval)
        else:
            ctx.idle.discard(self.shard.id)
            self.idle = pacing.idle_interval

    async def _fetch(self) -> tuple[list[Wire], bool, bool]:
        """One page: (records to deliver, whether any were fetched, whether the shard ended)."""
        ctx = self.ctx
        shard = self.shard
        clock = ctx.clock
        budget = ctx.budget
        while True:
            wait = shard.next_call - clock.now()
            if wait > 0:
                await clock.sleep(wait)
            room = await budget.reserve(ctx.pacing.page_size)
            kept = 0
            backoff = False
            try:
                async with shard.lock:
                    try:
                        if (
                            shard.iterator is not None
                            and clock.now() - shard.iterator_at >= ctx.pacing.refresh_after
                        ):
                            # It aged while this poller waited for room: take a fresh one at
                            # the same position rather than meet its expiry.
                            shard.iterator = None
                        if shard.iterator is None:
                            await self._acquire()
                        request = {"ShardIterator": shard.iterator, "Limit": room}
                        ctx.stats.get_records += 1
                        try:
                            response = await ctx.call("GetRecords", request)
                        finally:
                            shard.next_call = clock.now() + ctx.pacing.min_interval
                    except _Gone:
                        return [], False, True
                    except DynamoError as exc:
                        again = self._recover(exc)
                        if again is None:
                            return [], False, True
                        backoff = again
                    else:
                        self.attempts.reset()
                        result = self._accept(response)
                        kept = len(result[0])
                        return result
            finally:
                budget.release(room - kept)
                held = budget.held
                if held > ctx.stats.peak_held:
                    ctx.stats.peak_held = held
            if backoff:
                await self.attempts.next()

    async def _acquire(self) -> None:
        ctx = self.ctx
        shard = self.shard
        request = shard.iterator_request(ctx.arn)
        if request["ShardIteratorType"] == "LATEST":
            shard.latest_used = True
        ctx.stats.iterators_acquired += 1
        try:
            response = await ctx.call("GetShardIterator", request)
        except TrimmedDataAccessError as exc:
            self._refused(exc, request)
            return await self._acquire()
        shard.iterator = response.get("ShardIterator")
        shard.iterator_at = ctx.clock.now()
        shard.to_horizon = False
        if shard.iterator is None:  # DynamoDB has nothing more to give for this shard
            raise _Gone

    def _accept(self, response: Wire) -> tuple[list[Wire], bool, bool]:
        ctx = self.ctx
        shard = self.shard
        ledger = shard.ledger
        records: list[Wire] = response.get("Records") or []
        shard.iterator = response.get("NextShardIterator")
        shard.iterator_at = ctx.clock.now()
        if not records:
            if shard.iterator is not None and not shard.closed:
                ledger.head_at = ctx.clock.utcnow().timestamp()
            return records, False, shard.iterator is None
        ctx.stats.records += len(records)
        if ledger.fetched is None and ledger.start is not None and ledger.start.kind == "latest":
            # Now "latest" has a sequence number: a token taken before the consumer sees this
            # page resumes exactly here.
            ledger.start = Start("at", records[0]["dynamodb"]["SequenceNumber"])
        ledger.fetched = records[-1]["dynamodb"]["SequenceNumber"]
        ledger.head_at = None
        floor = ctx.floor
        if floor is not None:
            records = [r for r in records if created_epoch(r) >= floor]
        if ledger.skip:
            skip = ledger.skip
            records = [r for r in records if r["dynamodb"]["SequenceNumber"] not in skip]
        guard = ctx.source.skip
        if guard is not None:  # records of items that are no model objects (Unique guards)
            records = [r for r in records if not guard(r["dynamodb"]["Keys"])]
        route = ctx.source.route
        if route is not None:  # a shared table: records of entities nobody asked for
            records = [r for r in records if route(r) is not None]
        if records:
            ledger.sent = records[-1]["dynamodb"]["SequenceNumber"]
        return records, True, shard.iterator is None

    def _recover(self, exc: DynamoError) -> bool | None:
        """Handle a failed call under the shard lock: whether to back off before trying again,
        None when the shard is gone (its gap skipped); or raise."""
        ctx = self.ctx
        shard = self.shard
        if isinstance(exc, ExpiredIteratorError):
            ctx.stats.iterators_expired += 1
            log.info("iterator of shard %s expired; re-acquiring it", shard.id)
            shard.iterator = None
            return False
        if isinstance(exc, TrimmedDataAccessError):
            self._trimmed(exc, self._position())
            return False
        if isinstance(exc, ResourceNotFoundError):
            self._trimmed(exc, self._position())
            return None
        if is_throttling(exc):
            ctx.stats.throttled += 1
            log.debug("shard %s throttled (%s); backing off", shard.id, exc.code)
            return True
        raise exc

    def _position(self) -> str:
        """Where this shard's reading stood, in words (for error messages)."""
        shard = self.shard
        request = shard.iterator_request(self.ctx.arn)
        kind = request["ShardIteratorType"]
        if kind == "AFTER_SEQUENCE_NUMBER":
            return f"after sequence number {request['SequenceNumber']}"
        if kind == "AT_SEQUENCE_NUMBER":
            return f"at sequence number {request['SequenceNumber']}"
        return "at its trim horizon" if kind == "TRIM_HORIZON" else "at its latest record"

    def _refused(self, exc: DynamoError, request: Wire) -> None:
        """GetShardIterator refused a sequence number older than the shard's trim point.

        DynamoDB refuses it whether or not records after it were trimmed. When the shard was
        seen caught up (nothing after the position) recently enough that nothing written since
        can have aged out, nothing was lost; otherwise records after it may be gone.
        """
        ctx = self.ctx
        shard = self.shard
        caught = shard.caught_up_at()
        if caught is not None:
            window = ctx.clock.utcnow().timestamp() - RETENTION - caught
            if window > 0:
                log.info(
                    "shard %s of %s: caught up at its position %.0f s more than 24 hours ago; "
                    "records written in that time, if any, were trimmed (DynamoDB does not say "
                    "whether there were any)",
                    shard.id,
                    ctx.arn,
                    window,
                )
            shard.iterator = None
            shard.to_horizon = True
            return
        self._trimmed(exc, self._describe_request(request))

    @staticmethod
    def _describe_request(request: Wire) -> str:
        kind = request["ShardIteratorType"]
        seq = request.get("SequenceNumber")
        if kind == "AFTER_SEQUENCE_NUMBER":
            return f"after sequence number {seq}"
        if kind == "AT_SEQUENCE_NUMBER":
            return f"at sequence number {seq}"
        return "at its trim horizon"

    def _trimmed(self, exc: DynamoError, where: str) -> None:
        ctx = self.ctx
        shard = self.shard
        arn = ctx.arn
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
