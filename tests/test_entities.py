"""Entities on a shared table: every write is stamped, and no read returns the wrong model.

Runs on every backend (moto, dynalite); transactions on moto only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _shop import Credit, Customer, Debit, Ledger, Legacy, LineItem, Order, Shop, Team, User
from _wire import raw_call
from adyn import (
    ConstraintViolation,
    Engine,
    HashKey,
    InvalidItem,
    InvalidModel,
    MissingObjects,
    Model,
    RangeKey,
    Unique,
    UniqueViolation,
)

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def customer(**fields: Any) -> Customer:
    data: dict[str, Any] = {"id": uuid4(), "email": f"{uuid4().hex[:8]}@example.com", "name": "Ada"}
    data.update(fields)
    return Customer(**data)


def order(owner: Customer, minutes: int = 0, **fields: Any) -> Order:
    data: dict[str, Any] = {
        "id": uuid4(),
        "customer_id": owner.id,
        "placed_at": T0 + timedelta(minutes=minutes),
        "total": Decimal("9.50"),
    }
    data.update(fields)
    return Order(**data)


async def raw_get(engine: Engine, model: type[Model], key: dict[str, Any]) -> dict[str, Any]:
    response = await raw_call(
        engine,
        "GetItem",
        {"TableName": engine.table_name(model), "Key": key, "ConsistentRead": True},
    )
    item: dict[str, Any] = response.get("Item") or {}
    return item


async def raw_put(engine: Engine, model: type[Model], item: dict[str, Any]) -> None:
    await raw_call(engine, "PutItem", {"TableName": engine.table_name(model), "Item": item})


def key_of(obj: Model) -> dict[str, Any]:
    return {"pk": {"S": obj.pk}, "sk": {"S": obj.sk}}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- writes


async def test_every_write_of_an_entity_stores_its_discriminator(engine: Engine) -> None:
    await engine.bind(Shop)
    ada = customer()
    await engine.save(ada)
    first = order(ada)
    await engine.save(first)
    async with engine.batch() as batch:
        second = order(ada, 1)
        batch.save(second)
    for obj, name in ((ada, "customer"), (first, "order"), (second, "order")):
        assert (await raw_get(engine, Shop, key_of(obj)))["type"] == {"S": name}
    # a diff save keeps it
    ada.name = "Ada L."
    await engine.save(ada)
    assert (await raw_get(engine, Shop, key_of(ada)))["type"] == {"S": "customer"}


async def test_a_key_form_update_stamps_the_entity_and_never_touches_another(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    ada = customer()
    placed = order(ada)
    await engine.save(ada, placed)
    updated = await engine.update(
        Order,
        {"customer_id": ada.id, "placed_at": placed.placed_at, "id": placed.id},
        [Order.total.set(Decimal(3))],
    )
    assert isinstance(updated, Order) and updated.total == Decimal(3)
    assert (await raw_get(engine, Shop, key_of(updated)))["type"] == {"S": "order"}
    with pytest.raises(ConstraintViolation):  # the customer's key, through Order
        await engine.update(Order, {"pk": ada.pk, "sk": ada.sk}, [Order.total.set(Decimal(1))])
    assert "total" not in await raw_get(engine, Shop, key_of(ada))


@pytest.mark.moto_only  # dynalite does not return the stored item with a failed condition
async def test_the_item_returned_with_a_failed_condition_is_the_entity_it_is(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    ada = customer()
    await engine.save(ada)
    with pytest.raises(ConstraintViolation) as info:
        await engine.update(Order, {"pk": ada.pk, "sk": ada.sk}, [Order.total.set(Decimal(1))])
    assert info.value.item == ada and type(info.value.item) is Customer


async def test_objects_of_the_table_model_are_not_written(engine: Engine) -> None:
    await engine.bind(Shop)
    with pytest.raises(InvalidItem, match="table model"):
        await engine.save(Shop(pk="p", sk="s"))
    with pytest.raises(InvalidItem, match="table model"):
        async with engine.batch() as batch:
            batch.save(Shop(pk="p", sk="s"))


@pytest.mark.moto_only
async def test_transaction_writes_store_the_discriminator_and_reads_check_it(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    ada = customer()
    placed = order(ada)
    async with engine.transaction() as tx:
        tx.save(ada)
        tx.save(placed)
    assert (await raw_get(engine, Shop, key_of(placed)))["type"] == {"S": "order"}
    fresh = Customer.model_construct(id=ada.id, email=ada.email, name="")
    async with engine.transaction(mode="r") as rx:
        rx.load(fresh)
    assert fresh == ada
    wrong = Order.model_construct(pk=ada.pk, sk=ada.sk)  # the customer's key, as an Order
    with pytest.raises(InvalidItem, match="Customer"):
        async with engine.transaction(mode="r") as rx:
            rx.load(wrong)


# ---------------------------------------------------------------- reads


async def test_a_query_through_the_table_model_returns_an_item_collection(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    ada = customer()
    orders = [order(ada, n) for n in range(3)]
    await engine.save(ada, *orders)
    collection = await engine.query(Shop, key=Shop.pk == ada.pk, consistent=True).all()
    assert collection == [*orders, ada]  # ORDER#... sorts before PROFILE
    assert [type(x) for x in collection] == [Order, Order, Order, Customer]
    assert await engine.query(Shop, key={"pk": ada.pk}, consistent=True).count() == 4
    # each item as its entity through get too
    assert await engine.get(Shop, pk=ada.pk, sk="PROFILE") == ada


async def test_reads_through_an_entity_yield_only_its_items_and_limit_counts_them(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    ada = customer()
    orders = [order(ada, n) for n in range(5)]
    await engine.save(ada, *orders)
    # the profile is in the same partition: the server filters it out of the query
    query = engine.query(Order, key=Order.pk == ada.pk, consistent=True)
    assert await query.all() == orders
    assert await query.count() == 5
    page = await engine.query(Customer, key=Customer.pk == ada.pk, consistent=True, limit=1).first()
    assert page == ada
    limited = await engine.query(Order, key={"customer_id": ada.id}, limit=2).all()
    assert limited == orders[:2]
    # with a user filter, combined with the entity's
    big = await engine.query(
        Order, key={"customer_id": ada.id}, filter=Order.status == "open", limit=3
    ).all()
    assert big == orders[:3]
    scanned = await engine.scan(Customer, consistent=True).all()
    assert scanned == [ada]
    assert await engine.scan(Order, consistent=True).count() == 5
    assert await engine.scan(Order, consistent=True, limit=4).count() == 4
    assert sorted(map(type, await engine.scan(Shop).all()), key=str) == sorted(
        [Customer] + [Order] * 5, key=str
    )


async def test_a_keys_only_index_still_tells_entities_apart(engine: Engine) -> None:
    await engine.bind(Shop)
    ada, bob = customer(), customer()
    await engine.save(ada, bob, order(ada))
    # every profile, by the inverted index (projection "keys" plus the discriminator)
    profiles = await engine.query(Shop.inverted, key=Shop.sk == "PROFILE").all()
    assert sorted(p.pk for p in profiles) == sorted([ada.pk, bob.pk])
    assert all(type(p) is Customer for p in profiles)
    through_entity = await engine.query(Customer.inverted, key={"sk": "PROFILE"}).all()
    assert {p.pk for p in through_entity} == {ada.pk, bob.pk}


async def test_get_and_load_of_another_entity_raise_naming_both(engine: Engine) -> None:
    await engine.bind(Shop)
    ada = customer()
    await engine.save(ada)
    with pytest.raises(InvalidItem) as info:
        await engine.get(Order, pk=ada.pk, sk="PROFILE")
    assert "Customer" in str(info.value) and "Order" in str(info.value)
    wrong = Order.model_construct(pk=ada.pk, sk="PROFILE")
    with pytest.raises(InvalidItem, match="Customer"):
        await engine.load(wrong)
    right = Customer.model_construct(id=ada.id)
    await engine.load(right, consistent=True)
    assert right == ada


async def test_an_item_naming_no_known_entity_raises_or_is_skipped(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    await engine.bind(Shop, Ledger)
    ada = customer()
    await engine.save(ada)
    await raw_put(engine, Shop, {"pk": {"S": ada.pk}, "sk": {"S": "GIFT#1"}, "type": {"S": "gift"}})
    with pytest.raises(InvalidItem) as info:
        await engine.query(Shop, key=Shop.pk == ada.pk).all()
    text = str(info.value)
    assert engine.table_name(Shop) in text and "GIFT#1" in text and "'gift'" in text
    with pytest.raises(InvalidItem, match="gift"):
        await engine.get(Shop, pk=ada.pk, sk="GIFT#1")
    # through an entity the server filter keeps it out
    assert await engine.query(Customer, key=Customer.pk == ada.pk).all() == [ada]

    # Ledger skips (and logs) what it does not know, and counts what it returns
    await engine.save(Credit(pk="acct", sk="1", amount=5), Debit(pk="acct", sk="2", amount=3))
    await raw_put(engine, Ledger, {"pk": {"S": "acct"}, "sk": {"S": "3"}, "kind": {"S": "Fee"}})
    await raw_put(engine, Ledger, {"pk": {"S": "acct"}, "sk": {"S": "4"}})
    with caplog.at_level(logging.WARNING, logger="adyn.entities"):
        found = await engine.query(Ledger, key=Ledger.pk == "acct", consistent=True).all()
    assert [type(x) for x in found] == [Credit, Debit]
    assert "'Fee'" in caplog.text and engine.table_name(Ledger) in caplog.text
    assert await engine.query(Ledger, key=Ledger.pk == "acct", consistent=True).count() == 2
    assert await engine.get(Ledger, pk="acct", sk="3") is None
    with pytest.raises(MissingObjects):
        await engine.load(Credit.model_construct(pk="acct", sk="3"))


async def test_a_callable_discriminator_reads_the_entity_from_the_key(engine: Engine) -> None:
    await engine.bind(Legacy)
    users = [User(org="acme", name=f"u{n}") for n in range(4)]
    teams = [Team(org="acme", name=f"t{n}", size=n) for n in range(3)]
    await engine.save(*users, *teams)
    raw = await raw_get(engine, Legacy, {"pk": {"S": "ORG#acme"}, "sk": {"S": "USER#u0"}})
    assert "type" not in raw and set(raw) == {"pk", "sk", "org", "name"}  # nothing stamped
    everything = await engine.query(Legacy, key={"pk": "ORG#acme"}, consistent=True).all()
    assert everything == [*teams, *users]  # TEAM# < USER#
    # no attribute to filter on: the entity is found here, and limit still counts it
    assert await engine.scan(Team, consistent=True, limit=2, page_size=1).all() == teams[:2]
    assert await engine.scan(User, consistent=True).count() == 4
    assert await engine.query(User, key={"org": "acme"}, limit=3).all() == users[:3]
    with pytest.raises(InvalidItem, match="Team"):
        await engine.get(User, pk="ORG#acme", sk="TEAM#t1")
    assert await engine.get(Team, org="acme", name="t2") == teams[2]


async def test_bind_takes_the_whole_family_and_refuses_strangers(engine: Engine) -> None:
    await engine.bind(Customer)  # binds the table model and every entity with it
    ada = customer()
    await engine.save(ada, order(ada))
    assert len(await engine.query(Shop, key=Shop.pk == ada.pk).all()) == 2

    class Late(Shop):  # an entity defined after the bind reads through the bound table
        note: str = ""

    await engine.save(Late(pk=ada.pk, sk="NOTE", note="hi"))
    assert (await engine.get(Late, pk=ada.pk, sk="NOTE")) == Late(pk=ada.pk, sk="NOTE", note="hi")

    class Stranger(Model):
        class Meta:
            table_name = "shop"

        pk: Annotated[str, HashKey()]
        sk: Annotated[str, RangeKey()]

    with pytest.raises(InvalidModel) as info:
        await engine.bind(Stranger)
    assert "Stranger" in str(info.value) and "discriminator" in str(info.value)


# ---------------------------------------------------------------- class rules


def test_entity_rules_are_checked_at_class_creation() -> None:
    with pytest.raises(InvalidModel, match="discriminator attribute"):

        class Typed(Shop):
            type: str = "x"

    with pytest.raises(InvalidModel, match="already taken"):

        class Customer2(Shop):
            class Meta:
                entity = "customer"

    with pytest.raises(InvalidModel, match="discriminator"):

        class Orphan(Model):
            class Meta:
                entity = "orphan"

            pk: Annotated[str, HashKey()]

    with pytest.raises(InvalidModel, match="unknown_entities"):

        class Loose(Model):
            class Meta:
                discriminator = "type"
                unknown_entities = "ignore"

            pk: Annotated[str, HashKey()]


# ---------------------------------------------------------------- property


ENTITIES = st.sampled_from(["customer", "order", "line", "credit", "debit", "user", "team"])


def _make(kind: str, n: int, owner: UUID) -> Model:
    if kind == "customer":
        return Customer(id=owner, email=f"c{n}@x", name=f"c{n}")
    if kind == "order":
        return Order(id=uuid4(), customer_id=owner, placed_at=T0 + timedelta(seconds=n), name=n)
    if kind == "line":
        return LineItem(order_id=owner, n=n, sku=f"s{n}")
    if kind == "credit":
        return Credit(pk=str(owner), sk=f"{n:04d}", amount=n)
    if kind == "debit":
        return Debit(pk=str(owner), sk=f"{n:04d}", amount=n, reason="r")
    if kind == "user":
        return User(org=str(owner), name=f"u{n}")
    return Team(org=str(owner), name=f"t{n}", size=n)


READERS: dict[type[Model], list[type[Model]]] = {
    Shop: [Customer, Order, LineItem],
    Ledger: [Credit, Debit],
    Legacy: [User, Team],
}


def _by_key(objs: list[Any]) -> list[Any]:
    return sorted(objs, key=lambda o: (o.pk, o.sk))


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kinds=st.lists(ENTITIES, min_size=1, max_size=10), limit=st.integers(1, 4))
async def test_no_read_ever_returns_an_item_as_the_wrong_model(
    engine: Engine, kinds: list[str], limit: int
) -> None:
    await engine.bind(Shop, Ledger, Legacy)
    owner = uuid4()
    by_key: dict[tuple[Any, ...], Model] = {}
    for n, kind in enumerate(kinds):  # one object per key (concurrent saves of one key race)
        obj = _make(kind, n, owner)
        by_key.setdefault((type(obj).__mro__[1], obj.pk, obj.sk), obj)  # type: ignore[attr-defined]
    objs = list(by_key.values())
    await engine.save(*objs)
    partitions = {Shop: f"CUSTOMER#{owner}", Ledger: str(owner), Legacy: f"ORG#{owner}"}
    for table_model, entities in READERS.items():
        stored = [o for o in objs if type(o) in entities]
        pk = partitions[table_model]
        key = table_model.pk == pk  # type: ignore[attr-defined]
        mine = [o for o in stored if o.pk == pk]  # type: ignore[attr-defined]
        # through the table model: every item, each as its own entity
        collection = await engine.query(table_model, key=key, consistent=True).all()
        assert _by_key(collection) == _by_key(mine)
        scanned = await engine.scan(table_model, consistent=True).all()
        assert all(o in scanned for o in stored)
        for entity in entities:
            want = [o for o in mine if type(o) is entity]
            got = await engine.query(entity, key=key, consistent=True).all()
            assert all(type(o) is entity for o in got) and _by_key(got) == _by_key(want)
            head = await engine.query(entity, key=key, consistent=True, limit=limit).all()
            assert len(head) == min(limit, len(want)) and all(type(o) is entity for o in head)
            assert await engine.query(entity, key=key, consistent=True).count() == len(want)
            assert all(type(o) is entity for o in await engine.scan(entity).all())
        for obj in stored:  # get and load through the right entity, the wrong ones, the table
            key_values = {"pk": obj.pk, "sk": obj.sk}  # type: ignore[attr-defined]
            assert await engine.get(table_model, consistent=True, **key_values) == obj
            for entity in entities:
                if entity is type(obj):
                    assert await engine.get(entity, consistent=True, **key_values) == obj
                    copy = entity.model_construct(**key_values)
                    await engine.load(copy, consistent=True)
                    assert copy == obj
                else:
                    with pytest.raises(InvalidItem):
                        await engine.get(entity, consistent=True, **key_values)
                    with pytest.raises(InvalidItem):
                        await engine.load(entity.model_construct(**key_values), consistent=True)


class Member(Shop):
    """An entity with a Unique field: its guard items share the table."""

    class Meta:
        keys = {"pk": "MEMBER#{id}", "sk": "MEMBER"}

    id: str
    email: Annotated[str, Unique()]


@pytest.mark.moto_only  # Unique() writes in transactions
async def test_guard_items_of_unique_fields_are_no_entitys_items(engine: Engine) -> None:
    await engine.bind(Shop)
    ada = customer()
    member = Member(id="m1", email="m@example.com")
    await engine.save(ada, member)
    raw = await raw_call(engine, "Scan", {"TableName": engine.table_name(Shop)})
    assert len(raw["Items"]) == 3  # the customer, the member and the member's guard
    scanned = await engine.scan(Shop, consistent=True).all()
    assert len(scanned) == 2 and ada in scanned and member in scanned
    assert await engine.scan(Shop, consistent=True).count() == 2
    assert await engine.scan(Member, consistent=True).all() == [member]
    with pytest.raises(UniqueViolation):
        await engine.save(Member(id="m2", email="m@example.com"))


async def test_get_through_the_table_model_of_an_item_without_a_discriminator_raises(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    await raw_put(engine, Shop, {"pk": {"S": "bare"}, "sk": {"S": "item"}})
    with pytest.raises(InvalidItem, match="None"):
        await engine.get(Shop, pk="bare", sk="item")
