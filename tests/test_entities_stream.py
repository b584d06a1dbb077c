"""Streams of a shared table: each record as its entity, and only the entities asked for.

moto only (dynalite has no streams).
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from _wire import raw_call
from adyn import Engine, HashKey, InvalidArgument, InvalidItem, Model, RangeKey, Unique
from test_stream_moto import take

pytestmark = pytest.mark.moto_only


class Store(Model):
    class Meta:
        table_name = "stream_store"
        discriminator = "kind"
        stream = "new_and_old"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]


class Buyer(Store):
    class Meta:
        keys = {"pk": "BUYER#{id}", "sk": "PROFILE"}

    id: str
    name: str


class Sale(Store):
    class Meta:
        keys = {"pk": "BUYER#{buyer}", "sk": "SALE#{n:04d}"}

    buyer: str
    n: int
    amount: int = 0


class Memo(Store):
    class Meta:
        keys = {"pk": "BUYER#{buyer}", "sk": "MEMO#{n}"}

    buyer: str
    n: int
    text: str = ""


class Badge(Store):
    """Unique codes: a guard item per code shares the table and its stream."""

    class Meta:
        keys = {"pk": "BADGE#{id}", "sk": "BADGE"}

    id: str
    code: Annotated[str, Unique()]


class Index(Model):
    """A keys-only stream: the entity of a record is not in it."""

    class Meta:
        table_name = "stream_index"
        discriminator = "kind"
        stream = "keys"

    pk: Annotated[str, HashKey()]


class Entry(Index):
    word: str = ""


def by_key_prefix(key: dict[str, Any]) -> str:
    return str(key["pk"]).split("#", 1)[0]


class Log(Model):
    class Meta:
        table_name = "stream_log"
        discriminator = by_key_prefix
        stream = "new"

    pk: Annotated[str, HashKey()]


class Hit(Log):
    class Meta:
        entity = "HIT"
        keys = {"pk": "HIT#{n}"}

    n: int


class Miss(Log):
    class Meta:
        entity = "MISS"
        keys = {"pk": "MISS#{n}"}

    n: int


async def write(engine: Engine, *objs: Model) -> None:
    for obj in objs:  # one at a time: records come in this order
        await engine.save(obj)


async def test_the_table_models_stream_yields_each_record_as_its_entity(engine: Engine) -> None:
    await engine.bind(Store)
    ada = Buyer(id="ada", name="Ada")
    sale = Sale(buyer="ada", n=1, amount=5)
    memo = Memo(buyer="ada", n=1, text="hi")
    await write(engine, ada, sale, memo)
    sale.amount = 7
    await engine.save(sale)
    await engine.delete(memo)
    async with engine.stream(Store, position="trim_horizon") as stream:
        records = await take(stream, 5)
        assert await stream.next(timeout=0.5) is None
    assert [(r.model, r.event) for r in records] == [
        (Buyer, "insert"),
        (Sale, "insert"),
        (Memo, "insert"),
        (Sale, "modify"),
        (Memo, "remove"),
    ]
    assert records[0].new == ada and records[1].new == Sale(buyer="ada", n=1, amount=5)
    modify = records[3]
    assert isinstance(modify.old, Sale) and isinstance(modify.new, Sale)
    assert (modify.old.amount, modify.new.amount) == (5, 7)
    assert records[4].old == memo and records[4].key == {"pk": "BUYER#ada", "sk": "MEMO#1"}


async def test_a_stream_of_some_entities_yields_only_theirs(engine: Engine) -> None:
    await engine.bind(Store)
    await write(
        engine,
        Memo(buyer="a", n=1),
        Buyer(id="a", name="A"),
        Memo(buyer="a", n=2),
        Sale(buyer="a", n=1),
        Memo(buyer="a", n=3),
    )
    async with engine.stream(Buyer, Sale, position="trim_horizon") as stream:
        records = await take(stream, 2)
        assert await stream.next(timeout=0.5) is None
        token = stream.token
    assert [r.model for r in records] == [Buyer, Sale]
    async with engine.stream(Sale, position="trim_horizon") as stream:
        (only,) = await take(stream, 1)
        assert await stream.next(timeout=0.5) is None
    assert only.new == Sale(buyer="a", n=1)
    # the records passed over count as read: the token resumes after all of them
    await write(engine, Memo(buyer="a", n=4), Sale(buyer="a", n=2))
    async with engine.stream(Buyer, Sale, position=token) as stream:
        (after,) = await take(stream, 1)
        assert await stream.next(timeout=0.5) is None
    assert after.new == Sale(buyer="a", n=2)


async def test_unknown_entities_in_a_stream_raise(engine: Engine) -> None:
    await engine.bind(Store)
    await raw_call(
        engine,
        "PutItem",
        {
            "TableName": engine.table_name(Store),
            "Item": {"pk": {"S": "X"}, "sk": {"S": "Y"}, "kind": {"S": "Ghost"}},
        },
    )
    async with engine.stream(Store, position="trim_horizon") as stream:
        with pytest.raises(InvalidItem, match="Ghost"):
            await stream.next(timeout=10)


async def test_a_callable_discriminator_routes_records_by_key(engine: Engine) -> None:
    await engine.bind(Log)
    await write(engine, Hit(n=1), Miss(n=1), Hit(n=2))
    async with engine.stream(Hit, position="trim_horizon") as stream:
        records = await take(stream, 2)
        assert await stream.next(timeout=0.5) is None
    assert [r.new for r in records] == [Hit(n=1), Hit(n=2)]
    assert all(r.model is Hit for r in records)


async def test_a_keys_only_stream_cannot_tell_entities_apart(engine: Engine) -> None:
    await engine.bind(Index)
    await engine.save(Entry(pk="w1", word="one"))
    with pytest.raises(InvalidArgument, match="keys only"):
        async with engine.stream(Entry, position="trim_horizon") as stream:
            await stream.next(timeout=1)
    async with engine.stream(Index, position="trim_horizon") as stream:
        (record,) = await take(stream, 1)
    assert record.model is Index and record.key == {"pk": "w1"} and record.new is None


async def test_guard_items_never_reach_a_shared_tables_stream(engine: Engine) -> None:
    await engine.bind(Store)
    await write(engine, Badge(id="b1", code="X"), Buyer(id="z", name="Z"))
    async with engine.stream(Store, position="trim_horizon") as stream:
        records = await take(stream, 2)
        assert await stream.next(timeout=0.5) is None
    assert [r.model for r in records] == [Badge, Buyer]
