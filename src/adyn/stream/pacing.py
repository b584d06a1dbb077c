"""How fast the coordinator polls, backs off and refreshes, and what it counts while doing so."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Pacing", "StreamStats"]


@dataclass(frozen=True)
class Pacing:
    """Tuning of a stream's polling. The defaults suit DynamoDB; tests shrink them.

    - `page_size`: `Limit` of each GetRecords call (DynamoDB allows at most 1000).
    - `min_interval`: seconds between two GetRecords calls on one shard (DynamoDB allows five
      per second per shard).
    - `idle_interval` / `max_idle_interval`: the wait after an empty page on an open shard, doubled
      after each further empty page up to the cap.
    - `buffer`: pages held between the shard pollers and the consumer; a full buffer stops the
      pollers, so a slow consumer never makes memory grow.
    - `partition_buffer`: records held for each worker of `stream.partitions(n)`.
    - `heartbeat_interval` / `refresh_after`: the heartbeat wakes this often and renews every
      iterator older than `refresh_after` (DynamoDB expires them after 15 minutes).
    - `discovery_interval`: how often shards are listed when nothing asks for it sooner.
    - `backoff` / `max_backoff`: first and largest wait after throttling, or while a closed
      shard's children are not listed yet.
    - `describe_limit`: `Limit` of each DescribeStream page (at most 100).
    - `latest_margin`: with `position="latest"`, records of shards first read after the stream
      opened are taken from this many seconds before the opening (covers clock skew).
    """

    page_size: int = 1000
    min_interval: float = 0.25
    idle_interval: float = 0.5
    max_idle_interval: float = 2.0
    buffer: int = 8
    partition_buffer: int = 256
    heartbeat_interval: float = 60.0
    refresh_after: float = 600.0
    discovery_interval: float = 300.0
    backoff: float = 0.5
    max_backoff: float = 10.0
    describe_limit: int = 100
    latest_margin: float = 300.0

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        if not 1 <= self.describe_limit <= 100:
            raise ValueError("describe_limit must be between 1 and 100")
        if self.buffer < 1 or self.partition_buffer < 1:
            raise ValueError("buffers must hold at least one item")
        if self.refresh_after + self.heartbeat_interval >= 900:
            raise ValueError("refresh_after + heartbeat_interval must stay under 15 minutes")

    def backoff_delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with jitter (half to full of the step)."""
        step = min(self.max_backoff, self.backoff * (2 ** min(attempt, 30)))
        return rng.uniform(step / 2, step)


@dataclass
class StreamStats:
    """Counters of what the coordinator did (for diagnostics and tests)."""

    get_records: int = 0
    records: int = 0
    describe_calls: int = 0
    iterators_acquired: int = 0
    iterators_refreshed: int = 0
    iterators_expired: int = 0
    throttled: int = 0
    trimmed_gaps: int = 0
