"""DynamoDB Streams: `engine.stream(Model, ...)` gives a `Stream` of `Record`s.

coordinator.py owns the task group and merges shards in lineage order; source.py keeps one
table's shard tree; shard.py reads one shard; position.py holds positions and tokens;
record.py decodes records; clock.py and pacing.py are the time seam and the tuning.
"""

from .clock import Clock, SystemClock
from .coordinator import Stream
from .pacing import Pacing, StreamStats
from .record import Record, StreamSource

__all__ = ["Clock", "Pacing", "Record", "Stream", "StreamSource", "StreamStats", "SystemClock"]
