"""The generated whole-item decoder gives what the careful path gives, for any stored item.

`decode_item` builds an object from an item holding every field in one generated function, and
sends any other item (an absent attribute, a NULL, another DynamoDB type, a rare number form,
bad base64...) through the careful path. Either way the user sees the same object: the same
`__dict__` (values, types and order), the same `model_fields_set`, the same change-tracking
state, or the same error. The decoder is compiled (adyn._cdecode, where the extension is built)
or generated Python (ADYN_PURE_PYTHON=1, or no C compiler at install): every comparison here
holds for both.
"""

from __future__ import annotations

import copy
import gc
import inspect
import os
import pickle
import subprocess
import sys
import textwrap
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, PrivateAttr

from _models import Everything
from _shop import Customer, Order
from adyn import Codec, HashKey, InvalidItem, Model, RangeKey, _decoder
from adyn._tracking import expand
from adyn._writes import plan_save
from adyn.schema import ModelSchema, schema_of
from test_codecs import everything


class Inner(BaseModel):
    street: str
    n: int


class Deep(BaseModel):
    marks: list[int]
    sub: Inner


class Page(Model):
    """The benchmark's shape: every common type, a nested model, private state."""

    class Meta:
        table_name = "decode_whole"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    name: str
    count: int
    price: float
    active: bool
    tags: set[str]
    nums: set[int]
    scores: list[int]
    pairs: tuple[str, ...]
    inner: Inner
    deep: Deep
    attrs: dict[str, str]
    blob: bytes
    created: datetime
    note: str | None = None
    _seen: str = PrivateAttr(default="no")


PAGE = Page(
    pk="p",
    sk="s",
    name="n",
    count=3,
    price=1.5,
    active=True,
    tags={"a", "b"},
    nums={1, 2},
    scores=[1, 2, 3],
    pairs=("x", "y"),
    inner=Inner(street="st", n=4),
    deep=Deep(marks=[1, 2], sub=Inner(street="a", n=1)),
    attrs={"k": "v"},
    blob=b"\x00\x01",
    created=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    note="hi",
)

# What may stand in for an attribute value: other types, NULL, rare and bad forms.
ODD: list[Any] = [
    {"NULL": True},
    {"S": "x"},
    {"S": ""},
    {"S": 5},
    {"N": "1E+2"},
    {"N": "2.50"},
    {"N": "x"},
    {"N": 7},
    {"BOOL": True},
    {"B": "AAE="},
    {"B": "!!"},
    {"SS": ["a"]},
    {"NS": ["1", "1E+1"]},
    {"L": [{"N": "1"}, {"NULL": True}]},
    {"L": [{"S": "a"}]},
    {"M": {}},
    {"M": {"street": {"S": "s"}}},
    {"M": {"city": {"S": "c"}, "zip": {"NULL": True}}},
    {"S": "2024-01-01T00:00:00"},
    {"S": "2024-01-01T00:00:00+02:00"},
    {"S": "not a date"},
    {"S": "00000000-0000-0000-0000-000000000007"},
    {},
    {"S": "a", "N": "1"},
    None,
    "S",
    7,
]
odd_values = st.sampled_from(ODD)


def _outcome(decode: Any, item: Any) -> Any:
    try:
        return decode(item)
    except Exception as exc:  # the same error either way is the point
        return exc


def _describe(value: Any) -> Any:
    """Everything a user can see of a loaded value, nested models included."""
    if isinstance(value, BaseModel):
        return (
            type(value),
            [(k, _describe(v)) for k, v in value.__dict__.items()],
            sorted(value.__pydantic_fields_set__),
            value.__pydantic_extra__,
            value.__pydantic_private__,
        )
    if isinstance(value, list | tuple):
        return (type(value), [_describe(v) for v in value])
    if isinstance(value, dict):
        return (dict, [(k, _describe(v)) for k, v in value.items()])
    if isinstance(value, set | frozenset):
        return (type(value), sorted(map(repr, value)))
    return (type(value), repr(value))


_compiled: dict[tuple[int, bool], Any] = {}


def decoder_of(schema: ModelSchema, native: bool) -> Any:
    """The schema's whole-item decoder, compiled (`native`) or generated, as the schema makes
    it (falling back to its careful path)."""
    key = (id(schema), native)
    if key not in _compiled:
        _compiled[key] = schema.compile_whole_decoder(native=native)
    return _compiled[key]


def assert_same(schema: ModelSchema, item: Any) -> None:
    """The schema's decoder, and both kinds of whole-item decoder, give what its careful path
    gives `item`."""
    for decode in (schema.decode_item, decoder_of(schema, True), decoder_of(schema, False)):
        _assert_same(schema, decode, item)


def _assert_same(schema: ModelSchema, decode: Any, item: Any) -> None:
    fast = _outcome(decode, item)
    careful = _outcome(schema._decode_carefully, item)
    if isinstance(careful, Exception):
        assert type(fast) is type(careful) and str(fast) == str(careful)
        if isinstance(careful, InvalidItem):
            assert isinstance(fast, InvalidItem)
            assert (fast.model, fast.field, fast.key) == (careful.model, careful.field, careful.key)
        return
    assert not isinstance(fast, Exception), fast
    assert _describe(fast) == _describe(careful)
    count = len(schema.fields)
    fast_state = expand(fast.__adyn_state__, schema.frozen_slots, count)
    careful_state = expand(careful.__adyn_state__, schema.frozen_slots, count)
    assert _describe(fast_state) == _describe(careful_state)
    assert type(fast.__adyn_state__) is tuple and len(fast.__adyn_state__) == len(
        careful.__adyn_state__
    )


def _wire(schema: ModelSchema, obj: Any) -> dict[str, Any]:
    """The item as a transport gives it: through JSON."""
    return orjson.loads(orjson.dumps(schema.encode_item(obj)))  # type: ignore[no-any-return]


def _spoil(item: dict[str, Any], data: st.DataObject, names: list[str]) -> None:
    for _ in range(data.draw(st.integers(0, 3))):
        name = data.draw(st.sampled_from(names))
        how = data.draw(st.sampled_from(["drop", "replace", "nested"]))
        if how == "drop":
            item.pop(name, None)
        elif how == "replace":
            item[name] = data.draw(odd_values)
        elif isinstance(item.get(name), dict) and isinstance(item[name].get("M"), dict):
            inner = item[name]["M"]
            key = data.draw(st.sampled_from([*inner, "street", "zip"]))
            inner[key] = data.draw(odd_values)


@settings(max_examples=300, deadline=None)
@given(everything, st.data())
def test_any_item_of_every_type_loads_as_the_careful_path_loads_it(
    obj: Everything, data: st.DataObject
) -> None:
    schema = schema_of(Everything)
    item = _wire(schema, obj)
    assert_same(schema, item)
    _spoil(item, data, [*(s.wire for s in schema.fields.values()), "extra"])
    assert_same(schema, item)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_item_of_a_whole_model_loads_as_the_careful_path_loads_it(
    data: st.DataObject,
) -> None:
    schema = schema_of(Page)
    obj = PAGE.model_copy(
        update={
            "name": data.draw(st.text(max_size=5)),
            "count": data.draw(st.integers(-(10**20), 10**20)),
            "tags": data.draw(st.sets(st.text(min_size=1, max_size=3), min_size=1, max_size=4)),
            "scores": data.draw(st.lists(st.integers(-5, 5), max_size=4)),
            "attrs": data.draw(st.dictionaries(st.text(min_size=1, max_size=3), st.text())),
            "blob": data.draw(st.binary(min_size=1, max_size=8)),
            "created": data.draw(st.datetimes(timezones=st.just(UTC))),
        }
    )
    item = _wire(schema, obj)
    assert_same(schema, item)
    _spoil(item, data, [*(s.wire for s in schema.fields.values())])
    assert_same(schema, item)


def test_a_whole_item_takes_the_generated_path_and_keeps_private_state_apart() -> None:
    schema = schema_of(Page)
    item = _wire(schema, PAGE)
    a, b = schema.decode_item(item), schema.decode_item(item)
    assert a == PAGE and a.model_fields_set == set(Page.model_fields)
    assert a.__pydantic_private__ == {"_seen": "no"}
    a._seen = "yes"
    a.model_fields_set.add("extra")
    assert b._seen == "no" and "extra" not in b.model_fields_set  # nothing shared
    assert a.inner.model_fields_set == {"street", "n"}
    assert plan_save(schema, "t", a).request == {}  # nothing changed since the load
    a.tags.add("c")
    a.inner.n = 5
    a.deep.marks.append(3)
    names = plan_save(schema, "t", a).request["ExpressionAttributeNames"].values()
    assert sorted(names) == ["deep", "inner", "tags"]


def test_a_loaded_objects_fields_set_is_a_set_of_its_own_wherever_pydantic_reads_it() -> None:
    schema = schema_of(Page)
    item = _wire(schema, PAGE)
    loaded = schema.decode_page([item] * 70)
    everything = set(Page.model_fields)
    a, b, c, d = loaded[:4]
    assert type(a.model_fields_set) is set and a.model_fields_set == everything
    assert a.model_fields_set is a.model_fields_set  # made once, then kept
    a.model_fields_set.discard("note")
    assert b.model_fields_set == everything and "note" not in a.model_fields_set
    assert "note" not in a.model_dump(exclude_unset=True)
    assert b.model_dump(exclude_unset=True) == b.model_dump()  # pydantic-core reads it too
    c.note = "new"  # pydantic's assignment adds to the set
    assert c.model_fields_set == everything
    for copied in (copy.copy(d), copy.deepcopy(d), pickle.loads(pickle.dumps(d)), d.model_copy()):
        assert type(copied.model_fields_set) is set and copied.model_fields_set == everything
        copied.model_fields_set.clear()
        assert d.model_fields_set == everything
    built = Page(**PAGE.model_dump(exclude={"note"}))  # constructed objects: as pydantic sets it
    assert built.model_fields_set == everything - {"note"}
    built.note = "x"
    assert built.model_fields_set == everything


def test_a_loaded_objects_dict_is_a_dict_of_its_own() -> None:
    schema = schema_of(Page)
    item = _wire(schema, PAGE)
    a, b = schema.decode_page([item] * 70)[:2]
    assert type(a.__dict__) is dict and a.__dict__ == PAGE.__dict__
    assert list(a.__dict__) == list(Page.model_fields)
    a.name = "changed"
    a.__dict__["added"] = 1
    del a.__dict__["note"]
    a.__dict__["note"] = "back"  # a dict's order: last
    assert list(a.__dict__)[-2:] == ["added", "note"] and a.name == "changed"
    c = schema.decode_item(item)
    for other in (b, c):
        assert other.__dict__ == PAGE.__dict__ and list(other.__dict__) == list(Page.model_fields)
    assert c == PAGE and c.model_dump() == PAGE.model_dump()


def test_the_test_environment_decodes_with_the_compiled_decoder() -> None:
    # the project's install builds adyn._cdecode (hatch_build.py); a silent build failure would
    # leave every test here on the generated decoder alone
    assert _decoder._cdecode is not None
    if os.environ.get("ADYN_PURE_PYTHON", "") not in ("", "0"):  # asked for the Python one
        assert not _decoder.NATIVE and inspect.isfunction(schema_of(Page)._decode_whole)
    else:
        assert _decoder.NATIVE
        assert type(schema_of(Page)._decode_whole) is _decoder._cdecode.Decoder


def test_a_compiled_decoder_of_another_plan_version_is_left_unused() -> None:
    # an editable install can leave an older build beside the sources: adyn then decodes with
    # the generated functions instead of handing that build plans it does not read
    script = textwrap.dedent(
        """
        import sys, types
        stale = types.ModuleType("adyn._cdecode")
        stale.VERSION = 0
        sys.modules["adyn._cdecode"] = stale
        from typing import Annotated
        from adyn import HashKey, Model, _decoder
        from adyn.schema import schema_of

        class Thing(Model):
            class Meta:
                table_name = "things"

            pk: Annotated[str, HashKey()]
            n: int

        thing = schema_of(Thing).decode_item({"pk": {"S": "a"}, "n": {"N": "3"}})
        print(_decoder.NATIVE, _decoder._cdecode, thing.n)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("ADYN_PURE_PYTHON", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "None", "3"]


def _generated_only(schema: ModelSchema, native: bool) -> Any:
    """The schema's whole-item decoder (compiled or generated) with no way back to the careful
    path."""

    def careful(item: Any) -> Any:
        raise AssertionError("the careful path was taken")

    return schema.compile_whole_decoder(careful, native=native)


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "generated"])
@settings(max_examples=200, deadline=None)
@given(everything, st.data())
def test_items_lacking_fields_with_defaults_take_the_generated_path_and_load_the_same(
    native: bool, obj: Everything, data: st.DataObject
) -> None:
    schema = schema_of(Everything)
    if obj.address is not None and obj.address.zip is None:  # a nested model lacking a member:
        obj.address.zip = "z"  # built by the careful path
    item = _wire(schema, obj)
    optional = [s.wire for s in schema.fields.values() if s.missing is not None and s.wire in item]
    for wire in data.draw(st.lists(st.sampled_from(optional), unique=True)) if optional else []:
        del item[wire]
    fast, careful = _generated_only(schema, native)(item), schema._decode_carefully(item)
    assert _describe(fast) == _describe(careful)
    assert list(fast.__dict__) == list(careful.__dict__)  # defaults last, as careful puts them
    assert fast.__adyn_state__ == careful.__adyn_state__
    assert type(fast.model_fields_set) is set and fast.model_fields_set == set(item) & set(
        schema.fields
    )


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "generated"])
def test_an_item_lacking_a_default_field_tracks_changes_like_one_read_carefully(
    native: bool,
) -> None:
    schema = schema_of(Page)
    item = {k: v for k, v in _wire(schema, PAGE).items() if k != "note"}
    obj = _generated_only(schema, native)(item)
    assert obj.note is None and "note" not in obj.model_fields_set
    assert list(obj.__dict__)[-1] == "note"
    assert plan_save(schema, "t", obj).request == {}
    obj.note = "now"
    obj.tags.add("z")
    names = plan_save(schema, "t", obj).request["ExpressionAttributeNames"].values()
    assert sorted(names) == ["note", "tags"]


def test_pages_of_whole_and_partial_items_load_as_item_by_item() -> None:
    schema = schema_of(Page)
    whole = _wire(schema, PAGE)
    partial = {k: v for k, v in whole.items() if k != "note"}
    null = {**whole, "note": {"NULL": True}}
    items = [whole, partial, null] * 30  # over 64 items: built with the collector paused
    loaded = schema.decode_page(items)
    assert [_describe(o) for o in loaded] == [_describe(schema._decode_carefully(i)) for i in items]
    assert loaded[1].model_fields_set == set(Page.model_fields) - {"note"}


def test_a_missing_required_field_or_a_wrong_type_is_the_careful_error() -> None:
    schema = schema_of(Page)
    item = _wire(schema, PAGE)
    del item["count"]
    with pytest.raises(InvalidItem, match="has no 'count' attribute") as info:
        schema.decode_item(item)
    assert (info.value.model, info.value.field) == ("Page", "count")
    item = {**_wire(schema, PAGE), "created": {"N": "1"}}
    with pytest.raises(InvalidItem, match="not of DynamoDB type S") as info:
        schema.decode_item(item)
    assert info.value.field == "created" and info.value.key == {"pk": "p", "sk": "s"}


@pytest.mark.parametrize("tagged", [True, False])
def test_entities_record_whether_the_item_holds_their_discriminator(tagged: bool) -> None:
    for obj in (
        Customer(id=UUID(int=1), email="a@example.com", name="Ada"),
        Order(
            id=UUID(int=2),
            customer_id=UUID(int=1),
            placed_at=datetime(2024, 1, 1, tzinfo=UTC),
            total=Decimal("9.50"),
        ),
    ):
        schema = schema_of(type(obj))
        item = _wire(schema, obj)
        if not tagged:
            del item["type"]
        assert_same(schema, item)
        state = schema.decode_item(item).__adyn_state__
        assert state[1] is tagged


@pytest.mark.parametrize("field", [s.wire for s in schema_of(Page).fields.values()])
def test_each_attribute_absent_or_odd_loads_as_the_careful_path_loads_it(field: str) -> None:
    schema = schema_of(Page)
    whole = _wire(schema, PAGE)
    assert_same(schema, {k: v for k, v in whole.items() if k != field})
    for odd in ODD:
        assert_same(schema, {**whole, field: odd})
    nested = whole[field].get("M", {}) if field in ("inner", "deep") else {}
    for key in (*nested, "other"):
        for odd in ODD:
            assert_same(schema, {**whole, field: {"M": {**nested, key: odd}}})


class Nested(Model):
    """Containers of containers, and an optional list: the generated decoder's written-out
    loops around inline members."""

    class Meta:
        table_name = "decode_nested"

    pk: Annotated[str, HashKey()]
    grid: list[list[int]]
    groups: dict[str, list[str]]
    rows: list[dict[str, int]]
    maybe: list[int] = [7]


numbers = st.integers(-(10**37), 10**37)  # what DynamoDB keeps: 38 digits
nested_objects = st.builds(
    Nested,
    pk=st.text(min_size=1, max_size=5),
    grid=st.lists(st.lists(st.integers(-9, 9), max_size=3), max_size=3),
    groups=st.dictionaries(st.text(min_size=1, max_size=3), st.lists(st.text(), max_size=2)),
    rows=st.lists(st.dictionaries(st.text(min_size=1, max_size=3), numbers), max_size=2),
    maybe=st.lists(numbers, max_size=3),
)


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "generated"])
@settings(max_examples=200, deadline=None)
@given(nested_objects, st.data())
def test_nested_containers_load_through_the_generated_loops_as_the_careful_path_loads_them(
    native: bool, obj: Nested, data: st.DataObject
) -> None:
    schema = schema_of(Nested)
    item = _wire(schema, obj)
    if data.draw(st.booleans()):
        item.pop("maybe", None)  # a defaulted field the item lacks: still the generated path
    fast, careful = _generated_only(schema, native)(item), schema._decode_carefully(item)
    assert _describe(fast) == _describe(careful)
    assert fast.__adyn_state__ == careful.__adyn_state__
    assert_same(schema, item)
    _spoil(item, data, ["grid", "groups", "rows", "maybe"])
    assert_same(schema, item)


# ---------------------------------------------------------------- the compiled decoder's care

_UNDER_DECODE: list[dict[str, Any]] = []


def _emptying_decode(text: str) -> str:
    """A custom codec's decode that empties the item being decoded, and each of its values."""
    for item in _UNDER_DECODE:
        for value in item.values():
            if isinstance(value, dict):
                value.clear()
        item.clear()
    return text


class Meddling(Model):
    class Meta:
        table_name = "decode_whole_meddling"

    pk: Annotated[str, HashKey()]
    first: Inner
    odd: Annotated[str, Codec("S", encode=str, decode=_emptying_decode)]
    later: list[int]
    last: dict[str, str]


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "generated"])
def test_a_codec_that_empties_the_item_while_it_is_decoded_gets_the_careful_error(
    native: bool,
) -> None:
    # the compiled decoder holds what it reads: code run by a codec cannot free it under it
    schema = schema_of(Meddling)
    whole = {
        "pk": {"S": "p"},
        "first": {"M": {"street": {"S": "s"}, "n": {"N": "1"}}},
        "odd": {"S": "x"},
        "later": {"L": [{"N": "1"}, {"N": "2"}]},
        "last": {"M": {"k": {"S": "v"}}},
    }
    item = orjson.loads(orjson.dumps(whole))
    _UNDER_DECODE[:] = [item]
    try:
        with pytest.raises(InvalidItem) as raised:
            decoder_of(schema, native)(item)
    finally:
        _UNDER_DECODE.clear()
    assert raised.value.model == "Meddling" and item == {}
    assert decoder_of(schema, native)(orjson.loads(orjson.dumps(whole))).later == [1, 2]


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "generated"])
def test_decoding_keeps_nothing_of_the_items_it_read_or_refused(native: bool) -> None:
    schema = schema_of(Page)
    decode = decoder_of(schema, native)
    whole = _wire(schema, PAGE)
    lacking = {k: v for k, v in whole.items() if k != "note"}
    spoiled = [{**whole, "count": odd} for odd in ODD] + [{**whole, "inner": {"M": {}}}]
    items = orjson.loads(orjson.dumps([whole, lacking, *spoiled]))

    def decode_all() -> None:
        for item in items:
            _outcome(decode, item)
        schema.decode_page(items[:2] * 40)  # a page: the compiled decoder's own loop

    decode_all()  # caches, interned names
    gc.collect()
    values = [v for item in items for v in item.values() if isinstance(v, dict)]  # (not 7)
    references = [sys.getrefcount(value) for value in values]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(300):
            decode_all()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # one object kept per decode would be 300 * 20 items * >= 16 bytes
    assert grown < 16 * 1024, grown
    assert [sys.getrefcount(value) for value in values] == references
