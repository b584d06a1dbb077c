"""`Unique()` fields: guard items written in the same transaction as the item make DynamoDB refuse
a second item with a taken value; guards move with the value, go with the item, and never appear
in reads. Transactions need moto (dynalite has none)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from _wire import raw_call
from adyn import (
    CallEvent,
    ConstraintViolation,
    Engine,
    GlobalIndex,
    HashKey,
    InvalidCondition,
    InvalidItem,
    InvalidModel,
    Model,
    RangeKey,
    TransactionCanceled,
    Unique,
    UniqueViolation,
)

pytestmark = pytest.mark.moto_only


class User(Model):
    class Meta:
        table_name = "users"
        stream = "new_and_old"

    tenant: Annotated[str, HashKey()]
    id: Annotated[int, RangeKey()]
    email: Annotated[str, Unique()]
    handle: Annotated[str, Unique()] | None = None
    name: str = ""

    by_id = GlobalIndex(hash_key="tenant", range_key="id", projection="all")


async def table_items(engine: Engine) -> list[dict[str, Any]]:
    """Every item of the users table, guards included (a raw scan around adyn)."""
    response = await raw_call(
        engine, "Scan", {"TableName": engine.table_name(User), "ConsistentRead": True}
    )
    return response["Items"]  # type: ignore[no-any-return]


async def guards(engine: Engine) -> set[str]:
    return {
        item["tenant"]["S"].removeprefix("adyn#unique#User#")
        for item in await table_items(engine)
        if "adyn:unique" in item
    }


@pytest.fixture
async def users(engine: Engine) -> Engine:
    await engine.bind(User)
    return engine


async def test_a_taken_value_is_refused_by_dynamodb(users: Engine) -> None:
    await users.save(User(tenant="t", id=1, email="ada@x", handle="ada"))
    assert await guards(users) == {"email#ada@x", "handle#ada"}
    with pytest.raises(UniqueViolation) as caught:
        await users.save(User(tenant="t", id=2, email="ada@x"))
    error = caught.value
    assert isinstance(error, ConstraintViolation)
    assert (error.model, error.field, error.value) == ("User", "email", "ada@x")
    assert error.obj.id == 2 and "already taken" in str(error)
    assert await users.get(User, tenant="t", id=2) is None  # nothing was written
    with pytest.raises(UniqueViolation, match="handle"):  # another tenant: still one table
        await users.save(User(tenant="u", id=1, email="bob@x", handle="ada"))
    # saving the owner again, or another field of it, is fine
    owner = await users.get(User, tenant="t", id=1)
    assert owner is not None
    owner.name = "Ada"
    await users.save(owner)
    await users.save(User(tenant="t", id=1, email="ada@x", handle="ada", name="again"))


async def test_changing_a_value_moves_its_guard_and_frees_the_old_one(users: Engine) -> None:
    ada = User(tenant="t", id=1, email="ada@x", handle="ada")
    await users.save(ada)
    ada.email = "ada@y"
    ada.handle = None
    await users.save(ada)
    assert await guards(users) == {"email#ada@y"}
    await users.save(User(tenant="t", id=2, email="ada@x", handle="ada"))  # free again
    with pytest.raises(UniqueViolation):
        await users.save(User(tenant="t", id=3, email="ada@y"))

    stale = await users.get(User, tenant="t", id=1)
    assert stale is not None
    ada.email = "ada@z"
    await users.save(ada)
    stale.email = "ada@w"  # it still believes the stored value is ada@y
    with pytest.raises(ConstraintViolation) as caught:
        await users.save(stale)
    assert not isinstance(caught.value, UniqueViolation)
    assert await guards(users) == {"email#ada@z", "email#ada@x", "handle#ada"}


async def test_deleting_an_object_removes_its_guards(users: Engine) -> None:
    ada = User(tenant="t", id=1, email="ada@x", handle="ada")
    bob = User(tenant="t", id=2, email="bob@x")
    await users.save(ada, bob)
    await users.delete(ada)
    # an object that never read its unique fields: their values are read first
    await users.delete(User.model_construct(tenant="t", id=2))
    assert await table_items(users) == []
    await users.save(User(tenant="t", id=3, email="ada@x", handle="ada"))


async def test_guard_items_never_appear_in_reads(users: Engine) -> None:
    await users.save(User(tenant="t", id=1, email="ada@x"), User(tenant="t", id=2, email="b@x"))
    assert len(await table_items(users)) == 4
    assert sorted(u.id for u in await users.scan(User).all()) == [1, 2]
    assert await users.scan(User).count() == 2
    assert await users.scan(User, limit=5, page_size=1).count() == 2
    assert len(await users.query(User.by_id, key=User.tenant == "t").all()) == 2
    guard_tenant = "adyn#unique#User#email#ada@x"
    assert await users.query(User, key=User.tenant == guard_tenant).all() == []
    assert await users.get(User, tenant=guard_tenant, id=0) is None


async def test_a_stream_passes_guard_records_over(users: Engine) -> None:
    ada = User(tenant="t", id=1, email="ada@x")
    await users.save(ada)
    ada.email = "ada@y"
    await users.save(ada)
    async with users.stream(User, position="trim_horizon") as stream:
        insert = await stream.next(timeout=10)
        modify = await stream.next(timeout=10)
        assert await stream.next(timeout=1) is None
    assert insert is not None and modify is not None
    assert (insert.event, modify.event) == ("insert", "modify")
    assert insert.new == User(tenant="t", id=1, email="ada@x")
    assert modify.new.email == "ada@y"


async def test_transactions_carry_the_guards_and_batches_refuse(users: Engine) -> None:
    ada = User(tenant="t", id=1, email="ada@x")
    async with users.transaction() as tx:
        tx.save(ada)
        tx.save(User(tenant="t", id=2, email="bob@x"))
    assert await guards(users) == {"email#ada@x", "email#bob@x"}

    with pytest.raises(TransactionCanceled) as cancelled:
        async with users.transaction() as tx:
            tx.save(User(tenant="t", id=3, email="carol@x"))
            tx.save(User(tenant="t", id=4, email="ada@x"))
    reasons = cancelled.value.reasons
    assert len(reasons) == 4  # each item and its guard
    failed = [r for r in reasons if r.code == "ConditionalCheckFailed"]
    assert len(failed) == 1 and failed[0].message == "User.email: 'ada@x' is already taken"
    assert failed[0].obj.id == 4 and failed[0].item is None
    assert await users.get(User, tenant="t", id=3) is None

    async with users.transaction() as tx:
        tx.delete(ada)
    assert await guards(users) == {"email#bob@x"}

    listened: list[CallEvent] = []
    users.listeners.append(listened.append)
    with pytest.raises(InvalidItem, match="two writes of this transaction"):
        async with users.transaction() as tx:
            tx.save(User(tenant="t", id=5, email="same@x"))
            tx.save(User(tenant="t", id=6, email="same@x"))
    with pytest.raises(InvalidItem, match="a transaction holds at most 100 items"):
        async with users.transaction() as tx:
            for i in range(51):  # 51 items and 51 guards
                tx.save(User(tenant="t", id=100 + i, email=f"{i}@x"))
    with pytest.raises(InvalidItem, match="load the object first"):
        async with users.transaction() as tx:
            tx.delete(User.model_construct(tenant="t", id=2))
    with pytest.raises(InvalidItem, match="a batch cannot save") as caught:
        async with users.batch() as batch:
            batch.save(User(tenant="t", id=7, email="new@x"))
    assert (caught.value.model, caught.value.field) == ("User", "email")
    with pytest.raises(InvalidItem, match="a batch cannot delete"):
        async with users.batch() as batch:
            batch.delete(User.model_construct(tenant="t", id=2))
    with pytest.raises(InvalidCondition, match="changes only through save"):
        await users.update(User, {"tenant": "t", "id": 2}, [User.email.set("x@x")])
    assert listened == []


def test_unique_fields_are_checked_at_class_creation() -> None:
    with pytest.raises(InvalidModel, match="a key is unique already"):

        class KeyUnique(Model):
            id: Annotated[str, HashKey(), Unique()]

    with pytest.raises(InvalidModel, match="stored as S, N or B"):

        class SetUnique(Model):
            id: Annotated[str, HashKey()]
            tags: Annotated[set[str], Unique()] = set()

    with pytest.raises(InvalidModel, match="hash key is stored as S or B"):

        class NumberKeyed(Model):
            id: Annotated[int, HashKey()]
            email: Annotated[str, Unique()]
