"""Batch writes and reads on real servers (moto fast/slow, dynalite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from _models import Account, Post, Shared1
from adyn import Engine, InvalidItem

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def post(forum: str, views: int = 0) -> Post:
    return Post(forum=forum, id=uuid4(), user=uuid4(), date=NOW, views=views)


async def test_batch_writes_many_items_of_several_models_and_tables(engine: Engine) -> None:
    await engine.bind(Post, Account)
    posts = [post("b", i) for i in range(130)]
    accounts = [Account(id=f"a{i}", balance=i) for i in range(40)]
    async with engine.batch() as batch:
        batch.save(*posts)
        batch.save(*accounts)
        assert len(batch) == 170
    assert await engine.query(Post, key=Post.forum == "b", consistent=True).count() == 130
    assert await engine.scan(Account, consistent=True).count() == 40
    async with engine.batch() as batch:
        batch.delete(*posts[:100])
        batch.delete(*accounts[::2])
    assert await engine.query(Post, key=Post.forum == "b", consistent=True).count() == 30
    assert await engine.scan(Account, consistent=True).count() == 20


async def test_writes_to_one_key_apply_in_the_order_they_were_added(engine: Engine) -> None:
    await engine.bind(Shared1)
    async with engine.batch() as batch:
        batch.save(Shared1(pk="k", sk="1", name="first"))
        batch.delete(Shared1(pk="k", sk="1"))
        batch.save(Shared1(pk="k", sk="1", name="last"))
        batch.save(Shared1(pk="k", sk="2", name="gone"))
        batch.delete(Shared1(pk="k", sk="2"))
    stored = await engine.get(Shared1, pk="k", sk="1", consistent=True)
    assert stored is not None and stored.name == "last"
    assert await engine.get(Shared1, pk="k", sk="2", consistent=True) is None


async def test_an_exception_in_the_block_sends_nothing_and_says_so(engine: Engine) -> None:
    await engine.bind(Shared1)
    with pytest.raises(RuntimeError) as info:
        async with engine.batch() as batch:
            batch.save(Shared1(pk="x", sk="1"))
            await batch.flush()
            batch.save(Shared1(pk="x", sk="2"))
            raise RuntimeError("boom")
    note = "\n".join(info.value.__notes__)
    assert "1 queued write(s) were not sent" in note and "1 had already been written" in note
    assert await engine.get(Shared1, pk="x", sk="1", consistent=True) is not None
    assert await engine.get(Shared1, pk="x", sk="2", consistent=True) is None


async def test_invalid_objects_are_refused_when_added(engine: Engine) -> None:
    await engine.bind(Shared1)
    async with engine.batch() as batch:
        with pytest.raises(InvalidItem, match="empty"):
            batch.save(Shared1.model_construct(pk="", sk="1"))
        assert len(batch) == 0


async def test_batch_saved_objects_are_known_as_stored(engine: Engine) -> None:
    await engine.bind(Account)
    account = Account(id="v", balance=1)
    async with engine.batch() as batch:
        batch.save(account)  # a full put: versions are not checked in batches
    account.balance = 2
    await engine.save(account)
    stored = await engine.get(Account, id="v", consistent=True)
    assert stored is not None and stored.balance == 2


async def test_load_reads_thousands_of_objects_of_several_models(engine: Engine) -> None:
    await engine.bind(Post, Account)
    posts = [post("L", i) for i in range(1100)]
    accounts = [Account(id=f"l{i}", balance=i) for i in range(150)]
    async with engine.batch() as batch:
        batch.save(*posts, *accounts)
    blanks: list[Post | Account] = [Post.model_construct(forum="L", id=p.id) for p in posts]
    blanks += [Account.model_construct(id=a.id) for a in accounts]
    await engine.load(*blanks, consistent=True)
    assert [b.views for b in blanks[:1100]] == list(range(1100))  # type: ignore[union-attr]
    assert [b.balance for b in blanks[1100:]] == list(range(150))  # type: ignore[union-attr]


async def test_a_batch_written_object_saves_only_what_changed_since(engine: Engine) -> None:
    await engine.bind(Post)
    mine = post("c", views=1)
    mine.tags = {"a"}
    async with engine.batch() as batch:
        batch.save(mine)
    theirs = await engine.get(Post, forum="c", id=mine.id, consistent=True)
    assert theirs is not None
    theirs.views = 7
    await engine.save(theirs)  # another writer changes another field in between
    mine.content = "second"
    mine.tags.add("b")  # changed in place
    await engine.save(mine)  # sends `content` and `tags` alone: the other writer's views stay
    stored = await engine.get(Post, forum="c", id=mine.id, consistent=True)
    assert stored is not None
    assert (stored.content, stored.tags, stored.views) == ("second", {"a", "b"}, 7)


async def test_a_transport_of_the_users_sees_batch_items_as_dicts(engine: Engine) -> None:
    seen: list[dict[str, Any]] = []

    class Inspecting:  # a user's transport in front of the engine's own
        async def call(
            self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
        ) -> dict[str, Any]:
            if operation == "BatchWriteItem":
                for entries in request["RequestItems"].values():
                    seen.extend(entry["PutRequest"]["Item"] for entry in entries)
            return await engine.transport.call(service, operation, request, idempotent=idempotent)

    async with Engine(
        transport=Inspecting(), table_name_template=engine.table_name_template
    ) as inspected:
        await inspected.bind(Shared1)
        async with inspected.batch() as batch:
            batch.save(*(Shared1(pk="u", sk=str(i), name=f"n{i}") for i in range(30)))
        assert await inspected.query(Shared1, key=Shared1.pk == "u", consistent=True).count() == 30
    assert sorted(item["sk"]["S"] for item in seen) == sorted(str(i) for i in range(30))
    assert all(item["name"] == {"S": f"n{item['sk']['S']}"} for item in seen)
