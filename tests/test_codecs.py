"""Codecs: every row of the type table round-trips; DynamoDB's rules are checked before sending."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from orjson import dumps
from pydantic import BaseModel

from _models import Address, Color, Everything, Level
from adyn import HashKey, InvalidItem, Model
from adyn.codecs import number_text
from adyn.schema import schema_of

SCHEMA = schema_of(Everything)

aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)
)


def _significant(d: Decimal) -> int:
    return len("".join(map(str, d.as_tuple().digits)).strip("0"))


decimals = (
    st.decimals(allow_nan=False, allow_infinity=False, places=None)
    .filter(lambda d: d.is_zero() or -130 <= d.adjusted() <= 125)
    .filter(lambda d: _significant(d) <= 38)
)
text = st.text(max_size=30)
names = st.text(min_size=1, max_size=10)

everything = st.builds(
    Everything,
    pk=st.text(min_size=1, max_size=20),
    sk=st.integers(-(10**37), 10**37),
    s=st.none() | text,
    i=st.none() | st.integers(-(10**37), 10**37),
    f=st.none()
    | st.floats(min_value=-1e125, max_value=1e125).filter(lambda x: x == 0 or abs(x) > 1e-129),
    d=st.none() | decimals,
    b=st.none() | st.booleans(),
    raw=st.none() | st.binary(max_size=40),
    u=st.none() | st.uuids(),
    when=st.none() | aware,
    stamp=st.none() | aware.map(lambda d: d.replace(microsecond=0)),
    day=st.none() | st.dates(),
    color=st.none() | st.sampled_from(Color),
    level=st.none() | st.sampled_from(Level),
    mode=st.none() | st.sampled_from(["a", "b"]),
    ss=st.sets(text, max_size=4),
    ns=st.sets(decimals, max_size=4),
    bs=st.sets(st.binary(min_size=1, max_size=10), max_size=4),
    items=st.lists(st.integers(-1000, 1000), max_size=5),
    pair=st.lists(text, max_size=3).map(tuple),
    mapping=st.dictionaries(names, st.integers(-5, 5), max_size=3),
    address=st.none() | st.builds(Address, city=text, zip=st.none() | text),
    anything=st.none()
    | st.dictionaries(
        names,
        st.none() | st.booleans() | st.integers(-100, 100) | text | st.lists(text, max_size=2),
    ),
)


def _through_json(item: dict[str, object]) -> dict[str, object]:
    """The item as the fast path reads it back: JSON with base64 binaries."""
    return orjson.loads(dumps(item))  # type: ignore[no-any-return]


def _same_numbers(a: Decimal | None, b: Decimal | None) -> bool:
    return a == b


@settings(max_examples=100, deadline=None)
@given(everything)
def test_every_type_round_trips_through_the_codec_and_json(obj: Everything) -> None:
    item = SCHEMA.encode_item(obj)
    for loaded in (SCHEMA.decode_item(item), SCHEMA.decode_item(_through_json(item))):
        assert loaded == obj


def test_empty_sets_are_stored_as_no_attribute_and_load_as_empty_sets() -> None:
    obj = Everything(pk="x", ss=set(), ns=set())
    item = SCHEMA.encode_item(obj)
    assert "ss" not in item and "ns" not in item
    loaded = SCHEMA.decode_item(item)
    assert loaded.ss == set() and loaded.ns == set() and loaded.bs == set()


def test_binary_is_base64_encoded_exactly_once_on_the_wire() -> None:
    raw = b"\x00\xffbinary"
    wire = orjson.loads(dumps(SCHEMA.encode_item(Everything(pk="x", raw=raw))))
    assert wire["raw"] == {"B": base64.b64encode(raw).decode()}
    assert base64.b64decode(wire["raw"]["B"]) == raw


@settings(max_examples=100, deadline=None)
@given(st.lists(aware, min_size=2, max_size=5))
def test_datetimes_sort_lexically_in_time_order(values: list[datetime]) -> None:
    encoded = [SCHEMA.fields["when"].codec.encode(v)["S"] for v in values]  # type: ignore[index]
    assert sorted(encoded) == [
        SCHEMA.fields["when"].codec.encode(v)["S"]  # type: ignore[index]
        for v in sorted(values)
    ]


def test_datetimes_in_other_zones_are_stored_in_utc() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    item = SCHEMA.encode_item(Everything(pk="x", when=when))
    assert item["when"] == {"S": "2024-05-01T10:00:00.000000+00:00"}
    assert SCHEMA.decode_item(item).when == when


def test_timestamps_are_epoch_seconds() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    item = SCHEMA.encode_item(Everything(pk="x", stamp=when))
    assert item["stamp"] == {"N": str(int(when.timestamp()))}


def test_naive_datetime_is_rejected_naming_model_and_field() -> None:
    obj = Everything.model_construct(pk="x", when=datetime(2024, 1, 1))
    with pytest.raises(InvalidItem) as info:
        SCHEMA.encode_item(obj)
    assert info.value.model == "Everything" and info.value.field == "when"
    assert "naive" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1" * 39),
        Decimal("1E+126"),
        Decimal("1E-131"),
        Decimal("NaN"),
        Decimal("Infinity"),
        10**40 + 1,
        float("nan"),
    ],
)
def test_numbers_dynamodb_cannot_store_are_rejected(value: object) -> None:
    field = "d" if isinstance(value, Decimal) else ("f" if isinstance(value, float) else "i")
    obj = Everything.model_construct(pk="x", **{field: value})
    with pytest.raises(InvalidItem) as info:
        SCHEMA.encode_item(obj)
    assert info.value.field == field


@pytest.mark.parametrize(
    "value",
    [
        Decimal("9" * 38),
        Decimal("9.9999999999999999999999999999999999999E+125"),
        Decimal("1E-130"),
        10**40,
        -(10**37),
    ],
)
def test_numbers_at_dynamodb_limits_are_kept_exactly(value: Decimal | int) -> None:
    text = number_text(value)
    assert Decimal(text) == value


def test_a_mixed_set_is_rejected() -> None:
    obj = Everything.model_construct(pk="x", ss={"a", 1})
    with pytest.raises(InvalidItem, match="mixed set") as info:
        SCHEMA.encode_item(obj)
    assert info.value.field == "ss"


@pytest.mark.parametrize("value", ["not a number", 1.5, 2.0, Decimal("3"), True])
def test_wrong_types_assigned_after_validation_are_caught_before_sending(value: object) -> None:
    obj = Everything(pk="x")
    obj.i = value  # type: ignore[assignment]
    with pytest.raises(InvalidItem, match="expected int") as info:
        SCHEMA.encode_item(obj)
    assert (info.value.model, info.value.field) == ("Everything", "i")
    obj.i = None
    obj.items = [1, value]  # type: ignore[list-item]
    with pytest.raises(InvalidItem, match="expected int") as info:
        SCHEMA.encode_item(obj)
    assert info.value.field == "items"


def test_empty_and_missing_keys_are_rejected() -> None:
    with pytest.raises(InvalidItem, match="empty") as info:
        SCHEMA.key_of(Everything.model_construct(pk=""))
    assert info.value.field == "pk"
    with pytest.raises(InvalidItem, match="missing"):
        SCHEMA.key_of(Everything.model_construct(sk=1))


def test_empty_map_keys_are_rejected() -> None:
    with pytest.raises(InvalidItem, match="map keys cannot be empty") as info:
        SCHEMA.encode_item(Everything(pk="x", mapping={"": 1}))
    assert info.value.field == "mapping"


def test_enum_literal_and_uuid_values() -> None:
    u = UUID(int=7)
    item = SCHEMA.encode_item(
        Everything(pk="x", color=Color.BLUE, level=Level.HIGH, mode="b", u=u, day=date(2020, 2, 29))
    )
    assert item["color"] == {"S": "blue"} and item["level"] == {"N": "2"}
    assert item["u"] == {"S": str(u)} and item["day"] == {"S": "2020-02-29"}
    bad = Everything.model_construct(pk="x", mode="c")
    with pytest.raises(InvalidItem, match="not one of"):
        SCHEMA.encode_item(bad)


@settings(max_examples=100, deadline=None)
@given(everything, st.data())
def test_the_generated_decoder_agrees_with_the_codecs(obj: Everything, data: st.DataObject) -> None:
    item = _through_json(SCHEMA.encode_item(obj))
    # legal wire forms that adyn never writes but other writers may
    if "i" in item and data.draw(st.booleans()):
        item["i"] = {"N": item["i"]["N"] + "0E-1"}  # type: ignore[index]  # 5 as 50E-1
    if data.draw(st.booleans()):
        item["s"] = {"NULL": True}
    if "items" in item and data.draw(st.booleans()):
        item["items"]["L"].append({"NULL": True})  # type: ignore[index]
    careful = SCHEMA._careful_values(item)
    try:
        fast = SCHEMA._values_of(item)
    except Exception:
        fast = None  # the generated code gives up; decode_item then uses the codecs
    if fast is not None:
        assert fast == careful
    loaded = SCHEMA.decode_item(item)
    assert {k: getattr(loaded, k) for k in careful} == careful


class Node(BaseModel):
    name: str
    tags: set[str]
    child: Node | None = None
    kids: list[Node] = []


class Tree(Model):
    class Meta:
        table_name = "trees"

    id: Annotated[str, HashKey()]
    root: Node


def test_recursive_and_nested_models_round_trip_with_empty_sets() -> None:
    schema = schema_of(Tree)
    leaf = Node(name="leaf", tags=set())
    tree = Tree(
        id="t",
        root=Node(
            name="root", tags={"a"}, child=Node(name="c", tags=set(), child=leaf), kids=[leaf]
        ),
    )
    item = schema.encode_item(tree)
    assert "tags" not in item["root"]["M"]["kids"]["L"][0]["M"]  # type: ignore[index]
    for wire in (item, _through_json(item)):
        loaded = schema.decode_item(wire)
        assert loaded == tree
        assert loaded.root.kids[0].tags == set()


lone_surrogate = st.characters(categories=["Cs"])
with_surrogate = st.tuples(text, lone_surrogate, text).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    bad=with_surrogate,
    where=st.sampled_from(["pk", "s", "ss", "pair", "mapping", "address", "anything", "key"]),
)
def test_a_lone_surrogate_anywhere_is_refused_naming_the_field(bad: str, where: str) -> None:
    obj = Everything(pk="x")
    if where == "pk":
        obj.pk = bad
    elif where == "s":
        obj.s = bad
    elif where == "ss":
        obj.ss = {"ok", bad}
    elif where == "pair":
        obj.pair = ("ok", bad)
    elif where == "mapping":
        obj.mapping = {bad: 1}
    elif where == "address":
        obj.address = Address(city=bad)
    elif where == "anything":
        obj.anything = {"nested": [bad]}
    else:
        obj.anything = {bad: 1}
        where = "anything"
    with pytest.raises(InvalidItem, match="lone surrogate") as info:
        SCHEMA.encode_item(obj)
    assert (info.value.model, info.value.field) == ("Everything", where)


@settings(max_examples=100, deadline=None)
@given(value=st.text(max_size=30), key=names)
def test_any_valid_text_is_encoded_and_sendable(value: str, key: str) -> None:
    obj = Everything(pk="x", s=value, ss={value} if value else set(), mapping={key: 1})
    item = SCHEMA.encode_item(obj)
    assert SCHEMA.decode_item(_through_json(item)) == obj
