"""Change tracking: a loaded object remembers its stored item compactly, and `save` still sends
exactly what changed (in-place edits of sets, lists, dicts and nested models included),
`atomic=True` still refuses an item someone else changed, and Unique guards still move."""

from __future__ import annotations

import copy
import gc
import pickle
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _models import Address, Post
from _wire import raw_item
from adyn import CallEvent, ConstraintViolation, Engine, HashKey, Model, RangeKey, Unique
from adyn._writes import plan_save
from adyn.schema import schema_of

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SCHEMA = schema_of(Post)


def stored_post(**fields: Any) -> Post:
    """A Post as decoding its stored item gives it (what get/query return)."""
    data: dict[str, Any] = {"forum": "f", "id": uuid4(), "user": uuid4(), "date": NOW}
    data.update(fields)
    item = SCHEMA.encode_item(Post(**data))
    obj: Post = SCHEMA.decode_item(item)
    return obj


def sent(obj: Post, **options: Any) -> dict[str, Any]:
    return plan_save(SCHEMA, "posts", obj, **options).request


def updates(request: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """`{attribute: wire value set}` and the attributes removed, from an UpdateItem request."""
    if not request:
        return {}, set()
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    sets: dict[str, Any] = {}
    removes: set[str] = set()
    expression = request["UpdateExpression"]
    set_part, _, remove_part = expression.partition("REMOVE ")
    for clause in set_part.removeprefix("SET ").split(", "):
        if " = " in clause:
            name, value = clause.strip().split(" = ")
            sets[names[name]] = values[value]
    for name in remove_part.split(", "):
        if name.strip():
            removes.add(names[name.strip()])
    removes.discard("adyn:none")
    return sets, removes


def test_an_unchanged_loaded_object_sends_nothing() -> None:
    post = stored_post(tags={"a", "b"}, address=Address(city="Oslo"), history=[{"n": 1}])
    assert sent(post) == {}


@pytest.mark.parametrize(
    ("edit", "attribute"),
    [
        (lambda p: p.tags.add("c"), "tags"),
        (lambda p: p.history.append({"m": 2}), "history"),
        (lambda p: p.history[0].update(n=5), "history"),
        (lambda p: setattr(p.address, "city", "Lima"), "address"),
        (lambda p: setattr(p, "views", p.views + 1), "views"),
        (lambda p: setattr(p, "score", Decimal("2.5")), "score"),
    ],
)
def test_in_place_edits_of_mutable_values_are_saved(edit: Any, attribute: str) -> None:
    post = stored_post(tags={"a", "b"}, address=Address(city="Oslo"), history=[{"n": 1}])
    edit(post)
    sets, removes = updates(sent(post))
    assert set(sets) == {attribute} and not removes
    assert sets[attribute] == SCHEMA.encode_value(
        SCHEMA.fields[attribute], getattr(post, attribute)
    )


def test_a_saved_object_remembers_what_it_wrote() -> None:
    post = stored_post(tags={"a"})
    post.tags.add("b")
    plan = plan_save(SCHEMA, "posts", post)
    plan.done()
    assert sent(post) == {}  # nothing left to send
    post.tags.discard("a")
    assert set(updates(sent(post))[0]) == {"tags"}


class Plain(Model):
    class Meta:
        table_name = "tracked_plain"

    pk: Annotated[str, HashKey()]
    n: int = 0
    when: datetime = NOW
    tags: set[str] = set()
    scores: list[int] = []
    address: Address | None = None
    attrs: dict[str, str] = {}
    rows: list[dict[str, int]] = []


def test_the_state_of_a_loaded_object_is_not_tracked_by_the_collector() -> None:
    schema = schema_of(Plain)
    item = schema.encode_item(
        Plain(
            pk="p",
            tags={"a"},
            scores=[1, 2],
            address=Address(city="O", zip="1"),
            attrs={"k": "v"},
            rows=[{"r": 1}],
        )
    )
    obj = schema.decode_item(item)  # every field stored: the generated snapshot
    del item
    assert plan_save(schema, "t", obj).request == {}
    state = obj.__adyn_state__
    for _ in range(3):  # tuples in tuples (`rows`: a tuple of its dicts' tuples), one level a pass
        gc.collect()
    assert type(state) is tuple and not gc.is_tracked(state)
    obj.scores.append(3)
    obj.attrs["k"] = "w"
    obj.rows[0]["r"] = 2
    request = plan_save(schema, "t", obj).request
    assert sorted(request["ExpressionAttributeNames"].values()) == ["attrs", "rows", "scores"]


# Random edits: the compact state gives the UpdateItem a diff of the whole wire items gives.

_text = st.text("abcxyz", min_size=1, max_size=4)
_edits = st.lists(
    st.one_of(
        st.tuples(st.just("views"), st.integers(-5, 5)),
        st.tuples(st.just("score"), st.decimals(-10, 10, places=2)),
        st.tuples(st.just("content"), st.text("ab", max_size=3)),
        st.tuples(st.just("tags.add"), _text),
        st.tuples(st.just("tags.clear"), st.none()),
        st.tuples(st.just("history.append"), st.dictionaries(_text, st.integers(0, 9), max_size=2)),
        st.tuples(st.just("history.pop"), st.none()),
        st.tuples(st.just("address.city"), _text),
        st.tuples(st.just("address"), st.none()),
        st.tuples(st.just("email"), st.one_of(st.none(), _text)),
        st.tuples(st.just("del content"), st.none()),
    ),
    max_size=5,
)


def _apply(post: Post, edit: tuple[str, Any]) -> None:
    what, value = edit
    if what == "tags.add":
        post.tags.add(value)
    elif what == "tags.clear":
        post.tags.clear()
    elif what == "history.append":
        post.history.append(value)
    elif what == "history.pop":
        if post.history:
            post.history.pop()
    elif what == "address.city":
        if post.address is None:
            post.address = Address(city=value)
        else:
            post.address.city = value
    elif what == "del content":
        if "content" in post.__dict__:
            del post.content
    else:
        setattr(post, what, value)


@settings(max_examples=150, deadline=None)
@given(
    tags=st.sets(_text, max_size=3),
    history=st.lists(st.dictionaries(_text, st.integers(0, 9), max_size=2), max_size=2),
    city=st.one_of(st.none(), _text),
    edits=_edits,
)
def test_compact_state_diffs_like_the_whole_wire_item(
    tags: set[str], history: list[dict[str, int]], city: str | None, edits: list[Any]
) -> None:
    address = None if city is None else Address(city=city)
    post = stored_post(tags=tags, history=history, address=address, content="c", views=1)
    before = SCHEMA.encode_item(post)
    for edit in edits:
        _apply(post, edit)
    after = SCHEMA.encode_item(post)  # a deleted field is no attribute
    expected_sets = {k: v for k, v in after.items() if before.get(k) != v}
    expected_removes = {k for k in before if k not in after}
    sets, removes = updates(sent(post))
    assert (sets, removes) == (expected_sets, expected_removes)


# ---------------------------------------------------------------- on a server


async def test_in_place_edits_after_a_load_reach_the_item(engine: Engine) -> None:
    await engine.bind(Post)
    post = Post(forum="f", id=uuid4(), user=uuid4(), date=NOW, tags={"a"}, history=[{"n": 1}])
    post.address = Address(city="Oslo")
    await engine.save(post)
    loaded = await engine.get(Post, forum="f", id=post.id)
    assert loaded is not None
    loaded.tags.add("b")
    loaded.history[0]["n"] = 2
    assert loaded.address is not None
    loaded.address.city = "Lima"
    await engine.save(loaded)
    item = await raw_item(engine, Post, {"forum": {"S": "f"}, "id": {"S": str(post.id)}})
    assert sorted(item["tags"]["SS"]) == ["a", "b"]
    assert item["history"] == {"L": [{"M": {"n": {"N": "2"}}}]}
    assert item["address"]["M"]["city"] == {"S": "Lima"}

    operations: list[str] = []

    def heard(event: CallEvent) -> None:
        operations.append(event.operation)

    engine.listeners.append(heard)
    again = await engine.get(Post, forum="f", id=post.id)
    assert again is not None
    await engine.save(again)  # unchanged: nothing is sent
    await engine.save(loaded)  # saved already: nothing either
    assert operations == ["GetItem"]


async def test_atomic_saves_still_fail_when_another_writer_changed_the_item(
    engine: Engine,
) -> None:
    await engine.bind(Post)
    post = Post(forum="f", id=uuid4(), user=uuid4(), date=NOW, tags={"a"}, score=Decimal("1.5"))
    await engine.save(post)
    mine = await engine.get(Post, forum="f", id=post.id)
    theirs = await engine.get(Post, forum="f", id=post.id)
    assert mine is not None and theirs is not None
    mine.views = 1
    await engine.save(mine, atomic=True)  # unchanged since read: fine
    theirs.tags.add("x")
    with pytest.raises(ConstraintViolation):
        await engine.save(theirs, atomic=True)  # `mine` changed the item meanwhile
    fresh = await engine.get(Post, forum="f", id=post.id)
    assert fresh is not None and fresh.tags == {"a"} and fresh.views == 1
    fresh.tags.add("x")
    await engine.save(fresh, atomic=True)
    fresh.content = "z"
    await engine.save(fresh, atomic=True)  # what it wrote is what it remembers


class Member(Model):
    class Meta:
        table_name = "tracked_members"

    team: Annotated[str, HashKey()]
    id: Annotated[int, RangeKey()]
    email: Annotated[str, Unique()]


@pytest.mark.moto_only
async def test_unique_guards_move_when_a_loaded_value_changes(engine: Engine) -> None:
    await engine.bind(Member)
    await engine.save(Member(team="t", id=1, email="a@x"))
    loaded = await engine.get(Member, team="t", id=1)
    assert loaded is not None
    loaded.email = "b@x"
    await engine.save(loaded)
    await engine.save(Member(team="t", id=2, email="a@x"))  # the old value is free again
    loaded.email = "c@x"
    await engine.save(loaded)  # moves from b@x, the value it wrote
    await engine.save(Member(team="t", id=3, email="b@x"))
    await engine.delete(loaded)
    await engine.save(Member(team="t", id=4, email="c@x"))


@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p)), lambda p: p.model_copy()],
)
def test_copies_of_a_loaded_object_remember_its_stored_item(duplicate: Any) -> None:
    post = stored_post(tags={"a"}, views=3)
    twin = duplicate(post)
    assert sent(twin) == {}
    twin.views = 4
    assert set(updates(sent(twin))[0]) == {"views"}
    assert twin == post.model_copy(update={"views": 4})


def test_a_state_packed_the_former_way_reads_as_the_state_kept_now() -> None:
    # objects pickled by an earlier version hold each frozen tuple's members at the end of the
    # state, their count in the slot
    schema = schema_of(Plain)
    obj = schema.decode_item(
        schema.encode_item(Plain(pk="p", tags={"a", "b"}, scores=[1], attrs={"k": "v"}))
    )
    kept = obj.__adyn_state__
    slots, tail = list(kept), []
    for i in schema.frozen_slots:
        if type(slots[i]) is tuple:
            tail += slots[i]
            slots[i] = len(slots[i])
    object.__setattr__(obj, "__adyn_state__", (*slots, *tail))
    assert schema.state_of(obj) == kept
    assert plan_save(schema, "t", obj).request == {}
    obj.scores.append(2)
    assert list(updates(plan_save(schema, "t", obj).request)[0]) == ["scores"]
