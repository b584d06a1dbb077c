"""Correct use of adyn for checkers without adyn's plugin: `F(...)` gives typed paths.

Must type-check clean under pyright (strict), mypy --strict without plugins, and mypy --strict
with both plugins: code written this way works for every user. The suite also runs
`expressions()` (each must be accepted at run time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import assert_type
from uuid import UUID

from typed_models import Address, Color, Post, Reply

from adyn import (
    Action,
    Condition,
    Engine,
    F,
    GlobalIndex,
    Query,
    ReadTransaction,
    Scan,
    WriteTransaction,
)
from adyn.expressions import Arithmetic
from adyn.paths import (
    BytesPath,
    ListPath,
    MapPath,
    ModelPath,
    NumberPath,
    OrderedPath,
    SetPath,
    StringPath,
    ValuePath,
)

NOW = datetime(2024, 5, 1, tzinfo=UTC)
UID = UUID(int=1)


def paths() -> None:
    assert_type(F(Post.flag), ValuePath[bool])
    assert_type(F(Post.views), NumberPath[int])
    assert_type(F(Post.score), NumberPath[Decimal])
    assert_type(F(Post.forum), StringPath[str])
    assert_type(F(Post.id), StringPath[UUID])
    assert_type(F(Post.date), StringPath[datetime])
    assert_type(F(Post.email), StringPath[str])  # Optional[str]: the path of a str
    assert_type(F(Post.blob), BytesPath)
    assert_type(F(Post.color), OrderedPath[Color])
    assert_type(F(Post.tags), SetPath[str])
    assert_type(F(Post.frozen), SetPath[str])
    assert_type(F(Post.ranks), ListPath[int])
    assert_type(F(Post.pairs), ListPath[str])
    assert_type(F(Post.history), ListPath[dict[str, int]])
    assert_type(F(Post.history)[0], MapPath[int])
    assert_type(F(Post.history)[0]["a"], NumberPath[int])
    assert_type(F(Post.counters), MapPath[int])
    assert_type(F(Post.counters)["size"], NumberPath[int])
    assert_type(F(Post.address), ModelPath[Address])
    assert_type(F(Post.places)[0], ModelPath[Address])
    assert_type(F(Reply.parent), StringPath[UUID])


def indexes() -> None:
    assert_type(Post.by_user, GlobalIndex[Post])
    assert_type(Reply.by_user, GlobalIndex[Reply])


def expressions() -> list[Condition | Action | Arithmetic]:
    return [
        F(Post.views) > 3,
        F(Post.views).between(1, 10),
        F(Post.views).in_([1, 2]),
        F(Post.views).add(1),
        F(Post.score).set(F(Post.score) + 2),
        F(Post.views) - 1,
        F(Post.forum).begins_with("dyn"),
        F(Post.content).contains("x"),
        F(Post.content).size() > 3,
        F(Post.id).begins_with("0000"),
        F(Post.date).begins_with("2024"),
        F(Post.blob).begins_with(b"\x00"),
        F(Post.tags).add({"x"}),
        F(Post.tags).delete({"y"}),
        F(Post.tags).contains("x"),
        F(Post.numbers).add({1}),
        F(Post.history).append([{"a": 1}]),
        F(Post.ranks).prepend([0]),
        F(Post.ranks)[0] > 1,
        F(Post.history)[0]["a"].add(1),
        F(Post.counters)["size"] >= 3,
        F(Post.address).exists(),
        F(Post.address).set(Address(city="Rome")),
        F(Post.address).city.begins_with("Os"),  # untyped here: the plugin types it
        F(Post.email).remove(),
        F(Post.email).set_if_missing("a@b.c"),
        F(Post.flag).is_type("BOOL"),
        F(Post.forum).begins_with("f") & (Post.views > 3),
        (Post.views > 3) & F(Post.forum).begins_with("f"),
        (Post.views > 3) | F(Post.tags).contains("x"),
        ~F(Post.tags).contains("java"),
    ]


async def engine_calls(engine: Engine, post: Post) -> None:
    """A comparison's static type (bool without the plugin) is what key/filter/condition take."""
    query = engine.query(Post, key=(Post.forum == "f") & F(Post.id).begins_with("a"))
    assert_type(query, Query[Post])
    assert_type(engine.query(Post.by_user, key=Post.user == UID), Query[Post])
    assert_type(engine.scan(Post, filter=Post.views > 10), Scan[Post])
    assert_type(await query.first(), Post | None)
    assert_type(await query.all(), list[Post])
    assert_type(await engine.get(Post, forum="f", id=UID), Post | None)
    updated = await engine.update(
        Post,
        key={"forum": "f", "id": UID},
        actions=[F(Post.views).add(1)],
        condition=Post.views < 9,
    )
    assert_type(updated, Post)
    await engine.save(post, condition=Post.views == 0)
    await engine.delete(post, condition=F(Post.views).exists())
    keyed = Post.model_construct(forum="f", id=UID)
    assert_type(keyed, Post)
    async with engine.transaction() as tx:
        assert_type(tx, WriteTransaction)
        tx.save(post, condition=Post.views < 5)
        tx.check(keyed, Post.views > 0)
    async with engine.transaction(mode="r") as reads:
        assert_type(reads, ReadTransaction)
        reads.load(keyed)
