"""The generated encoder and the new-object save give exactly what the careful path gives.

Batch saves and saves of new objects go through code generated per model (`_encoder.py`,
`_save_new.py`). For every value, good or bad, the user sees the same item, size, request and
error as the per-field codecs, `item_size` and the diffing `plan_save` give.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from _models import Account, Everything, Post
from _shop import Customer, LineItem, Order
from adyn import GlobalIndex, HashKey, InvalidItem, Model, RangeKey, Version, _writes
from adyn._encoder import MAX_ITEM_BYTES, compile_encoder, encode_checked
from adyn._save_new import plan_new
from adyn._tracking import LOADED
from adyn._writes import item_size, plan_save
from adyn.schema import schema_of
from test_codecs import everything, text


class Tone(enum.Enum):
    LOW = "low"
    HIGH = "hé"


class Inner(BaseModel):
    name: str
    n: int | None = None
    tags: set[str] = set()
    deeper: Inner | None = None


class Wide(Model):
    """Every type the generated code inlines, as keys, index keys, members and nested fields."""

    class Meta:
        table_name = "wide"

    pk: Annotated[str, HashKey()]
    sk: Annotated[bytes, RangeKey()]
    owner: str | None = None
    count: int = 0
    price: Decimal = Decimal("0")
    ratio: float = 0.0
    flag: bool = False
    when: dt.datetime | None = None
    day: dt.date | None = None
    uid: UUID | None = None
    tone: Tone = Tone.LOW
    mode: Literal["a", "b"] = "a"
    level: Literal[1, 2] = 1
    tags: set[str] = set()
    numbers: set[int] = set()
    scores: list[int] = []
    names: list[str | None] = []
    groups: list[set[str]] = []
    attrs: dict[str, str] = {}
    counts: dict[str, int] = {}
    inner: Inner | None = None
    inners: list[Inner] = []
    version: Annotated[int, Version()] = 0

    by_owner = GlobalIndex(hash_key="owner", range_key="count", projection="keys")


def careful(obj: Any) -> tuple[dict[str, Any], int]:
    item = schema_of(type(obj)).encode_item(obj)
    return item, item_size(item)


def unordered_sets(value: Any) -> Any:
    """A wire value with its sets' members sorted (a copied set may iterate in another order)."""
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in ("SS", "NS", "BS") else unordered_sets(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [unordered_sets(v) for v in value]
    return value


def outcome(call: Any) -> Any:
    """What a call gives: its result, or the type and text of its error."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


def assert_same_encoding(obj: Any) -> None:
    """The generated encoder equals the careful path (key order included), or defers to it;
    the object ends as the careful path leaves it (templated keys computed into it)."""
    schema = schema_of(type(obj))
    fast = compile_encoder(schema, False)
    by_hand, by_fast = obj.model_copy(deep=True), obj.model_copy(deep=True)
    expected = outcome(lambda: careful(by_hand))
    try:
        item, size = fast(by_fast.__dict__)
    except Exception:
        item = None  # the careful path decides: fine, as long as checked below
    if item is not None:
        assert expected[0] == "ok", f"fast path accepted what the careful path refuses: {expected}"
        assert unordered_sets(item) == unordered_sets(expected[1][0])
        assert list(item) == list(expected[1][0])
        assert size == expected[1][1]
        assert by_fast.__dict__ == by_hand.__dict__
    got = outcome(lambda: encode_checked(schema, obj))
    if expected[0] == "ok" and expected[1][1] <= MAX_ITEM_BYTES:
        assert unordered_sets(got) == unordered_sets(expected)
        assert obj.__dict__ == by_hand.__dict__
    else:
        assert got[0] == "error"
        assert expected[0] == "error" or "400 KB" in got[2]


@contextmanager
def careful_plan_save() -> Iterator[None]:
    """`plan_save` without its new-object branch and without the generated encoder: the
    field-by-field diffing path every save took before."""
    original, encoder = _writes.plan_new, _writes.fast_encoder
    _writes.plan_new = lambda *args: None  # type: ignore[assignment]
    _writes.fast_encoder = lambda schema: None
    try:
        yield
    finally:
        _writes.plan_new, _writes.fast_encoder = original, encoder


def assert_same_save(make: Any, condition: Any = None, atomic: bool = False) -> None:
    """A new object's save: same request, idempotency, guards, error and state after it."""
    a, b = make(), make()
    schema = schema_of(type(a))
    got = outcome(lambda: plan_save(schema, "t", a, condition, atomic))
    with careful_plan_save():
        expected = outcome(lambda: plan_save(schema, "t", b, condition, atomic))
    assert got[0] == expected[0], (got, expected)
    if got[0] == "error":
        assert got == expected
        return
    new, old = got[1], expected[1]
    assert new.request == old.request
    assert new.idempotent == old.idempotent
    assert [g.request for g in new.guards] == [g.request for g in old.guards]
    new.done()
    old.done()
    assert a.__dict__ == b.__dict__
    # what each remembers of the stored item (whatever form it keeps it in) makes the next
    # saves the same: nothing to send, then the same change
    state_a, state_b = schema.state_of(a), schema.state_of(b)
    assert state_a is not None and state_b is not None
    assert state_a[LOADED] == state_b[LOADED]
    for change in (False, True):
        if change:
            a.__dict__["count"] = b.__dict__["count"] = 7
        again_a = outcome(lambda: plan_save(schema, "t", a, condition, atomic))
        again_b = outcome(lambda: plan_save(schema, "t", b, condition, atomic))
        assert again_a[0] == again_b[0]
        if again_a[0] != "error":
            assert again_a[1].request == again_b[1].request


# ---------------------------------------------------------------- the same item and size

inners: st.SearchStrategy[Inner] = st.deferred(
    lambda: st.builds(
        Inner,
        name=text,
        n=st.none() | st.integers(-(10**40), 10**40),
        tags=st.sets(text, max_size=3),
        deeper=st.none() | inners,
    )
)

aware = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),
    max_value=dt.datetime(9998, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5))]),
)

wide = st.builds(
    Wide,
    pk=st.text(max_size=20),
    sk=st.binary(max_size=20),
    owner=st.none() | st.text(max_size=5),
    count=st.integers(-(10**40), 10**40),
    price=st.decimals(allow_nan=False, allow_infinity=False, places=None),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    flag=st.booleans(),
    when=st.none() | aware,
    day=st.none() | st.dates(),
    uid=st.none() | st.uuids(),
    tone=st.sampled_from(Tone),
    mode=st.sampled_from(["a", "b"]),
    level=st.sampled_from([1, 2]),
    tags=st.sets(text, max_size=4),
    numbers=st.sets(st.integers(-(10**39), 10**39), max_size=4),
    scores=st.lists(st.integers(-(10**39), 10**39), max_size=4),
    names=st.lists(st.none() | text, max_size=4),
    groups=st.lists(st.sets(text, max_size=2), max_size=3),
    attrs=st.dictionaries(st.text(max_size=4), text, max_size=3),
    counts=st.dictionaries(st.text(min_size=1, max_size=4), st.integers(-5, 5), max_size=3),
    inner=st.none() | inners,
    inners=st.lists(inners, max_size=2),
)

# values pydantic never checks once an object is built: assigned afterwards, or constructed
bad_values = st.sampled_from(
    [
        None,
        "",
        "x",
        "a\ud800b",
        b"",
        b"\x00",
        0,
        -1,
        10**38,
        -(10**38),
        10**200,
        True,
        1.5,
        float("nan"),
        float("inf"),
        Decimal("1E+126"),
        Decimal("1E-131"),
        Decimal("NaN"),
        Decimal("1.000000000000000000000000000000000000000000"),
        Decimal("0.00"),
        dt.datetime(2024, 1, 1),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.date(2024, 1, 1),
        uuid4(),
        Tone.HIGH,
        "low",
        set(),
        {"a", 1},
        {1, 2},
        [1, None],
        ["a", None],
        [set()],
        {"": "x"},
        {"k": None},
        {1: "x"},
        Inner(name="n"),
        {"name": "n"},
        "k" * 3000,
    ]
)


@settings(max_examples=300, deadline=None)
@given(everything)
def test_the_generated_encoder_gives_the_codecs_item_and_size(obj: Everything) -> None:
    assert_same_encoding(obj)


@settings(max_examples=300, deadline=None)
@given(wide)
def test_every_inlined_type_gives_the_codecs_item_and_size(obj: Wide) -> None:
    assert_same_encoding(obj)


@settings(max_examples=500, deadline=None)
@given(wide, st.sampled_from(sorted(Wide.model_fields)), bad_values, st.booleans())
def test_bad_values_give_the_careful_paths_error(
    obj: Wide, field: str, value: Any, delete: bool
) -> None:
    if delete:
        obj.__dict__.pop(field, None)
    else:
        obj.__dict__[field] = value
    assert_same_encoding(obj)


@settings(max_examples=200, deadline=None)
@given(everything, st.sampled_from(sorted(Everything.model_fields)), bad_values)
def test_bad_values_of_every_type_give_the_careful_paths_error(
    obj: Everything, field: str, value: Any
) -> None:
    obj.__dict__[field] = value
    assert_same_encoding(obj)


def test_post_with_index_keys_and_nested_values() -> None:
    post = Post(
        forum="f",
        id=uuid4(),
        user=uuid4(),
        date=dt.datetime.now(dt.UTC),
        tags={"a", "b"},
        history=[{"a": 1}, {}],
        email="e@x",
    )
    assert_same_encoding(post)


# ---------------------------------------------------------------- new-object saves


@settings(max_examples=200, deadline=None)
@given(wide, st.sampled_from([None, *sorted(Wide.model_fields)]), bad_values, st.booleans())
def test_a_new_objects_save_sends_what_the_diffing_save_sent(
    obj: Wide, field: str | None, value: Any, atomic: bool
) -> None:
    def make() -> Wide:
        copy = obj.model_copy(deep=True)
        if field is not None:
            copy.__dict__[field] = value
        return copy

    assert_same_save(make, atomic=atomic)
    assert_same_save(make, condition=Wide.count > 3)


@settings(max_examples=100, deadline=None)
@given(everything, st.sampled_from(sorted(Everything.model_fields)), st.booleans())
def test_a_new_objects_save_removes_fields_set_to_none_and_skips_deleted_ones(
    obj: Everything, field: str, delete: bool
) -> None:
    def make() -> Everything:
        copy = obj.model_copy(deep=True)
        if delete:
            copy.__dict__.pop(field, None)
        else:
            copy.__dict__[field] = None
        return copy

    assert_same_save(make)


def test_a_versioned_new_object_is_conditioned_and_bumped_as_before() -> None:
    assert_same_save(lambda: Account(id="a", balance=3))
    assert_same_save(lambda: Account(id="a", balance=3, version=4), atomic=True)


def test_the_new_object_path_is_taken_and_its_state_is_set() -> None:
    account = Account(id="a", balance=3)
    schema = schema_of(Account)
    assert plan_new(schema, "t", account, None, False) is not None
    plan = plan_save(schema, "t", account)
    plan.done()
    assert schema.state_of(account) is not None
    assert schema.stored_values(account) == {"id": "a", "balance": 3, "version": 1}
    assert account.version == 1
    account.balance = 4  # loaded now: the diffing path, which sends only the change
    assert plan_save(schema, "t", account).request["ExpressionAttributeValues"][":v0"] == {"N": "4"}


# ---------------------------------------------------------------- errors, before sending


def _errors(obj: Any) -> tuple[str, str | None, str]:
    with pytest.raises(InvalidItem) as info:
        encode_checked(schema_of(type(obj)), obj)
    with pytest.raises(InvalidItem) as saved:
        plan_save(schema_of(type(obj)), "t", obj)
    error = info.value
    assert (error.model, error.field) == (saved.value.model, saved.value.field)
    return error.model, error.field, str(error)


def test_errors_name_model_field_and_rule() -> None:
    post = Post(forum="f", id=uuid4(), user=uuid4(), date=dt.datetime.now(dt.UTC))
    del post.__dict__["date"]
    assert _errors(post)[:2] == ("Post", "date")
    assert "required field has no value" in _errors(post)[2]

    empty_key = Wide(pk="", sk=b"k")
    assert _errors(empty_key)[:2] == ("Wide", "pk")
    assert "cannot be empty" in _errors(empty_key)[2]

    long_key = Wide(pk="p", sk=b"k" * 1000)  # 1,000 bytes: 1,336 characters of base64
    assert "too long" in _errors(long_key)[2]

    empty_index_key = Wide(pk="p", sk=b"k", owner="")
    assert _errors(empty_index_key)[:2] == ("Wide", "owner")
    assert "index key value cannot be empty" in _errors(empty_index_key)[2]

    too_large = Wide(pk="p", sk=b"k", attrs={"a": "x" * MAX_ITEM_BYTES})
    assert _errors(too_large)[:2] == ("Wide", None)
    assert "DynamoDB's limit is 400 KB" in _errors(too_large)[2]

    naive = Wide(pk="p", sk=b"k")
    naive.__dict__["when"] = dt.datetime(2024, 1, 1)
    assert _errors(naive)[:2] == ("Wide", "when")


def test_the_generated_code_encodes_common_objects_itself() -> None:
    obj = Wide(
        pk="p",
        sk=b"k",
        owner="o",
        when=dt.datetime.now(dt.UTC),
        day=dt.date.today(),
        uid=uuid4(),
        tone=Tone.HIGH,
        tags={"a"},
        numbers={1},
        scores=[1],
        names=["a", None],
        groups=[{"x"}, set()],
        attrs={"k": "v"},
        counts={"k": 1},
        inner=Inner(name="n", deeper=Inner(name="m")),
        inners=[Inner(name="i")],
    )
    fast = compile_encoder(schema_of(Wide), False)
    assert fast(obj.__dict__) == careful(obj)  # no exception: no careful path taken


# ---------------------------------------------------------------- templated keys


class Templated(Model):
    """Key templates of every shape the generated code renders: several components, a format
    spec, a separator of several characters, an optional component (a sparse index), a
    component that is a number, and a version."""

    class Meta:
        table_name = "templated"
        keys = {
            "pk": "T#{tenant}",
            "sk": "{kind}::{n:05d}::{when}",
            "gsi1pk": "OWNER#{owner}",
            "gsi1sk": "{n}",
        }

    pk: Annotated[str, HashKey()] = ""
    sk: Annotated[str, RangeKey()] = ""
    gsi1pk: str | None = None
    gsi1sk: str | None = None
    tenant: str
    kind: str
    n: int
    when: dt.datetime
    owner: str | None = None
    note: str = ""
    count: int = 0
    version: Annotated[int, Version()] = 0

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", range_key="gsi1sk", projection="all")


class Keyed(Model):
    """A plain key the user sets, used by an index key's template."""

    class Meta:
        table_name = "keyed"
        keys = {"gsi1pk": "OF#{pk}#{level}"}

    pk: Annotated[str, HashKey()]
    level: int = 0
    gsi1pk: str | None = None
    count: int = 0

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", projection="keys")


templated = st.builds(
    Templated,
    tenant=st.sampled_from(["t", "", "a#b", "é"]) | text,
    kind=st.sampled_from(["k", "a::b", "a:", ":", ""]) | text,
    n=st.integers(-(10**6), 10**6),
    when=aware,
    owner=st.none() | text,
    note=text,
    count=st.integers(-5, 5),
)
keyed = st.builds(
    Keyed, pk=st.sampled_from(["p", "", "a#b", "#"]) | text, level=st.integers(-9, 10**4)
)
shop_entities = st.one_of(
    st.builds(Customer, id=st.uuids(), email=text, name=text),
    st.builds(
        Order,
        id=st.uuids(),
        customer_id=st.uuids(),
        placed_at=aware,
        status=st.sampled_from([None, "open", "paid"]),
        total=st.decimals(allow_nan=False, allow_infinity=False, places=2),
        name=st.integers(-5, 5),
    ),
    st.builds(
        LineItem,
        order_id=st.uuids(),
        n=st.integers(-(10**5), 10**5),
        sku=text,
        quantity=st.integers(0, 9),
    ),
)
any_templated = st.one_of(templated, keyed, shop_entities)


def draw_change(obj: Any, data: st.DataObject) -> Callable[[Any], Any]:
    """A change to make after an object was built or loaded: a component, a computed attribute
    set by hand, a field deleted or set to None or to a bad value (pydantic does not check
    these); applied alike to each copy it is given."""
    how = data.draw(st.sampled_from(["none", "delete", "bad", "own kind"]))
    name = data.draw(st.sampled_from(sorted(type(obj).model_fields)))
    bad = data.draw(bad_values)
    suffix = data.draw(st.sampled_from(["x", "#", "::", ""]))

    def apply(copy: Any) -> Any:
        if how == "delete":
            copy.__dict__.pop(name, None)
        elif how == "bad":
            copy.__dict__[name] = copy_value(bad)
        elif how == "own kind":  # assigned as a user does: the field counts as set
            value = copy.__dict__.get(name)
            if isinstance(value, str):
                setattr(copy, name, value + suffix)
            elif isinstance(value, int) and not isinstance(value, bool):
                setattr(copy, name, value + 1)
        return copy

    return apply


def copy_value(value: Any) -> Any:
    return value.model_copy(deep=True) if isinstance(value, BaseModel) else copy.deepcopy(value)


def changed(obj: Any, data: st.DataObject) -> Any:
    return draw_change(obj, data)(obj.model_copy(deep=True))


@settings(max_examples=400, deadline=None)
@given(any_templated, st.data())
def test_templated_keys_encode_as_the_careful_path_does(obj: Any, data: st.DataObject) -> None:
    assert_same_encoding(changed(obj, data))


@settings(max_examples=300, deadline=None)
@given(any_templated, st.data(), st.booleans())
def test_a_templated_new_objects_save_sends_what_the_diffing_save_sent(
    obj: Any, data: st.DataObject, atomic: bool
) -> None:
    start = changed(obj, data)
    assert_same_save(lambda: start.model_copy(deep=True), atomic=atomic)


def test_templated_models_are_encoded_by_the_generated_code() -> None:
    """The common cases take no careful path: entities with templates cost as plain models."""
    when = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
    objects: list[Any] = [
        Templated(tenant="t", kind="k", n=7, when=when, owner="o"),
        Templated(tenant="t", kind="k", n=7, when=when),  # sparse: no gsi1pk
        Keyed(pk="p", level=3),
        Order(id=uuid4(), customer_id=uuid4(), placed_at=when),
        LineItem(order_id=uuid4(), n=2, sku="s"),
    ]
    for obj in objects:
        schema = schema_of(type(obj))
        by_hand = obj.model_copy(deep=True)
        expected = careful(by_hand)
        assert compile_encoder(schema, False)(obj.__dict__) == expected  # no Slow raised
        assert plan_new(schema, "t", obj.model_copy(deep=True), None, False) is not None
    sparse = objects[1]
    assert "gsi1pk" not in careful(sparse)[0] and sparse.gsi1pk is None
    assert careful(objects[0])[0]["sk"] == {"S": "k::00007::2024-06-01T12:00:00.000000+00:00"}


def test_a_component_changed_after_construction_recomputes_the_key() -> None:
    order = Order(id=uuid4(), customer_id=uuid4(), placed_at=dt.datetime.now(dt.UTC))
    order.status = "paid"
    item, _ = encode_checked(schema_of(Order), order)
    assert item["gsi1pk"] == {"S": "STATUS#paid"} and order.gsi1pk == "STATUS#paid"
    order.status = None  # leaves the sparse index
    plan = plan_save(schema_of(Order), "t", order)
    assert "gsi1pk" not in plan.request["ExpressionAttributeNames"].values() or (
        "REMOVE" in plan.request["UpdateExpression"]
    )
    assert order.gsi1pk is None


def test_a_templated_key_set_by_hand_is_refused_by_name() -> None:
    order = Order(id=uuid4(), customer_id=uuid4(), placed_at=dt.datetime.now(dt.UTC))
    order.pk = "CUSTOMER#someone-else"
    assert _errors(order)[:2] == ("Order", "pk")
    assert "cannot be set by hand" in _errors(order)[2]
    line = LineItem(order_id=uuid4(), n=1, sku="s")
    line.__dict__["n"] = None
    assert _errors(line)[:2] == ("LineItem", "n")


# ---------------------------------------------------------------- saves of loaded objects


@settings(max_examples=300, deadline=None)
@given(st.one_of(wide, everything, any_templated), st.data(), st.booleans())
def test_a_loaded_objects_save_sends_what_the_field_by_field_save_sent(
    obj: Any, data: st.DataObject, atomic: bool
) -> None:
    """The diffing save takes the item and size from the generated encoder when it can."""
    schema = schema_of(type(obj))
    try:
        item = schema.encode_item(obj)
    except InvalidItem:
        assume(False)
    apply = draw_change(obj, data)
    assert_same_save(lambda: apply(schema.read(item, "t")), atomic=atomic)
    assert_same_save(lambda: apply(schema.read(item, "t")), condition=type(obj).pk.exists())


def test_a_loaded_objects_save_uses_the_generated_encoder() -> None:
    schema = schema_of(Order)
    order = Order(id=uuid4(), customer_id=uuid4(), placed_at=dt.datetime.now(dt.UTC))
    loaded = schema.read(schema.encode_item(order), "t")
    loaded.total = Decimal("2.50")
    assert _writes._whole_item(schema, loaded) is not None
    plan = plan_save(schema, "t", loaded)
    assert list(plan.request["ExpressionAttributeValues"].values()) == [{"N": "2.50"}]
    loaded_post = Wide(pk="p", sk=b"k")
    wide_loaded = schema_of(Wide).read(schema_of(Wide).encode_item(loaded_post), "t")
    wide_loaded.attrs = {"a": "x" * MAX_ITEM_BYTES}
    assert _errors(wide_loaded)[:2] == ("Wide", None)
