"""Expressions render with placeholders only, and reject operators a field's type cannot take."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from _models import Everything, Post
from adyn import HashKey, InvalidCondition, Model, Path
from adyn._writes import _check_overlaps, plan_save
from adyn.expressions import Renderer, render_actions, render_condition
from adyn.schema import schema_of

user_text = st.text(min_size=1, max_size=30)

# What an expression may consist of: placeholders, DynamoDB's keywords, functions and operators,
# list indexes. Any user text that reached the expression would be outside this grammar.
_EXPRESSION_TOKEN = re.compile(
    r"\s+|#n\d+|:v\d+|\[\d+\]|[().,=<>+-]|AND|OR|NOT|IN|BETWEEN|SET|ADD|REMOVE|DELETE"
    r"|attribute_exists|attribute_not_exists|attribute_type|begins_with|contains|size"
    r"|if_not_exists|list_append"
)


def _only_grammar(text: str) -> bool:
    return _EXPRESSION_TOKEN.sub("", text) == ""


def _all_text(condition_text: str, r: Renderer) -> str:
    return condition_text


@settings(max_examples=200, deadline=None)
@given(value=user_text, key=user_text, member=user_text)
def test_user_strings_never_become_expression_text(value: str, key: str, member: str) -> None:
    condition = (
        (Post.content == value)
        & Post.content.begins_with(value)
        & Post.tags.contains(member)
        & Post.history[0][key].exists()
        | Post.content.in_([value, member])
        | (Post.address.city > value)
    )
    r = Renderer()
    text = render_condition(condition, r)
    assert _only_grammar(text), text
    assert set(r.names.values()) >= {"content", "tags", "history", key, "address", "city"}
    wire_values = [v for v in r.values.values()]
    assert {"S": value} in wire_values and {"S": member} in wire_values

    r = Renderer()
    actions = [
        Post.content.set(value),
        Post.history[1][key].set(3),
        Post.tags.add({member}),
        Post.address.city.set_if_missing(value),
    ]
    text = render_actions(actions, r)
    assert _only_grammar(text), text


def test_names_are_deduplicated_and_values_are_typed_by_the_field() -> None:
    r = Renderer()
    when = datetime(2024, 1, 1, tzinfo=UTC)
    text = render_condition((Post.views > 1) & (Post.views < 5) & (Post.date >= when), r)
    assert text == "(#n0 > :v0) AND (#n0 < :v1) AND (#n1 >= :v2)"
    assert r.names == {"#n0": "views", "#n1": "date"}
    assert r.values[":v2"] == {"S": "2024-01-01T00:00:00.000000+00:00"}


def test_aliases_are_used_as_attribute_names() -> None:
    r = Renderer()
    render_condition(Post.email == "a@b", r)
    assert r.names == {"#n0": "em"}


def test_none_comparisons_mean_existence() -> None:
    r = Renderer()
    assert render_condition(Post.email == None, r) == "attribute_not_exists(#n0)"  # noqa: E711
    assert render_condition(Post.email.is_not(None), r) == "attribute_exists(#n0)"


def test_size_between_and_not() -> None:
    r = Renderer()
    text = render_condition(~(Post.tags.size() > 3) | Post.views.between(1, 9), r)
    assert text == "(NOT (size(#n0) > :v0)) OR (#n1 BETWEEN :v1 AND :v2)"


def test_update_actions_render_in_clause_groups() -> None:
    r = Renderer()
    text = render_actions(
        [
            Post.views.add(1),
            Post.tags.delete({"old"}),
            Post.content.set("hi"),
            Post.history.append([{"a": 1}]),
            Post.score.set(Post.score + 2),
            Post.email.remove(),
        ],
        r,
    )
    assert text.startswith("SET ") and " REMOVE " in text and " ADD " in text
    assert " DELETE " in text
    assert "list_append(if_not_exists(" in text
    assert r.values[":v0"] == {"N": "1"} and r.values[":v1"] == {"SS": ["old"]}


@pytest.mark.parametrize(
    "build",
    [
        lambda: Post.views.begins_with("1"),
        lambda: Post.views.contains(1),
        lambda: Post.tags < {"a"},
        lambda: Post.views.size(),
        lambda: Post.content.add(1),
        lambda: Post.views.delete({1}),
        lambda: Post.content.append(["x"]),
        lambda: Post.content + 1,
        lambda: Post.views[0],
        lambda: Post.address.country,
        lambda: Post.forum.remove(),
        lambda: Post.views.in_([]),
        lambda: Post.views.is_type("STRING"),
        lambda: Post.views == "not a number",
    ],
)
def test_operators_the_field_type_cannot_take_are_refused(build: object) -> None:
    with pytest.raises(InvalidCondition):
        build()  # type: ignore[operator]


def test_conditions_refuse_python_boolean_operators() -> None:
    with pytest.raises(InvalidCondition, match="&"):
        bool(Post.views > 1)


def test_overlapping_update_paths_are_refused_before_sending() -> None:
    with pytest.raises(InvalidCondition, match="overlapping"):
        _check_overlaps(schema_of(Post), [Post.views.add(1), Post.views.set_if_missing(0)])
    with pytest.raises(InvalidCondition, match="overlapping"):
        _check_overlaps(schema_of(Post), [Post.address.set(None), Post.address.city.set("x")])


def test_number_values_in_conditions_are_exact() -> None:
    r = Renderer()
    render_condition(Everything.d == Decimal("0.1000000000000000000000000000000000001"), r)
    assert r.values[":v0"] == {"N": "0.1000000000000000000000000000000000001"}


def test_saves_of_one_shape_share_their_update_text_but_never_their_values() -> None:
    schema = schema_of(Post)
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def planned(content: str, **more: object) -> dict[str, object]:
        post = Post(forum="f", id=uuid4(), user=uuid4(), date=now, content=content, **more)  # type: ignore[arg-type]
        return plan_save(schema, "posts", post, condition=Post.views < 10).request

    first, second = planned("one"), planned("two")
    assert first["UpdateExpression"] is second["UpdateExpression"]  # rendered once, reused
    assert first["ExpressionAttributeNames"] == second["ExpressionAttributeNames"]
    assert first["ExpressionAttributeNames"] is not second["ExpressionAttributeNames"]
    first_values = first["ExpressionAttributeValues"]
    second_values = second["ExpressionAttributeValues"]
    assert isinstance(first_values, dict) and isinstance(second_values, dict)
    assert {"S": "one"} in first_values.values() and {"S": "two"} in second_values.values()
    assert {"S": "two"} not in first_values.values()
    # the condition's placeholders follow the cached ones without clashing
    assert len(first_values) == len(set(first_values)) == first["UpdateExpression"].count(":v") + 1  # type: ignore[union-attr]

    other_shape = planned("three", em="e@x")
    assert other_shape["UpdateExpression"] != first["UpdateExpression"]


class _Info(BaseModel):
    model: str = ""
    field: str = ""
    codec: str = ""
    segments: int = 0
    size: int = 0
    contains: str = ""
    exists: bool = False


class _Car(Model):
    id: Annotated[str, HashKey()]
    model: str = ""
    info: _Info | None = None


def test_every_field_name_is_a_path_even_names_of_path_methods() -> None:
    r = Renderer()
    condition = (
        (_Car.info.model == "T")
        & (_Car.info.field == "f")
        & (_Car.info.codec == "c")
        & (_Car.info.segments > 2)
        & (_Car.info.size == 3)
        & (_Car.info["contains"] == "x")
        & (_Car.info.exists == True)  # noqa: E712 (a condition, not a truth test)
        & (_Car.model == "S")
    )
    rendered = render_condition(condition, r)
    for ref, name in sorted(r.names.items(), reverse=True):  # #n10 before #n1
        rendered = rendered.replace(ref, name)
    for name in ("model", "field", "codec", "segments", "size", "contains", "exists"):
        assert f"info.{name}" in rendered
    assert "(model = " in rendered
    # the methods stay reachable through the class
    assert "size(" in render_condition(Path.size(_Car.info) > 1, Renderer())
    assert "attribute_exists" in render_condition(Path.exists(_Car.info), Renderer())
    # a nested model without such fields keeps the methods
    assert "size(" in render_condition(Post.address.size() > 1, Renderer())


def test_empty_values_stored_as_absence_compare_as_absence() -> None:
    def text(condition: object) -> str:
        r = Renderer()
        rendered = render_condition(condition, r)  # type: ignore[arg-type]
        for ref, name in r.names.items():
            rendered = rendered.replace(ref, name)
        return rendered

    for empty in (set(), frozenset(), [], {}):
        assert text(Post.tags == empty) == "attribute_not_exists(tags)"
        assert text(Post.tags != empty) == "attribute_exists(tags)"
    # a dynamic value stores an empty set as no attribute too
    assert text(Everything.anything["x"] == set()) == "attribute_not_exists(anything.x)"
    # an empty list or map is stored as such: it is compared, not tested for absence
    r = Renderer()
    assert render_condition(Post.history == [], r) == "#n0 = :v0"
    assert r.values == {":v0": {"L": []}}
    assert text(Post.tags == {"a"}) == "tags = :v0"


def test_an_int_field_compares_with_any_number_but_stores_only_ints() -> None:
    r = Renderer()
    render_condition((Post.views > 2.5) & Post.views.between(Decimal("0.5"), 9), r)
    assert list(r.values.values()) == [{"N": "2.5"}, {"N": "0.5"}, {"N": "9"}]
    for store in (
        lambda: Post.views.set(2.5),
        lambda: Post.views.add(0.5),
        lambda: Post.views.set_if_missing(Decimal("1.5")),
        lambda: Post.history[0]["x"].set(1.5),
        lambda: Post.views.set(Post.views + 0.5),
    ):
        with pytest.raises(InvalidCondition, match="expected int"):
            store()


lone_surrogate = st.characters(categories=["Cs"])
with_surrogate = st.tuples(user_text, lone_surrogate).map("".join)


@settings(max_examples=100, deadline=None)
@given(bad=with_surrogate, where=st.integers(0, 6))
def test_a_lone_surrogate_never_reaches_a_request(bad: str, where: int) -> None:
    builders = [
        lambda: Post.content == bad,
        lambda: Post.content.begins_with(bad),
        lambda: Post.tags.contains(bad),
        lambda: Post.history[0][bad].exists(),
        lambda: Post.content.in_(["ok", bad]),
        lambda: Post.content.set(bad),
        lambda: Post.address.city.set_if_missing(bad),
    ]
    with pytest.raises(InvalidCondition, match=r"surrogate|cannot name"):
        builders[where]()
