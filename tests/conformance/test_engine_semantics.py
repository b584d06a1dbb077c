"""The same behaviours as a user of adyn meets them: through the engine, on every backend."""

from __future__ import annotations

import uuid
from typing import Annotated

import anyio
import pytest

from adyn import ConstraintViolation, Engine, HashKey, Model, TransactionCanceled


class Order(Model):
    class Meta:
        table_name = "conformance_orders"
        stream = "new_and_old"

    id: Annotated[str, HashKey()]
    item: str = ""
    quantity: int = 0


class Claim(Model):
    class Meta:
        table_name = "conformance_claims"

    id: Annotated[str, HashKey()]
    owner: str = ""


class Stock(Model):
    class Meta:
        table_name = "conformance_stock"

    sku: Annotated[str, HashKey()]
    left: int = 0


@pytest.mark.dynalite_gap("DynamoDB Streams")
async def test_saving_a_new_object_is_one_insert_with_the_whole_object(engine: Engine) -> None:
    await engine.bind(Order)
    order = Order(id="o1", item="book", quantity=2)
    await engine.save(order)
    await engine.save(order)  # nothing changed: no record
    order.quantity = 3
    await engine.save(order)
    async with engine.stream(Order, position="trim_horizon") as stream:
        insert = await stream.next(timeout=10)
        modify = await stream.next(timeout=10)
        assert await stream.next(timeout=0.5) is None
    assert insert is not None and modify is not None
    assert insert.event == "insert" and insert.new == Order(id="o1", item="book", quantity=2)
    assert modify.event == "modify" and (modify.old.quantity, modify.new.quantity) == (2, 3)


@pytest.mark.dynalite_gap("transactions (TransactWriteItems)")
async def test_a_cancelled_transaction_leaves_no_trace(engine: Engine) -> None:
    await engine.bind(Order, Stock)
    await engine.save(Stock(sku="pen", left=0))
    with pytest.raises(TransactionCanceled) as raised:
        async with engine.transaction() as tx:
            tx.save(Order(id="o2", item="pen", quantity=1))
            tx.update(
                Stock, key={"sku": "pen"}, actions=[Stock.left.add(-1)], condition=Stock.left >= 1
            )
    assert [r.code for r in raised.value.reasons] == [None, "ConditionalCheckFailed"]
    assert await engine.get(Order, id="o2", consistent=True) is None
    async with engine.stream(Order, position="trim_horizon") as stream:
        assert await stream.next(timeout=0.5) is None


async def test_one_of_two_racing_atomic_saves_wins(engine: Engine) -> None:
    await engine.bind(Claim)
    results: dict[str, list[str]] = {f"c{i}": [] for i in range(20)}

    async def claim(key: str, owner: str) -> None:
        try:
            await engine.save(Claim(id=key, owner=owner), atomic=True)
        except ConstraintViolation:
            return
        results[key].append(owner)

    async with anyio.create_task_group() as group:
        for key in results:
            for owner in ("a", "b"):
                group.start_soon(claim, key, owner)
    for key, winners in results.items():
        assert len(winners) == 1
        stored = await engine.get(Claim, id=key, consistent=True)
        assert stored is not None and stored.owner == winners[0]


@pytest.mark.dynalite_gap("transactions (TransactWriteItems)")
async def test_concurrent_orders_never_oversell(engine: Engine) -> None:
    await engine.bind(Order, Stock)
    await engine.save(Stock(sku="ink", left=3))
    sold: list[str] = []

    async def order(n: int) -> None:
        key = f"order-{n}-{uuid.uuid4().hex[:6]}"
        try:
            async with engine.transaction() as tx:
                tx.update(
                    Stock,
                    key={"sku": "ink"},
                    actions=[Stock.left.add(-1)],
                    condition=Stock.left >= 1,
                )
                tx.save(Order(id=key, item="ink", quantity=1))
        except TransactionCanceled as error:
            assert [r.code for r in error.reasons] == ["ConditionalCheckFailed", None]
            return
        sold.append(key)

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(order, n)
    stock = await engine.get(Stock, sku="ink", consistent=True)
    assert stock is not None and stock.left == 0 and len(sold) == 3
    assert await engine.scan(Order, consistent=True).count() == 3
