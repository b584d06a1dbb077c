"""DynamoDB Streams: `engine.stream(Model, ...)` gives a `Stream` of `Record`s.

The rooms, by job: `_stream.py` (the consumer's side: lifecycle, consuming, tokens, commits),
`_generation.py` (the tasks reading from one position), `_partitions.py` (the dispatcher and
its workers' iterators), `_source.py` (which streams of a table to read), `_table_reader.py`
(one stream's shard tree and discovery), `_shard.py` (one shard's poller), `_position.py`
(ledgers and tokens), `_record.py` (records), `_group.py` and `_leases.py` (consumer groups and
their lease table), `_checkpoint.py` (`tx.checkpoint`), `_lambda.py` (Lambda events), and
`_clock.py` / `_pacing.py` (time, tuning).
"""

from ._clock import Clock, SystemClock
from ._lambda import batch_failures, lambda_records
from ._pacing import Pacing, StreamStats
from ._partitions import Partition
from ._record import Record
from ._source import StreamSource
from ._stream import Stream

__all__ = [
    "Clock",
    "Pacing",
    "Partition",
    "Record",
    "Stream",
    "StreamSource",
    "StreamStats",
    "SystemClock",
    "batch_failures",
    "lambda_records",
]
