"""Replicate a table into another through its stream, checkpointing the stream token.

Every change to `Post` (insert, modify, remove) is applied to `PostCopy`, a second table with the
same fields. After each batch of changes the replicator stores `stream.token` in a `Checkpoint`
item; a restarted replicator resumes from it.

Delivery is at least once across crashes: the token is saved after the changes it covers, so a
crash between the two replays those changes on restart. That is harmless here because applying a
change is idempotent (write the new image in full, or delete the key). Without that property,
store the token in the same transaction as the effects.

Runs against an embedded DynamoDB (moto):

    python examples/replicator.py
"""

from __future__ import annotations

from typing import Annotated

import anyio

from adyn import Engine, HashKey, Model, RangeKey
from adyn.stream import Record
from adyn.testing import local_dynamodb


class Post(Model):
    class Meta:
        table_name = "posts"
        stream = "new_and_old"

    forum: Annotated[str, HashKey()]
    id: Annotated[int, RangeKey()]
    title: str
    views: int = 0
    tags: set[str] = set()


class PostCopy(Model):
    class Meta:
        table_name = "posts_copy"

    forum: Annotated[str, HashKey()]
    id: Annotated[int, RangeKey()]
    title: str
    views: int = 0
    tags: set[str] = set()


class Checkpoint(Model):
    """Where a replicator stopped: one item per replicator name."""

    name: Annotated[str, HashKey()]
    token: str


async def apply(engine: Engine, record: Record[Post]) -> None:
    """Apply one change to the copy (idempotent: replaying it changes nothing)."""
    if record.new is None:  # a removal
        await engine.delete(PostCopy.model_construct(**record.key))
    else:
        await engine.save(PostCopy(**record.new.model_dump()))


async def replicate(
    engine: Engine,
    *,
    name: str = "posts",
    batch: int = 10,
    idle: float = 5.0,
    stop_when_idle: bool = False,
    limit: int | None = None,
) -> int:
    """Copy changes until cancelled (or, with `stop_when_idle`, until none came for `idle`
    seconds; or after `limit` changes). Returns how many changes were applied."""
    saved = await engine.get(Checkpoint, name=name)
    position = saved.token if saved is not None else "trim_horizon"
    applied = 0
    async with engine.stream(Post, position=position) as stream:
        pending = 0
        while limit is None or applied < limit:
            record = await stream.next(timeout=idle)
            if record is not None:
                await apply(engine, record)
                applied += 1
                pending += 1
            if pending and (pending >= batch or record is None):
                await engine.save(Checkpoint(name=name, token=stream.token))
                pending = 0
            if record is None and stop_when_idle:
                break
        if pending:
            await engine.save(Checkpoint(name=name, token=stream.token))
    return applied


async def main() -> None:
    async with local_dynamodb() as endpoint_url, Engine(endpoint_url=endpoint_url) as engine:
        await engine.bind(Post, PostCopy, Checkpoint)
        async with engine.batch() as batch:
            for i in range(5):
                batch.save(Post(forum="news", id=i, title=f"post {i}"))
        first = await engine.get(Post, forum="news", id=0)
        last = await engine.get(Post, forum="news", id=4)
        assert first is not None and last is not None
        first.views = 42
        await engine.save(first)
        await engine.delete(last)

        applied = await replicate(engine, idle=2.0, stop_when_idle=True)
        print(f"applied {applied} changes")
        async for copy in engine.scan(PostCopy):
            print(copy)


if __name__ == "__main__":
    anyio.run(main)
