"""Helpers for consumer-group tests: members over the fake streams service on virtual time, each
with its own connection to the lease table (which a test can pause or cut)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from _streams import Post
from adyn.errors import DynamoError
from adyn.stream import Pacing, Record, Stream, StreamSource
from adyn.stream._group import GroupSpec
from adyn.testing.fakes import FakeStreams, plain_source

Wire = dict[str, Any]

GROUP_PACING = Pacing(page_size=5, buffer=40, max_idle_interval=5.0, discovery_interval=120.0)


@dataclass
class Link:
    """One member's line to the lease table: `pause()` holds its calls, `cut()` fails them."""

    fake: FakeStreams
    open: anyio.Event = field(default_factory=anyio.Event)
    dead: bool = False
    calls: int = 0

    def __post_init__(self) -> None:
        self.open.set()

    def pause(self) -> None:
        self.open = anyio.Event()

    def resume(self) -> None:
        self.open.set()

    def cut(self) -> None:
        self.dead = True

    async def __call__(self, operation: str, request: Wire, idempotent: bool) -> Wire:
        await self.open.wait()
        if self.dead:
            raise DynamoError("ConnectionFailed", "the member is gone", operation)
        self.calls += 1
        return await self.fake.call("dynamodb", operation, request, idempotent=idempotent)


@dataclass
class Member:
    """A group member and what it received."""

    name: str
    stream: Stream[Any]
    link: Link
    got: list[Record[Any]] = field(default_factory=list)

    @property
    def leases(self) -> int:
        member = self.stream.member
        return 0 if member is None else len(member.held)


def member_stream(
    fake: FakeStreams,
    arns: list[str],
    link: Link,
    *,
    name: str,
    group: str = "indexer",
    position: str = "trim_horizon",
    failover: float = 30.0,
    commit_interval: float = 10.0,
    pacing: Pacing = GROUP_PACING,
    tables: list[str] | None = None,
) -> Stream[Any]:
    async def sources() -> list[StreamSource]:
        return [
            plain_source(arn, Post, table=(tables[i] if tables else None))
            for i, arn in enumerate(arns)
        ]

    spec = GroupSpec(
        name=group,
        table="adyn-leases",
        call=link,
        failover=failover,
        commit_interval=commit_interval,
        member_name=name,
    )
    return Stream(
        call=fake,
        sources=sources,
        position=position,
        clock=fake.clock,
        pacing=pacing,
        group=spec,
        rng=random.Random(name),
    )


@asynccontextmanager
async def running(member: Member, *, finish: bool = True) -> AsyncIterator[Member]:
    """Consume `member`'s stream in a background task (records marked done unless `finish`
    is False) until the block ends."""
    async with member.stream, anyio.create_task_group() as tg:

        async def consume() -> None:
            async for record in member.stream:
                member.got.append(record)
                if finish:
                    record.done()

        tg.start_soon(consume)
        try:
            yield member
        finally:
            tg.cancel_scope.cancel()


def lease_items(fake: FakeStreams) -> dict[str, Wire]:
    """The lease items of the fake's lease table, by key."""
    table = fake.items.tables["adyn-leases"]
    return {
        item["key"]["S"]: item for item in table.items.values() if item["key"]["S"].startswith("L")
    }
