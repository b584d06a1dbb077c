"""Streams through `engine.stream(...)` against moto over HTTP (both transport paths).

moto keeps one shard that never splits and iterators that never expire; what it cannot show is
covered against the fake service (tests/test_stream_coordinator.py). Items are created with
`engine.save`: the embedded server records an UpdateItem that creates an item as one INSERT with
the whole item, as DynamoDB does (tests/conformance/test_streams.py).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Annotated

import pytest

from adyn import Engine, HashKey, Model, RangeKey
from adyn.stream import Record, Stream

pytestmark = pytest.mark.moto_only

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WAIT = 10.0  # seconds a record may take to show up (it is polled within a second or two)


class Post(Model):
    class Meta:
        table_name = "stream_posts"
        stream = "new_and_old"

    forum: Annotated[str, HashKey()]
    id: Annotated[int, RangeKey()]
    title: str = ""
    views: int = 0
    body: bytes = b""
    tags: set[str] = set()


class User(Model):
    class Meta:
        table_name = "stream_users"
        stream = "new"

    id: Annotated[str, HashKey()]
    name: str


class Tag(Model):
    class Meta:
        table_name = "stream_tags"
        stream = "keys"

    name: Annotated[str, HashKey()]
    count: int = 0


async def take(stream: Stream, n: int) -> list[Record]:
    records: list[Record] = []
    for _ in range(n):
        record = await stream.next(timeout=WAIT)
        assert record is not None, f"only {len(records)} of {n} records arrived"
        records.append(record)
    return records


async def create(engine: Engine, *objs: Model) -> None:
    for obj in objs:  # one at a time: the tests read the records in this order
        await engine.save(obj)


async def test_insert_modify_remove_with_images(engine: Engine) -> None:
    await engine.bind(Post)
    before = datetime.now(UTC) - timedelta(minutes=1)
    post = Post(forum="f", id=1, title="hello", body=b"\x00\xff", tags={"a", "b"})
    await create(engine, post)
    post.views = 7
    await engine.save(post)
    await engine.delete(post)

    async with engine.stream(Post, position="trim_horizon") as stream:
        insert, modify, remove = await take(stream, 3)
        assert await stream.next(timeout=0.5) is None

    assert [r.event for r in (insert, modify, remove)] == ["insert", "modify", "remove"]
    assert {r.model for r in (insert, modify, remove)} == {Post}
    assert insert.key == modify.key == remove.key == {"forum": "f", "id": 1}
    assert insert.old is None and remove.new is None
    assert insert.new == Post(forum="f", id=1, title="hello", body=b"\x00\xff", tags={"a", "b"})
    assert (modify.old.views, modify.new.views) == (0, 7)
    assert remove.old.views == 7 and remove.old.body == b"\x00\xff"
    assert not any(r.expired for r in (insert, modify, remove))
    numbers = [int(r.sequence_number) for r in (insert, modify, remove)]
    assert numbers == sorted(numbers)
    assert len({r.shard_id for r in (insert, modify, remove)}) == 1
    for record in (insert, modify, remove):
        assert record.created_at.tzinfo is not None
        assert before <= record.created_at <= datetime.now(UTC) + timedelta(minutes=1)


async def test_images_follow_the_stream_view(engine: Engine) -> None:
    await engine.bind(User, Tag)
    await create(engine, User(id="u", name="Ada"), Tag(name="t", count=1))
    await engine.save(User(id="u", name="Grace"))
    async with engine.stream(User, Tag, position="trim_horizon") as stream:
        records = await take(stream, 3)
    by_model = {(r.model, r.event): r for r in records}
    user = by_model[User, "modify"]
    assert user.new == User(id="u", name="Grace") and user.old is None
    tag = by_model[Tag, "insert"]
    assert tag.key == {"name": "t"} and tag.new is None and tag.old is None


async def test_resume_from_a_token_delivers_exactly_the_rest(engine: Engine) -> None:
    await engine.bind(Post)
    await create(engine, *(Post(forum="f", id=i) for i in range(4)))
    async with engine.stream(Post, position="trim_horizon") as stream:
        first = await take(stream, 2)
        token = stream.token
    await create(engine, *(Post(forum="f", id=i) for i in range(4, 6)))
    async with engine.stream(Post, position=token) as stream:
        rest = await take(stream, 4)
        assert await stream.next(timeout=0.5) is None
    assert [r.key["id"] for r in first + rest] == list(range(6))


async def test_latest_merges_tables_written_after_opening(engine: Engine) -> None:
    await engine.bind(Post, User)
    await create(engine, Post(forum="old", id=0))
    async with engine.stream(Post, User, position="latest") as stream:
        await create(engine, Post(forum="f", id=1), User(id="u", name="Ada"))
        records = await take(stream, 2)
        assert await stream.next(timeout=0.5) is None
    assert {(r.model, r.event) for r in records} == {(Post, "insert"), (User, "insert")}


# ---------------------------------------------------------------- the replicator example


@pytest.fixture
def replicator() -> Iterator[ModuleType]:
    path = EXAMPLES / "replicator.py"
    spec = importlib.util.spec_from_file_location("adyn_example_replicator", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves annotations through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


async def test_the_replicator_copies_a_table_and_resumes_from_its_checkpoint(
    engine: Engine, replicator: ModuleType
) -> None:
    Post, PostCopy = replicator.Post, replicator.PostCopy
    await engine.bind(Post, PostCopy, replicator.Checkpoint)
    await create(engine, *(Post(forum="f", id=i, title=f"t{i}") for i in range(6)))

    # A first run stops after 4 changes, as a crash would; the second resumes after them.
    assert await replicator.replicate(engine, batch=2, limit=4) == 4
    first = await engine.get(Post, forum="f", id=0)
    assert first is not None
    first.views = 3
    await engine.save(first)
    await engine.delete(Post.model_construct(forum="f", id=5))
    applied = await replicator.replicate(engine, batch=2, idle=1.0, stop_when_idle=True)
    assert applied == 4  # ids 4 and 5, the modification, the removal: nothing twice

    source = sorted((p.model_dump() for p in await engine.scan(Post).all()), key=str)
    copy = sorted((p.model_dump() for p in await engine.scan(PostCopy).all()), key=str)
    assert copy == source and len(copy) == 5
