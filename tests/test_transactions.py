"""Read and write transactions on moto (dynalite has no transactions)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from _models import Account, Post
from adyn import Engine, InvalidItem, MissingObjects, TransactionCanceled

pytestmark = pytest.mark.moto_only

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
async def bank(engine: Engine) -> Engine:
    await engine.bind(Account, Post)
    await engine.save(Account(id="alice", balance=100), Account(id="bob", balance=0))
    return engine


async def balances(engine: Engine) -> dict[str, int]:
    return {a.id: a.balance async for a in engine.scan(Account, consistent=True)}


async def test_a_write_transaction_commits_every_kind_of_entry(bank: Engine) -> None:
    alice = await bank.get(Account, id="alice", consistent=True)
    assert alice is not None
    alice.balance -= 30
    doomed, erin = Account(id="doomed"), Account(id="erin", balance=1)
    await bank.save(doomed, erin)
    async with bank.transaction() as tx:
        tx.save(alice)
        tx.update(Account, key={"id": "bob"}, actions=[Account.balance.add(30)])
        tx.save(Account(id="carol", balance=5), condition=Account.id.not_exists())
        tx.delete(doomed)
        tx.check(Account.model_construct(id="erin"), Account.balance >= 1)
    assert await balances(bank) == {"alice": 70, "bob": 30, "carol": 5, "erin": 1}
    assert alice.version == 2  # the versioned save took part and bumped the version
    again = await bank.get(Account, id="alice", consistent=True)
    assert again is not None and again.version == 2


async def test_a_cancelled_transaction_applies_nothing_and_gives_each_items_reason(
    bank: Engine,
) -> None:
    stale = Account(id="alice", balance=1)  # version 0: not the stored version
    with pytest.raises(TransactionCanceled) as info:
        async with bank.transaction() as tx:
            tx.update(Account, key={"id": "bob"}, actions=[Account.balance.add(1)])
            tx.save(stale)
    reasons = info.value.reasons
    assert [r.code for r in reasons] == [None, "ConditionalCheckFailed"]
    assert reasons[1].obj is stale
    assert reasons[1].item == Account(id="alice", balance=100, version=1)  # as stored
    assert await balances(bank) == {"alice": 100, "bob": 0}


async def test_an_exception_in_the_block_sends_nothing(bank: Engine) -> None:
    with pytest.raises(KeyError):
        async with bank.transaction() as tx:
            tx.update(Account, key={"id": "bob"}, actions=[Account.balance.add(1)])
            raise KeyError("stop")
    assert await balances(bank) == {"alice": 100, "bob": 0}


async def test_too_many_items_or_two_operations_on_one_item_are_refused(bank: Engine) -> None:
    async with bank.transaction() as tx:
        tx.check(Account.model_construct(id="alice"), Account.balance > 0)
        with pytest.raises(InvalidItem, match="two operations on one item"):
            tx.update(Account, key={"id": "alice"}, actions=[Account.balance.add(1)])
    tx = bank.transaction()
    for i in range(100):
        tx.save(Account(id=f"n{i}"))  # type: ignore[union-attr]
    with pytest.raises(InvalidItem, match="at most 100"):
        tx.save(Account(id="one-too-many"))  # type: ignore[union-attr]


async def test_a_read_transaction_fills_objects_on_exit(bank: Engine) -> None:
    alice, bob = Account.model_construct(id="alice"), Account.model_construct(id="bob")
    async with bank.transaction(mode="r") as tx:
        tx.load(alice, bob)
    assert (alice.balance, bob.balance) == (100, 0)
    ghost = Account.model_construct(id="ghost")
    with pytest.raises(MissingObjects) as info:
        async with bank.transaction(mode="r") as tx:
            tx.load(ghost)
    assert info.value.objects == [ghost]


async def test_transactions_across_models_and_tables(bank: Engine) -> None:
    post = Post(forum="t", id=uuid4(), user=uuid4(), date=NOW)
    async with bank.transaction() as tx:
        tx.save(post)
        tx.update(Account, key={"id": "alice"}, actions=[Account.balance.set(Account.balance - 1)])
    assert await bank.get(Post, forum="t", id=post.id) == post
    assert (await balances(bank))["alice"] == 99
