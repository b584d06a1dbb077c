"""Records per second decoded through the stream coordinator, on the fake streams service.

A 4-shard stream holds records whose new and old images are 10-attribute items; the coordinator
reads it from the trim horizon (1,000-record pages, the default pacing on virtual time, so no
waiting is measured) and every record is decoded into `Record` with two model objects. The
figure is records per second of wall-clock time, single-threaded.

    python benchmarks/bench_stream.py [--quick]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import anyio

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from adyn import HashKey, Model, RangeKey
from adyn.schema import schema_of
from adyn.stream import Stream, StreamSource
from adyn.testing.fakes import FakeStreams, VirtualClock

SHARDS = 4


class Event(Model):
    class Meta:
        table_name = "bench_events"
        stream = "new_and_old"

    tenant: Annotated[str, HashKey()]
    seq: Annotated[int, RangeKey()]
    kind: str
    score: Decimal
    count: int
    active: bool
    tags: set[str]
    payload: dict[str, int]
    items: list[str]
    at: datetime


def image(i: int, version: int) -> dict[str, Any]:
    return {
        "tenant": {"S": f"tenant-{i % 97}"},
        "seq": {"N": str(i)},
        "kind": {"S": "click" if i % 2 else "view"},
        "score": {"N": f"{i % 1000}.{version}"},
        "count": {"N": str(version)},
        "active": {"BOOL": bool(i % 3)},
        "tags": {"SS": ["a", "b", f"t{i % 7}"]},
        "payload": {"M": {"x": {"N": str(i)}, "y": {"N": "2"}}},
        "items": {"L": [{"S": "one"}, {"S": "two"}]},
        "at": {"S": datetime(2024, 1, 1, tzinfo=UTC).isoformat()},
    }


def build(records: int) -> tuple[FakeStreams, str]:
    fake = FakeStreams(VirtualClock(), record_calls=False)
    arn = fake.create_stream("bench_events", shards=SHARDS)
    for i in range(records):
        key = {"tenant": {"S": f"tenant-{i % 97}"}, "seq": {"N": str(i)}}
        fake.put(arn, key, new=image(i, 2), old=image(i, 1))
    return fake, arn


async def consume(fake: FakeStreams, arn: str, records: int) -> float:
    schema = schema_of(Event)
    source = StreamSource(arn, Event, "NEW_AND_OLD_IMAGES", schema.decode_item, schema.decode_key)

    async def sources() -> Sequence[StreamSource]:
        return [source]

    clock = fake.clock
    assert isinstance(clock, VirtualClock)
    stream = Stream(call=fake, sources=sources, position="trim_horizon", clock=clock)
    start = time.perf_counter()
    async with clock.autojump(), stream:
        seen = 0
        async for record in stream:
            assert record.new is not None
            seen += 1
            if seen == records:
                break
    return time.perf_counter() - start


def run(quick: bool = False) -> dict[str, Any]:
    """Decode `records` stream records through the coordinator; returns the rate."""
    records = 20_000 if quick else 100_000
    fake, arn = build(records)
    seconds = anyio.run(consume, fake, arn, records)
    return {
        "records": records,
        "shards": SHARDS,
        "seconds": round(seconds, 3),
        "records_per_second": round(records / seconds),
    }


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
