"""A search indexer as a consumer group: run as many copies as you like, on as many machines.

Every copy opens the `posts` stream as a member of the group "search-indexer". The group shares
the stream's shards among the members (one reader per shard at a time, leases in the table
"adyn-leases"); a member that stops hands its shards over at once, one that dies loses them
after `failover` seconds. Each change of a post updates the count of every word of its title
in `word_counts`, and the record's checkpoint is written in the same transaction
(`tx.checkpoint`): a count is never applied twice, even when a member dies between two records,
or when a member that was paused past its lease wakes up (its transaction is refused).

    python examples/indexer.py      # two members against an embedded DynamoDB
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import anyio

from adyn import Engine, F, HashKey, Model
from adyn.stream import Record
from adyn.testing import local_dynamodb


class Post(Model):
    class Meta:
        table_name = "posts"
        stream = "new_and_old"

    id: Annotated[str, HashKey()]
    title: str = ""


class WordCount(Model):
    class Meta:
        table_name = "word_counts"

    word: Annotated[str, HashKey()]
    posts: int = 0


def words(post: Post | None) -> set[str]:
    return set() if post is None else {w.lower() for w in post.title.split()}


def changes(record: Record[Post]) -> Counter[str]:
    """How the record changes each word's count (words kept by a modification cancel out)."""
    delta: Counter[str] = Counter()
    for word in words(record.new):
        delta[word] += 1
    for word in words(record.old):
        delta[word] -= 1
    return Counter({word: n for word, n in delta.items() if n})


async def index(engine: Engine, record: Record[Post]) -> None:
    """Apply one record's changes and checkpoint it, in one transaction (exactly once)."""
    async with engine.transaction() as tx:
        for word, n in sorted(changes(record).items())[:99]:  # a transaction holds 100 items
            tx.update(WordCount, key={"word": word}, actions=[F(WordCount.posts).add(n)])
        tx.checkpoint(record)


async def run_member(engine: Engine, stop: anyio.Event, **options: Any) -> int:
    """One member of the indexer group, until `stop` is set; returns the records it indexed."""
    done = 0
    async with (
        engine.stream(Post, group="search-indexer", **options) as stream,
        anyio.create_task_group() as tg,
    ):

        async def stopper() -> None:
            await stop.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(stopper)
        async for record in stream:
            await index(engine, record)
            done += 1
    return done


async def main() -> None:
    async with (
        local_dynamodb() as endpoint_url,
        Engine(endpoint_url=endpoint_url) as first,
        Engine(endpoint_url=endpoint_url) as second,
    ):
        await first.bind(Post, WordCount)
        await second.bind(Post, WordCount)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for engine in (first, second):
                tg.start_soon(run_member, engine, stop)
            await first.save(Post(id="1", title="Hello streams"))
            await first.save(Post(id="2", title="Hello groups"))
            await anyio.sleep(3)
            stop.set()
        async for count in first.scan(WordCount):
            print(count.word, count.posts)


if __name__ == "__main__":
    anyio.run(main)
