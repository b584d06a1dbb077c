"""Key templates (`Meta.keys`): computed on every save, read back, queried by their fields.

The round trip (fields -> key -> fields) is a hypothesis property; the rest runs on every
backend.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _shop import Customer, LineItem, Order, Shop
from _wire import raw_call
from adyn import (
    Engine,
    GlobalIndex,
    HashKey,
    InvalidCondition,
    InvalidItem,
    InvalidModel,
    InvalidQuery,
    Model,
    RangeKey,
)
from adyn.schema import schema_of

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T0_TEXT = "2024-06-01T12:00:00.000000+00:00"  # as the codec stores it


class Tier(enum.Enum):
    GOLD = "gold"
    TIN = "tin"


class Reading(Model):
    """Every kind of component: text, a padded int, a UUID, a datetime, a decimal, an enum."""

    class Meta:
        table_name = "readings"
        keys = {
            "pk": "SITE#{site}#{tier}",
            "sk": "{at}#{seq:08d}#{sensor}",
            "gsi1pk": "V#{value}",
        }

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    gsi1pk: str | None = None
    site: str
    tier: Tier
    at: datetime
    seq: int
    sensor: UUID
    value: Decimal | None = None

    by_value = GlobalIndex(hash_key="gsi1pk", projection="all")


SCHEMA = schema_of(Reading)

texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=0, max_size=12)
aware = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4).filter(
    lambda d: abs(d) < Decimal("1e20")
)


@given(
    site=texts,
    tier=st.sampled_from(Tier),
    at=aware,
    seq=st.integers(-(10**9), 10**12),
    sensor=st.uuids(),
    value=decimals,
)
def test_template_components_round_trip(
    site: str, tier: Tier, at: datetime, seq: int, sensor: UUID, value: Decimal
) -> None:
    fields = {"site": site, "tier": tier, "at": at, "seq": seq, "sensor": sensor, "value": value}
    keys: dict[str, str] = {}
    for name, template in SCHEMA.templates.items():
        try:
            key = template.render(fields)
        except InvalidItem as exc:
            # refused only when a component holds the text that separates it from the next
            assert exc.field == "site" and "#" in site, exc
            continue
        assert key is not None
        keys[template.attr.wire] = key
        parsed = template.parse(key)
        assert parsed == {c.name: fields[c.name] for c in template.components}, name
    if len(keys) == len(SCHEMA.templates):  # and what a save stores is those same keys
        item = SCHEMA.encode_item(Reading(**fields))
        assert {wire: item[wire] for wire in keys} == {w: {"S": k} for w, k in keys.items()}
    else:
        with pytest.raises(InvalidItem):
            SCHEMA.encode_item(Reading(**fields))


def test_rendered_text_is_the_codecs_own() -> None:
    sensor = uuid4()
    obj = Reading(site="oslo", tier=Tier.GOLD, at=T0, seq=42, sensor=sensor, value=Decimal("1.50"))
    item = SCHEMA.encode_item(obj)
    assert item["pk"] == {"S": "SITE#oslo#gold"}
    assert item["sk"] == {"S": f"2024-06-01T12:00:00.000000+00:00#00000042#{sensor}"}
    assert item["gsi1pk"] == {"S": "V#1.50"}
    assert (obj.pk, obj.sk) == ("SITE#oslo#gold", item["sk"]["S"])  # the object holds them too


def test_templates_are_checked_at_class_creation() -> None:
    class Base(Model):
        class Meta:
            abstract = True

        pk: Annotated[str, HashKey()]
        sk: Annotated[int, RangeKey()] = 0
        note: str = ""
        tags: list[str] = []

    def define(keys: dict[str, str]) -> None:
        meta = type("Meta", (), {"keys": keys, "__qualname__": "Bad2.Meta", "__module__": __name__})
        namespace = {"__module__": __name__, "__qualname__": "Bad2", "Meta": meta}
        type(Model)("Bad2", (Base,), namespace)

    cases = [
        ({"pk": "P#{nope}"}, "nope", "names no field"),
        ({"note": "N#{pk}"}, "note", "not a table or index key"),
        ({"other": "x"}, "other", "no key attribute"),
        ({"sk": "S#{note}"}, "sk", "stored as S"),
        ({"pk": "{note}{note}"}, "pk", "no text between"),
        ({"pk": "P#{note!r}"}, "pk", "!r"),
        ({"pk": "P#{tags}"}, "tags", "stored as L"),
    ]
    for keys, field, rule in cases:
        with pytest.raises(InvalidModel) as info:
            define(keys)
        assert info.value.model == "Bad2" and info.value.field == field, keys
        assert rule in str(info.value), (keys, str(info.value))


def test_a_templated_attribute_set_by_hand_is_refused() -> None:
    schema = schema_of(Order)
    placed = Order(id=uuid4(), customer_id=uuid4(), placed_at=T0, pk="CUSTOMER#someone")
    with pytest.raises(InvalidItem) as info:
        schema.encode_item(placed)
    assert info.value.field == "pk" and "by hand" in str(info.value)
    placed.pk = None  # type: ignore[assignment]
    placed.gsi1pk = "STATUS#nonsense"
    with pytest.raises(InvalidItem, match="gsi1pk"):
        schema.encode_item(placed)


# ---------------------------------------------------------------- on a server


def raw_item_request(engine: Engine, key: dict[str, str]) -> dict[str, Any]:
    return {
        "TableName": engine.table_name(Shop),
        "Key": {k: {"S": v} for k, v in key.items()},
        "ConsistentRead": True,
    }


async def stored(engine: Engine, pk: str, sk: str) -> dict[str, Any]:
    response = await raw_call(engine, "GetItem", raw_item_request(engine, {"pk": pk, "sk": sk}))
    item: dict[str, Any] = response.get("Item") or {}
    return item


async def test_saves_compute_every_template_and_get_takes_component_fields(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    ada = Customer(id=uuid4(), email="ada@example.com", name="Ada")
    placed = Order(id=uuid4(), customer_id=ada.id, placed_at=T0, total=Decimal("12.5"))
    await engine.save(ada, placed)
    item = await stored(engine, f"CUSTOMER#{ada.id}", f"ORDER#{T0_TEXT}#{placed.id}")
    assert item["gsi1pk"] == {"S": "STATUS#open"} and item["gsi1sk"] == {"S": T0_TEXT}
    got = await engine.get(Order, customer_id=ada.id, placed_at=T0, id=placed.id, consistent=True)
    assert got == placed
    assert await engine.get(Order, pk=placed.pk, sk=placed.sk, consistent=True) == placed
    assert await engine.get(Customer, id=ada.id, consistent=True) == ada
    with pytest.raises(InvalidItem) as info:
        await engine.get(Order, customer_id=ada.id, id=placed.id)
    assert info.value.field == "placed_at" and "missing" in str(info.value)
    with pytest.raises(InvalidItem, match="total"):
        await engine.get(Order, customer_id=ada.id, placed_at=T0, id=placed.id, total=1)
    async with engine.batch() as batch:  # batch puts compute them too
        batch.save(LineItem(order_id=placed.id, n=7, sku="book"))
    line = await engine.get(LineItem, order_id=placed.id, n=7, consistent=True)
    assert line is not None and line.sk == "LINE#0007" and line.sku == "book"


async def test_a_diff_save_rewrites_every_template_a_changed_field_feeds(
    engine: Engine,
) -> None:
    await engine.bind(Shop)
    cid = uuid4()
    placed = Order(id=uuid4(), customer_id=cid, placed_at=T0)
    await engine.save(placed)
    loaded = await engine.get(Order, customer_id=cid, placed_at=T0, id=placed.id, consistent=True)
    assert loaded is not None
    loaded.status = "paid"
    await engine.save(loaded)
    assert (await stored(engine, loaded.pk, loaded.sk))["gsi1pk"] == {"S": "STATUS#paid"}
    paid = await engine.query(Order.by_gsi1, key={"status": "paid"}).all()
    assert [o.id for o in paid] == [placed.id]
    assert await engine.query(Order.by_gsi1, key={"status": "open"}).all() == []
    # a None component takes the item out of the (sparse) index
    loaded.status = None
    await engine.save(loaded)
    item = await stored(engine, loaded.pk, loaded.sk)
    assert "gsi1pk" not in item and "gsi1sk" in item
    assert await engine.query(Order.by_gsi1, key={"status": "paid"}).all() == []
    # a key-form update of a component rewrites the index key in the same write
    await engine.update(
        Order, {"customer_id": cid, "placed_at": T0, "id": placed.id}, [Order.status.set("shipped")]
    )
    assert (await stored(engine, loaded.pk, loaded.sk))["gsi1pk"] == {"S": "STATUS#shipped"}
    await engine.update(Order, {"pk": loaded.pk, "sk": loaded.sk}, [Order.status.remove()])
    assert "gsi1pk" not in await stored(engine, loaded.pk, loaded.sk)


async def test_changing_a_key_component_writes_a_whole_new_item(engine: Engine) -> None:
    await engine.bind(Shop)
    ada = Customer(id=uuid4(), email="ada@example.com", name="Ada")
    await engine.save(ada)
    loaded = await engine.get(Customer, id=ada.id, consistent=True)
    assert loaded is not None
    loaded.id = uuid4()
    await engine.save(loaded)
    moved = await engine.get(Customer, id=loaded.id, consistent=True)
    assert moved is not None and (moved.email, moved.name) == ("ada@example.com", "Ada")
    assert await engine.get(Customer, id=ada.id, consistent=True) == ada  # the old one stays


async def test_updates_cannot_break_a_template(engine: Engine) -> None:
    await engine.bind(Shop)
    key = {"customer_id": uuid4(), "placed_at": T0, "id": uuid4()}
    with pytest.raises(InvalidCondition, match="part of the key pk"):
        await engine.update(Order, key, [Order.customer_id.set(uuid4())])
    with pytest.raises(InvalidItem, match="computed from the key template"):
        await engine.update(Order, key, [Order.gsi1pk.set("STATUS#x")])

    class Tagged(Shop):
        class Meta:
            keys = {"pk": "T#{id}", "sk": "T", "gsi1pk": "{status}#{region}"}

        id: str
        status: str = "new"
        region: str = "eu"

    with pytest.raises(InvalidCondition, match="also uses region"):
        await engine.update(Tagged, {"id": "a"}, [Tagged.status.set("old")])
    await engine.bind(Tagged)
    await engine.update(Tagged, {"id": "a"}, [Tagged.status.set("old"), Tagged.region.set("us")])
    assert (await stored(engine, "T#a", "T"))["gsi1pk"] == {"S": "old#us"}


async def test_query_by_component_fields_matches_a_prefix(engine: Engine) -> None:
    await engine.bind(Shop)
    ada = Customer(id=uuid4(), email="ada@example.com", name="Ada")
    orders = [
        Order(id=uuid4(), customer_id=ada.id, placed_at=T0 + timedelta(days=d)) for d in range(3)
    ]
    await engine.save(ada, *orders)
    everything = await engine.query(Order, key={"customer_id": ada.id}, consistent=True).all()
    assert everything == orders
    one_day = await engine.query(
        Order, key={"customer_id": ada.id, "placed_at": orders[1].placed_at}
    ).all()
    assert one_day == [orders[1]]
    exact = await engine.query(
        Order, key={"customer_id": ada.id, "placed_at": T0, "id": orders[0].id}
    ).all()
    assert exact == [orders[0]]
    # the request the dict became: begins_with the text up to the first missing field
    query = engine.query(Order, key={"customer_id": ada.id, "placed_at": T0})
    request = query._request
    assert "begins_with" in request["KeyConditionExpression"]
    assert {"S": f"ORDER#{T0_TEXT}#"} in request["ExpressionAttributeValues"].values()
    # a Condition still works
    assert await engine.query(Order, key=Order.pk == f"CUSTOMER#{ada.id}").all() == orders
    # indexes too: the customer by email, through the overloaded GSI
    assert await engine.query(Customer.by_gsi1, key={"email": "ada@example.com"}).all() == [ada]
    with pytest.raises(InvalidQuery, match="needs customer_id"):
        engine.query(Order, key={"placed_at": T0})
    with pytest.raises(InvalidQuery, match="placed_at, before it"):
        engine.query(Order, key={"customer_id": ada.id, "id": orders[0].id})
    with pytest.raises(InvalidQuery, match="total"):
        engine.query(Order, key={"customer_id": ada.id, "total": 3})


def test_a_declared_default_of_a_templated_attribute_is_not_a_value_set_by_hand() -> None:
    # for type checkers without adyn's mypy plugin (pyright), which ask for every field
    class Table(Model):
        class Meta:
            table_name = "defaults"
            discriminator = "type"

        pk: Annotated[str, HashKey()] = ""
        sk: Annotated[str, RangeKey()] = ""

    class Thing(Table):
        class Meta:
            keys = {"pk": "THING#{id}", "sk": "THING"}

        id: str

    item = schema_of(Thing).encode_item(Thing(id="t1"))
    assert (item["pk"], item["sk"], item["type"]) == (
        {"S": "THING#t1"},
        {"S": "THING"},
        {"S": "Thing"},
    )
    with pytest.raises(InvalidItem, match="by hand"):
        schema_of(Thing).encode_item(Thing(id="t1", pk="OTHER"))


def test_a_new_object_has_its_keys_at_once_and_follows_its_fields() -> None:
    placed = Order(id=uuid4(), customer_id=uuid4(), placed_at=T0)
    assert placed.pk == f"CUSTOMER#{placed.customer_id}" and placed.gsi1pk == "STATUS#open"
    placed.status = "paid"  # not set by hand: the key follows the field on save
    item = schema_of(Order).encode_item(placed)
    assert item["gsi1pk"] == {"S": "STATUS#paid"} and placed.gsi1pk == "STATUS#paid"
    placed.status = None
    assert "gsi1pk" not in schema_of(Order).encode_item(placed) and placed.gsi1pk is None
