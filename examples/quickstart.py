"""adyn in one page: models, bind, save, get, update, query, scan and streams.

Runs against an embedded DynamoDB (moto), so it needs nothing but `pip install 'adyn[testing]'`:

    python examples/quickstart.py

To run it against real DynamoDB instead, replace `local_dynamodb()` with your region.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID, uuid4

import anyio

from adyn import Engine, F, GlobalIndex, HashKey, Model, RangeKey
from adyn.testing import local_dynamodb


class User(Model):
    id: Annotated[UUID, HashKey()]
    name: str
    email: str | None = None


class Post(Model):
    class Meta:
        table_name = "posts"
        stream = "new_and_old"  # DynamoDB Streams: every change, with old and new images

    forum: Annotated[str, HashKey()]
    id: Annotated[str, RangeKey()]
    author: UUID
    date: datetime
    title: str
    views: int = 0
    tags: set[str] = set()

    by_author = GlobalIndex(hash_key="author", range_key="date", projection="all")


def step(text: str) -> None:
    print(f"\n== {text}")


async def main() -> None:
    step("starting an embedded DynamoDB (moto) on a free port")
    async with local_dynamodb() as endpoint_url, Engine(endpoint_url=endpoint_url) as engine:
        print(f"endpoint: {endpoint_url}")

        step("bind: create the tables (or check the live ones match the models)")
        await engine.bind(User, Post)
        print(f"tables: {engine.table_name(User)}, {engine.table_name(Post)}")

        step("save: one UpdateItem per object, the objects sent concurrently")
        ada = User(id=uuid4(), name="Ada", email="ada@example.com")
        start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        posts = [
            Post(
                forum="python",
                id=f"p{n}",
                author=ada.id,
                date=start + timedelta(hours=n),
                title=f"Post number {n}",
                views=10 * n,
                tags={"asyncio", "dynamodb"} if n % 2 else {"pydantic"},
            )
            for n in range(1, 6)
        ]
        await engine.save(ada, *posts)
        print(f"saved {ada.name} and {len(posts)} posts")

        step("get: one item by its key")
        same = await engine.get(User, id=ada.id)
        assert same is not None
        print(f"got {same.name} <{same.email}>")

        step("save again: only the changed fields are sent; conditions guard the write")
        same.name = "Ada Lovelace"
        await engine.save(same, condition=User.name == "Ada")
        print(f"renamed to {(await engine.get(User, id=ada.id, consistent=True))!r}")

        step("update: atomic actions, returns the item as stored")
        hot = await engine.update(
            Post, key={"forum": "python", "id": "p1"}, actions=[F(Post.views).add(1)]
        )
        print(f"p1 now has {hot.views} views")

        step("query: key conditions and filters, pages fetched lazily")
        query = engine.query(
            Post, key=(Post.forum == "python") & F(Post.id).begins_with("p"), filter=Post.views > 20
        )
        async for post in query:
            print(f"  {post.id}: {post.title} ({post.views} views)")

        step("query an index: posts of one author, newest first")
        latest = await engine.query(
            Post.by_author, key=Post.author == ada.id, forward=False
        ).first()
        assert latest is not None
        print(f"latest by {same.name}: {latest.title} at {latest.date:%Y-%m-%d %H:%M}")

        step("scan: every item that matches a filter, in parallel segments")
        tagged = await engine.scan(Post, filter=F(Post.tags).contains("asyncio"), segments=2).all()
        print(f"tagged asyncio: {sorted(post.id for post in tagged)}")
        print(f"posts in total: {await engine.scan(Post).count()}")

        step("stream: every change to the table, in order, as it happens")
        async with engine.stream(Post, position="latest") as stream:
            await engine.update(
                Post, key={"forum": "python", "id": "p2"}, actions=[F(Post.views).add(5)]
            )
            await engine.delete(posts[-1])
            while (record := await stream.next(timeout=1.0)) is not None:
                old = record.old.views if record.old else None
                new = record.new.views if record.new else None
                print(f"  {record.event} {record.key['id']}: views {old} -> {new}")
            checkpoint = stream.token  # JSON-safe: resume later exactly after this record
        print(f"checkpoint to resume from: {len(checkpoint)} characters")

        step("delete")
        await engine.delete(*posts[:-1])
        print(f"posts left: {await engine.scan(Post).count()}")

    step("done: the engine is closed and the embedded server stopped")


if __name__ == "__main__":
    anyio.run(main)
