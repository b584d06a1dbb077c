"""Helpers shared by the stream tests: stand-in models, a table that writes to a fake stream,
and a stream over the fake on virtual time."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from adyn.stream import Pacing, Record, Stream, StreamSource
from adyn.testing.fakes import FakeStreams, plain_source

Wire = dict[str, Any]

PACING = Pacing(
    page_size=3,
    buffer=6,
    max_idle_interval=5.0,
    discovery_interval=60.0,
    max_backoff=5.0,
)


class Post:
    """Stands in for a model class: records name it in `record.model`."""


class User:
    pass


def key(name: str) -> Wire:
    return {"id": {"S": name}}


def image(name: str, n: int) -> Wire:
    return {"id": {"S": name}, "n": {"N": str(n)}}


class Table:
    """Writes to a fake stream the way a table would, remembering each item's last image."""

    def __init__(self, fake: FakeStreams, arn: str) -> None:
        self.fake = fake
        self.arn = arn
        self.items: dict[str, int] = {}
        self.count = 0

    def write(self, name: str) -> str:
        self.count += 1
        old = self.items.get(name)
        self.items[name] = self.count
        old_image = None if old is None else image(name, old)
        return self.fake.put(self.arn, key(name), new=image(name, self.count), old=old_image)

    def remove(self, name: str, *, ttl: bool = False) -> str:
        old = self.items.pop(name)
        return self.fake.put(self.arn, key(name), old=image(name, old), ttl=ttl)

    def fill(self, n: int, keys: int = 5) -> list[str]:
        return [self.write(f"k{i % keys}") for i in range(n)]


def open_stream(
    fake: FakeStreams,
    *arns: str,
    position: Any = "trim_horizon",
    on_trim: Any = "raise",
    pacing: Pacing = PACING,
    models: Sequence[type] = (),
    tables: Sequence[str | None] = (),
) -> Stream[Any]:
    """A stream of the fake's `arns` (each table's latest stream; `tables` names the tables
    so that their earlier streams are read too)."""

    async def sources() -> list[StreamSource]:
        return [
            plain_source(
                arn,
                models[i] if i < len(models) else Post,
                table=tables[i] if i < len(tables) else None,
            )
            for i, arn in enumerate(arns)
        ]

    return Stream(
        call=fake,
        sources=sources,
        position=position,
        on_trim=on_trim,
        clock=fake.clock,
        pacing=pacing,
        rng=random.Random(0),
    )


async def drain(stream: Stream, wait: float = 300.0, limit: int = 100_000) -> list[Record]:
    """Records until none arrives within `wait` virtual seconds (or `limit` of them)."""
    records: list[Record] = []
    while len(records) < limit:
        record = await stream.next(timeout=wait)
        if record is None:
            break
        records.append(record)
    return records


def seqs(records: Sequence[Record]) -> list[str]:
    return [r.sequence_number for r in records]


def ancestors(fake: FakeStreams, arn: str, shard_id: str) -> list[str]:
    found = []
    parent = fake.parent_of(arn, shard_id)
    while parent is not None:
        found.append(parent)
        parent = fake.parent_of(arn, parent)
    return found


def assert_lineage_order(fake: FakeStreams, arn: str, records: Sequence[Record]) -> None:
    last_index: dict[str, int] = {}
    for i, record in enumerate(records):
        last_index[record.shard_id] = i
    for i, record in enumerate(records):
        for ancestor in ancestors(fake, arn, record.shard_id):
            assert last_index.get(ancestor, -1) < i, "a child record came before its parent's"


def assert_item_order(records: Sequence[Record]) -> None:
    per_key: dict[str, list[int]] = {}
    for record in records:
        if record.new is not None:
            per_key.setdefault(record.key["id"], []).append(record.new["n"])
    for values in per_key.values():
        assert values == sorted(values)
