"""`engine.backfill(...)` through a shared table (single-table design), on every backend.

Through the table model the function gets each item as the entity its discriminator names;
through an entity only that entity's items are read (filtered by the server). Guard items of
`Unique()` fields are never passed to the function; templated keys are recomputed on save; the
conditional saves, conflicts, unique values and checkpoints work as on a table of its own.

On moto only: the unique fields need transactions and the table a stream, which dynalite lacks.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import anyio.lowlevel
import pytest

from _cli_entities import Customer, Note, Order, Shop, pay, shout
from _wire import raw_call
from adyn import Engine
from adyn.events import CallEvent

pytestmark = pytest.mark.moto_only

CUSTOMERS, ORDERS, NOTES = 3, 6, 2


def customer(i: int) -> Customer:
    return Customer(id=UUID(int=i + 1), email=f"c{i}@example.com", name=f"Customer {i}")


def order(i: int) -> Order:
    return Order(
        id=UUID(int=1000 + i),
        customer_id=UUID(int=i % CUSTOMERS + 1),
        placed_at=datetime(2026, 1, 1 + i, 12, tzinfo=UTC),
        total=Decimal(f"{i}.50"),
    )


@pytest.fixture
async def shop(engine: Engine) -> Engine:
    await engine.bind(Shop)
    for i in range(CUSTOMERS):  # Unique fields: a save writes the item and its guard
        await engine.save(customer(i))
    async with engine.batch() as batch:
        batch.save(*(order(i) for i in range(ORDERS)))
        batch.save(*(Note(n=i, text=f"note {i}", topic="t") for i in range(NOTES)))
    return engine


async def raw_items(engine: Engine) -> list[dict[str, Any]]:
    table = engine.table_name(Shop)
    response = await raw_call(engine, "Scan", {"TableName": table, "ConsistentRead": True})
    items: list[dict[str, Any]] = response["Items"]
    return items


def guards(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["pk"]["S"] for i in items if "adyn:unique" in i)


async def test_through_the_table_model_the_function_gets_each_entity(shop: Engine) -> None:
    seen: Counter[str] = Counter()

    def counting_pay(item: Shop) -> Shop | None:
        seen[type(item).__name__] += 1
        return pay(item)

    report = await shop.backfill(Shop, counting_pay, segments=3)
    assert seen == {"Customer": CUSTOMERS, "Order": ORDERS, "Note": NOTES}  # no guard items
    assert (report.scanned, report.changed, report.conflicts, report.failed) == (
        CUSTOMERS + ORDERS + NOTES,
        CUSTOMERS + ORDERS,
        0,
        (),
    )
    # the templated index key followed the status: every order left STATUS#open
    paid = await shop.query(Order.by_gsi1, key={"status": "paid"}).all()
    assert sorted(o.id.int for o in paid) == [1000 + i for i in range(ORDERS)]
    assert await shop.query(Order.by_gsi1, key={"status": "open"}).all() == []
    customers = await shop.scan(Customer, consistent=True).all()
    assert sorted(c.name for c in customers) == [f"CUSTOMER {i}" for i in range(CUSTOMERS)]
    assert {c.version for c in customers} == {2}  # saved once each (the seed was version 1)
    items = await raw_items(shop)
    assert len(guards(items)) == CUSTOMERS  # guards untouched: the emails did not change
    orders = [i for i in items if i.get("type") == {"S": "order"}]
    assert {i["gsi1pk"]["S"] for i in orders} == {"STATUS#paid"}


async def test_through_an_entity_only_its_items_are_read_by_the_server(shop: Engine) -> None:
    returned: list[int] = []

    def on_call(event: CallEvent) -> None:
        if event.operation == "Scan" and event.items is not None:
            returned.append(event.items)

    shop.listeners.append(on_call)
    try:
        report = await shop.backfill(Customer, shout, segments=2)
    finally:
        shop.listeners.remove(on_call)
    assert (report.scanned, report.changed, report.failed) == (CUSTOMERS, CUSTOMERS, ())
    assert sum(returned) == CUSTOMERS  # the server filtered out orders, notes and guards
    orders = await shop.scan(Order, consistent=True).all()
    assert {o.status for o in orders} == {"open"}


async def test_an_entity_returned_unchanged_is_not_written(shop: Engine) -> None:
    writes: list[str] = []
    shop.listeners.append(lambda e: writes.append(e.operation) if e.operation != "Scan" else None)
    report = await shop.backfill(Shop, lambda item: item)
    assert (report.scanned, report.changed, report.failed) == (CUSTOMERS + ORDERS + NOTES, 0, ())
    assert writes == []


async def test_a_concurrent_change_to_an_entity_is_retried_on_the_fresh_item(
    shop: Engine,
) -> None:
    calls: Counter[int] = Counter()

    async def pay_racing_a_clerk(item: Shop) -> Shop | None:
        if isinstance(item, Order):
            calls[item.id.int] += 1
            if item.id.int == 1002 and calls[item.id.int] == 1:
                key = {"customer_id": item.customer_id, "placed_at": item.placed_at, "id": item.id}
                await shop.update(Order, key=key, actions=[Order.total.add(1)])
        return pay(item)

    report = await shop.backfill(Shop, pay_racing_a_clerk, segments=2)
    assert report.conflicts == 1 and report.failed == ()
    assert calls[1002] == 2
    raced = await shop.get(
        Order, customer_id=UUID(int=3), placed_at=order(2).placed_at, id=order(2).id
    )
    assert raced is not None and raced.status == "paid" and raced.total == Decimal("3.50")


async def test_unique_values_move_their_guards_and_a_taken_one_is_a_failure(
    shop: Engine,
) -> None:
    def new_emails(c: Customer) -> Customer | None:
        if c.id.int == 2:
            c.email = "c0@example.com"  # Customer 0's
        elif c.id.int == 3:
            c.email = "fresh@example.com"
        else:
            return None
        return c

    report = await shop.backfill(Customer, new_emails)
    assert report.changed == 1 and report.conflicts == 0  # a taken value is not a conflict
    (failure,) = report.failed
    assert failure.key == {"pk": f"CUSTOMER#{UUID(int=2)}", "sk": "PROFILE"}
    assert "UniqueViolation" in failure.error and "c0@example.com" in failure.error
    stored = {c.id.int: c for c in await shop.scan(Customer, consistent=True).all()}
    assert stored[2].email == "c1@example.com" and stored[3].email == "fresh@example.com"
    assert stored[3].gsi1pk == "EMAIL#fresh@example.com"  # the templated key followed
    held = [g for g in guards(await raw_items(shop))]
    assert len(held) == CUSTOMERS and any(g.endswith("#fresh@example.com") for g in held)
    assert not any(g.endswith("#c2@example.com") for g in held)  # the old guard went


async def test_an_interrupted_table_model_backfill_resumes_from_its_checkpoint(
    shop: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adyn._backfill.PAGE_SIZE", 2)  # so positions fall inside segments
    path = tmp_path / "pay.json"
    total = CUSTOMERS + ORDERS + NOTES
    seen: list[Any] = []
    with anyio.CancelScope() as scope:

        async def pay_then_stop(item: Shop) -> Shop | None:
            seen.append(item)
            if len(seen) == 6:
                scope.cancel()  # as Ctrl-C would, in the middle of a page
            await anyio.lowlevel.checkpoint()
            return pay(item)

        await shop.backfill(Shop, pay_then_stop, segments=1, checkpoint=path)
    assert scope.cancelled_caught
    state = json.loads(path.read_text())
    assert state["complete"] is False and 0 < state["counts"]["scanned"] < 6

    resumed: Counter[str] = Counter()

    def pay_again(item: Shop) -> Shop | None:
        resumed[type(item).__name__] += 1
        return pay(item)

    report = await shop.backfill(Shop, pay_again, segments=1, checkpoint=path)
    assert sum(resumed.values()) == total - state["counts"]["scanned"]
    assert report.scanned == total and report.failed == ()
    assert json.loads(path.read_text())["complete"] is True
    customers = await shop.scan(Customer, consistent=True).all()
    assert {c.version for c in customers} == {2}  # each written exactly once
    assert {o.status for o in await shop.scan(Order, consistent=True).all()} == {"paid"}


async def test_items_no_entity_can_load_are_named_and_the_rest_done(shop: Engine) -> None:
    table = shop.table_name(Shop)
    for item in (
        {"pk": {"S": "WHAT"}, "sk": {"S": "X"}, "type": {"S": "nobody"}},
        {"pk": {"S": "CUSTOMER#bad"}, "sk": {"S": "PROFILE"}, "type": {"S": "customer"}},
    ):
        await raw_call(shop, "PutItem", {"TableName": table, "Item": item})
    report = await shop.backfill(Shop, pay, segments=1)
    assert sorted(f.key["pk"] for f in report.failed) == ["CUSTOMER#bad", "WHAT"]
    assert all("InvalidItem" in f.error for f in report.failed)
    assert report.scanned == CUSTOMERS + ORDERS + NOTES + 2
    assert report.changed == CUSTOMERS + ORDERS

    only = await shop.backfill(Customer, shout, segments=1)
    assert [f.key["pk"] for f in only.failed] == ["CUSTOMER#bad"]  # the other is no customer
    assert only.scanned == CUSTOMERS + 1 and only.changed == 0  # shouted already
