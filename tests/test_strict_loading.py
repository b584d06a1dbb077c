"""Strict loading: a stored item that lacks a required field, or holds an attribute of the wrong
DynamoDB type, is an `InvalidItem` naming the model, the field and the key, wherever it is loaded;
projections read only what they ask for; `Meta.validate_on_load` runs the model's validators."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import field_validator

from _wire import raw_call
from adyn import (
    ConstraintViolation,
    Engine,
    GlobalIndex,
    HashKey,
    InvalidItem,
    Model,
    RangeKey,
    TransactionCanceled,
)


class Order(Model):
    class Meta:
        table_name = "orders"

    customer: Annotated[str, HashKey()]
    number: Annotated[int, RangeKey()]
    status: str
    total: int
    note: str | None  # required by pydantic, but None is stored as no attribute
    tags: set[str]  # an empty set is stored as no attribute
    items: int = 0

    by_status = GlobalIndex(hash_key="status", range_key="number", projection="keys")


class StreamedOrder(Order):
    class Meta:
        table_name = "streamed_orders"
        stream = "new_and_old"


class Shouting(Model):
    class Meta:
        table_name = "shouting"
        validate_on_load = True

    id: Annotated[str, HashKey()]
    name: str
    level: int = 1

    @field_validator("name")
    @classmethod
    def upper(cls, value: str) -> str:
        if not value:
            raise ValueError("a name is never empty")
        return value.upper()


async def put_raw(engine: Engine, model: type[Model], item: dict[str, Any]) -> None:
    """Store an item as another program might, around adyn's checks."""
    await raw_call(engine, "PutItem", {"TableName": engine.table_name(model), "Item": item})


GOOD = {
    "customer": {"S": "c"},
    "number": {"N": "1"},
    "status": {"S": "open"},
    "total": {"N": "10"},
}
NO_TOTAL = {"customer": {"S": "c"}, "number": {"N": "2"}, "status": {"S": "open"}}
TEXT_TOTAL = {**GOOD, "number": {"N": "3"}, "total": {"S": "ten"}}


def assert_names(error: InvalidItem, field: str, number: int) -> None:
    assert (error.model, error.field) == ("Order", field)
    assert error.key == {"customer": "c", "number": number}
    assert f"number={number}" in str(error) and "Order." + field in str(error)


async def test_every_read_refuses_an_item_without_a_required_field(engine: Engine) -> None:
    await engine.bind(Order)
    await put_raw(engine, Order, GOOD)
    await put_raw(engine, Order, NO_TOTAL)

    good = await engine.get(Order, customer="c", number=1)
    assert good is not None and (good.total, good.note, good.tags) == (10, None, set())

    with pytest.raises(InvalidItem) as caught:
        await engine.get(Order, customer="c", number=2)
    assert_names(caught.value, "total", 2)
    assert "has no 'total' attribute" in str(caught.value)
    with pytest.raises(InvalidItem) as caught:
        await engine.query(Order, key=Order.customer == "c").all()
    assert_names(caught.value, "total", 2)
    with pytest.raises(InvalidItem) as caught:
        await engine.scan(Order).all()
    assert_names(caught.value, "total", 2)
    with pytest.raises(InvalidItem) as caught:
        await engine.load(Order.model_construct(customer="c", number=2))
    assert_names(caught.value, "total", 2)


async def test_every_read_refuses_an_attribute_of_the_wrong_type(engine: Engine) -> None:
    await engine.bind(Order)
    await put_raw(engine, Order, TEXT_TOTAL)
    with pytest.raises(InvalidItem) as caught:
        await engine.get(Order, customer="c", number=3)
    assert_names(caught.value, "total", 3)
    assert "not of DynamoDB type N" in str(caught.value)
    with pytest.raises(InvalidItem) as caught:
        await engine.scan(Order).all()
    assert_names(caught.value, "total", 3)


async def test_projections_read_only_what_they_ask_for(engine: Engine) -> None:
    await engine.bind(Order)
    await put_raw(engine, Order, NO_TOTAL)
    keys = await engine.query(Order, key=Order.customer == "c", projection="keys").one()
    assert (keys.customer, keys.number) == ("c", 2)
    status = await engine.scan(Order, projection=[Order.status]).one()
    assert status.status == "open"
    indexed = await engine.query(Order.by_status, key=Order.status == "open").one()
    assert indexed.number == 2
    with pytest.raises(InvalidItem, match="total"):  # a projection that names the field
        await engine.scan(Order, projection=["total"]).all()


async def test_validate_on_load_runs_the_models_validators(engine: Engine) -> None:
    await engine.bind(Shouting)
    await put_raw(engine, Shouting, {"id": {"S": "a"}, "name": {"S": "ada"}})
    await put_raw(engine, Shouting, {"id": {"S": "b"}, "name": {"S": ""}})
    loaded = await engine.get(Shouting, id="a")
    assert loaded is not None and (loaded.name, loaded.level) == ("ADA", 1)
    assert loaded.model_fields_set == {"id", "name"}
    loaded.level = 2
    await engine.save(loaded)  # the loaded object saves as a diff, like any other
    again = await engine.get(Shouting, id="a")
    assert again is not None and again.level == 2
    with pytest.raises(InvalidItem) as caught:
        await engine.get(Shouting, id="b")
    assert (caught.value.model, caught.value.field, caught.value.key) == (
        "Shouting",
        "name",
        {"id": "b"},
    )
    assert "a name is never empty" in str(caught.value)


@pytest.mark.moto_only  # transactions, and the stored item of a failed condition
async def test_transaction_reads_and_returned_items_are_strict(engine: Engine) -> None:
    await engine.bind(Order)
    await put_raw(engine, Order, NO_TOTAL)
    with pytest.raises(InvalidItem) as caught:
        async with engine.transaction("r") as tx:
            tx.load(Order.model_construct(customer="c", number=2))
    assert_names(caught.value, "total", 2)

    mine = Order(customer="c", number=2, status="paid", total=5, note=None, tags=set())
    with pytest.raises(ConstraintViolation) as violation:
        await engine.save(mine, condition=Order.status == "paid")
    with pytest.raises(InvalidItem) as caught:
        _ = violation.value.item  # the stored item does not fit the model: not None
    assert_names(caught.value, "total", 2)

    with pytest.raises(TransactionCanceled) as cancelled:
        async with engine.transaction() as tx:
            tx.save(mine, condition=Order.status == "paid")
    with pytest.raises(InvalidItem, match="total"):
        _ = cancelled.value.reasons[0].item


@pytest.mark.moto_only  # streams
async def test_stream_images_are_strict(engine: Engine) -> None:
    await engine.bind(StreamedOrder)
    await put_raw(engine, StreamedOrder, NO_TOTAL)
    async with engine.stream(StreamedOrder, position="trim_horizon") as stream:
        with pytest.raises(InvalidItem) as caught:
            await stream.next(timeout=10)
    assert (caught.value.model, caught.value.field) == ("StreamedOrder", "total")
    assert caught.value.key == {"customer": "c", "number": 2}
