"""Expressions render with placeholders only, and reject operators a field's type cannot take."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _models import Everything, Post
from adyn import InvalidCondition
from adyn._writes import _check_overlaps, plan_save
from adyn.expressions import Renderer, render_actions, render_condition
from adyn.schema import schema_of

# Strings long enough that a chance match with placeholder text ("#n0", ":v1") is impossible.
user_text = st.text(min_size=4, max_size=30).filter(lambda s: s.strip() and s not in "#n:v")


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
    for s in (value, key, member):
        assert s not in text
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
    for s in (value, key, member):
        assert s not in text


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
