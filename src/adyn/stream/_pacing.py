"""How fast the coordinator polls, backs off and refreshes, and what it counts while doing so."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgument
from ..retry import RetryPolicy

__all__ = ["Pacing", "StreamStats"]


@dataclass(frozen=True)
class Pacing:
    """Tuning of a stream's polling. The defaults suit DynamoDB; tests shrink them.

    - `page_size`: `Limit` of each GetRecords call (DynamoDB allows at most 1000).
    - `min_interval`: seconds between two GetRecords calls on one shard (DynamoDB allows five
      per second per shard).
    - `idle_interval` / `max_idle_interval`: the wait after an empty page on an open shard, doubled
      after each further empty page up to the cap.
    - `idle_poll_rate`: GetRecords calls per second that idle shards share (a stream of 1,000
      idle shards polls each one every ten seconds, not every two); in a consumer group, the
      whole group's idle shards share it.
    - `buffer`: records held between the shard pollers and the consumer (and the workers of
      `stream.partitions(n)`), however many shards: a slow consumer stops the pollers, so memory
      never grows past it.
    - `heartbeat_interval` / `refresh_after`: the heartbeat wakes this often and renews every
      iterator older than `refresh_after` (DynamoDB expires them after 15 minutes).
    - `discovery_interval`: how often every shard is listed when nothing asks for it sooner.
    - `describe_rate`: DescribeStream calls per second at most (DynamoDB allows ten).
    - `backoff` / `max_backoff`: first and largest wait after throttling, or while a closed
      shard's children are not listed yet (full jitter, see `adyn.RetryPolicy`).
    - `describe_limit`: `Limit` of each DescribeStream page (at most 100).
    - `latest_margin`: with `position="latest"`, records of shards first read after the stream
      opened are taken from this many seconds before the opening (covers clock skew).
    """

    page_size: int = 1000
    min_interval: float = 0.25
    idle_interval: float = 0.5
    max_idle_interval: float = 2.0
    idle_poll_rate: float = 100.0
    buffer: int = 4000
    heartbeat_interval: float = 60.0
    refresh_after: float = 600.0
    discovery_interval: float = 300.0
    describe_rate: float = 5.0
    backoff: float = 0.5
    max_backoff: float = 10.0
    describe_limit: int = 100
    latest_margin: float = 300.0

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 1000:
            raise InvalidArgument("Pacing.page_size must be between 1 and 1000")
        if not 1 <= self.describe_limit <= 100:
            raise InvalidArgument("Pacing.describe_limit must be between 1 and 100")
        if self.buffer < 1:
            raise InvalidArgument("Pacing.buffer must hold at least one record")
        if not 0 < self.describe_rate <= 10:
            raise InvalidArgument("Pacing.describe_rate must be above 0 and at most 10 per second")
        if self.idle_poll_rate <= 0:
            raise InvalidArgument("Pacing.idle_poll_rate must be positive")
        if self.refresh_after + self.heartbeat_interval >= 900:
            raise InvalidArgument(
                "Pacing.refresh_after + heartbeat_interval must stay under 15 minutes"
            )

    @property
    def retry(self) -> RetryPolicy:
        """The backoff of throttled calls and of waits for children (never gives up)."""
        return RetryPolicy(max_attempts=None, base=self.backoff, cap=self.max_backoff)


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
    peak_held: int = 0  # most records held at once (see Pacing.buffer)
    lease_writes: int = 0
    leases_taken: int = 0
    leases_lost: int = 0
