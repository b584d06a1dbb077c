"""Batch writes and reads on real servers (moto fast/slow, dynalite)."""

from __future__ import annotations

from datetime import UTC, datetime
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
