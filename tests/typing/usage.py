"""Correct use of adyn as mypy with `plugins = ["pydantic.mypy", "adyn.mypy"]` types it.

Must type-check clean (`assert_type` makes every inferred type part of the check). The suite
also runs `expressions()`: each of these must be accepted at run time too, so the static types
never refuse or allow what adyn itself would not.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import assert_type
from uuid import UUID, uuid4

from typed_models import Address, Color, Customer, Level, Post, Reply

from adyn import (
    Action,
    Condition,
    Engine,
    F,
    GlobalIndex,
    LocalIndex,
    Query,
    ReadTransaction,
    Scan,
    WriteTransaction,
)
from adyn.expressions import Arithmetic
from adyn.paths import (
    BytesPath,
    DynamicPath,
    ListPath,
    MapPath,
    ModelPath,
    NumberPath,
    OrderedPath,
    SetPath,
    SizeOf,
    StringPath,
    ValuePath,
)

NOW = datetime(2024, 5, 1, tzinfo=UTC)
UID = UUID(int=1)


def paths() -> None:
    """The path type of every kind of field."""
    assert_type(Post.flag, ValuePath[bool])
    assert_type(Post.views, NumberPath[int])
    assert_type(Post.ratio, NumberPath[float])
    assert_type(Post.score, NumberPath[Decimal])
    assert_type(Post.level, NumberPath[Level])
    assert_type(Post.forum, StringPath[str])
    assert_type(Post.id, StringPath[UUID])
    assert_type(Post.date, StringPath[datetime])
    assert_type(Post.day, StringPath[date])
    assert_type(Post.status, StringPath[str])
    assert_type(Post.email, StringPath[str])  # aliased ("em"): still its Python name
    assert_type(Post.expires, StringPath[datetime])
    assert_type(Post.blob, BytesPath)
    assert_type(Post.color, OrderedPath[Color])
    assert_type(Post.tags, SetPath[str])
    assert_type(Post.numbers, SetPath[int])
    assert_type(Post.frozen, SetPath[str])
    assert_type(Post.ranks, ListPath[int])
    assert_type(Post.pairs, ListPath[str])
    assert_type(Post.history, ListPath[dict[str, int]])
    assert_type(Post.counters, MapPath[int])
    assert_type(Post.address, ModelPath[Address])
    assert_type(Reply.views, NumberPath[int])  # inherited fields are paths of the subclass
    assert_type(Reply.parent, StringPath[UUID])
    # nested models, lists and maps
    assert_type(Post.address.city, StringPath[str])
    assert_type(Post.address.geo.lat, NumberPath[float])
    assert_type(Post.address.lines[0], StringPath[str])
    assert_type(Post.address["size"], NumberPath[int])  # a field named like a method
    assert_type(Post.history[0], MapPath[int])
    assert_type(Post.history[0]["a"], NumberPath[int])
    assert_type(Post.ranks[2], NumberPath[int])
    assert_type(Post.places[0].city, StringPath[str])
    assert_type(Post.counters["size"], NumberPath[int])
    assert_type(Post.tags.size(), SizeOf)
    # F is the identity on a typed path
    assert_type(F(Post.views), NumberPath[int])
    assert_type(F(Post.address).city, StringPath[str])
    # objects keep their Python types
    post = Post(forum="f", id=UID, user=UID, date=NOW)
    assert_type(post.views, int)
    assert_type(post.tags, set[str])


def indexes() -> None:
    assert_type(Post.by_user, GlobalIndex[Post])
    assert_type(Post.by_views, LocalIndex[Post])
    assert_type(Reply.by_user, GlobalIndex[Reply])


def expressions() -> list[Condition | Action | Arithmetic]:
    """Every operation the path types offer, on the fields that allow it."""
    return [
        # every path
        assert_type(Post.flag == True, Condition),  # noqa: E712 (a condition, not a bool)
        assert_type(Post.views != 3, Condition),
        assert_type(Post.email == None, Condition),  # noqa: E711 (means: not exists)
        assert_type(Post.views.in_([1, 2, 3]), Condition),
        assert_type(Post.email.exists(), Condition),
        assert_type(Post.email.not_exists(), Condition),
        assert_type(Post.email.is_(None), Condition),
        assert_type(Post.email.is_not(None), Condition),
        assert_type(Post.address.is_type("M"), Condition),
        assert_type(Post.content.set("x"), Action),
        assert_type(Post.email.set(None), Action),
        assert_type(Post.content.set(Post.forum), Action),
        assert_type(Post.email.set_if_missing("a@b.c"), Action),
        assert_type(Post.email.remove(), Action),
        assert_type(Post.flag.set(True), Action),
        # numbers
        assert_type(Post.views > 3, Condition),
        assert_type(Post.views <= 3, Condition),
        assert_type(Post.views.between(1, 10), Condition),
        assert_type(Post.score >= Decimal("1.5"), Condition),
        assert_type(Post.views.add(1), Action),
        assert_type(Post.score.add(Decimal("0.5")), Action),
        assert_type(Post.score + 2, Arithmetic),
        assert_type(Post.views - Post.ratio, Arithmetic),
        assert_type(Post.score.set(Post.score + 2), Action),
        assert_type(Post.level == Level.HIGH, Condition),
        # strings and values stored as strings
        assert_type(Post.forum.begins_with("dyn"), Condition),
        assert_type(Post.content.contains("amo"), Condition),
        assert_type(Post.content.size() > 3, Condition),
        assert_type(Post.id.begins_with("0000"), Condition),
        assert_type(Post.id == UID, Condition),
        assert_type(Post.date < NOW, Condition),
        assert_type(Post.date.begins_with("2024-05"), Condition),
        assert_type(Post.day == date(2024, 5, 1), Condition),
        assert_type(Post.status == "open", Condition),
        assert_type(Post.color == Color.BLUE, Condition),
        # bytes
        assert_type(Post.blob.begins_with(b"\x00"), Condition),
        assert_type(Post.blob.size().between(1, 4), Condition),
        # sets, typed by member
        assert_type(Post.tags.add({"new"}), Action),
        assert_type(Post.tags.delete({"old"}), Action),
        assert_type(Post.tags.contains("x"), Condition),
        assert_type(Post.numbers.add({3}), Action),
        assert_type(Post.tags.size() == 2, Condition),
        # lists
        assert_type(Post.history.append([{"a": 1}]), Action),
        assert_type(Post.ranks.prepend([0]), Action),
        assert_type(Post.ranks.contains(3), Condition),
        assert_type(Post.ranks[0] > 1, Condition),
        assert_type(Post.history[0]["a"].add(1), Action),
        assert_type(Post.ranks[1].remove(), Action),
        # maps and nested models
        assert_type(Post.counters["size"] >= 3, Condition),
        assert_type(Post.counters.size() > 0, Condition),
        assert_type(Post.address.city.begins_with("Os"), Condition),
        assert_type(Post.address.zip.set("0150"), Action),
        assert_type(Post.address.set(Address(city="Rome")), Action),
        assert_type(Post.places[0].geo.lat > 50.0, Condition),
        # combining
        assert_type((Post.forum == "f") & Post.id.begins_with("a"), Condition),
        assert_type((Post.views > 100) | ~Post.tags.contains("java"), Condition),
    ]


async def engine_calls(engine: Engine) -> None:
    """Typed results wherever the model is known."""
    key = (Post.forum == "f") & (Post.id == UID)
    assert_type(engine.query(Post, key=key), Query[Post])
    assert_type(engine.query(Post.by_user, key=Post.user == UID), Query[Post])
    assert_type(engine.query(Reply.by_user, key=Reply.user == UID), Query[Reply])
    assert_type(engine.scan(Post, filter=Post.tags.contains("x")), Scan[Post])
    assert_type(engine.scan(Post.by_views), Scan[Post])
    query = engine.query(Post, key=Post.forum == "f", filter=Post.views > 10)
    assert_type(await query.first(), Post | None)
    assert_type(await query.one(), Post)
    assert_type(await query.all(), list[Post])
    assert_type(await query.count(), int)
    async for page in query.pages():
        assert_type(page.items, list[Post])
        assert_type(page.token, str | None)
    async for post in query:
        assert_type(post, Post)
    assert_type(await engine.get(Post, forum="f", id=UID), Post | None)
    updated = await engine.update(
        Post, key={"forum": "f", "id": UID}, actions=[Post.views.add(1)], condition=Post.views < 10
    )
    assert_type(updated, Post)
    keyed = Post.model_construct(forum="f", id=uuid4())  # key-only object, as API.md shows
    assert_type(keyed, Post)
    ada = Customer(id="c1", name="Ada")  # pk and sk come from Meta.keys
    assert_type(await engine.get(Customer, id="c1"), Customer | None)
    await engine.save(ada)
    await engine.load(keyed)
    await engine.save(keyed, condition=Post.views.exists())
    await engine.delete(keyed, condition=Post.views == 0)
    async with engine.transaction() as tx:
        assert_type(tx, WriteTransaction)
        tx.save(keyed, condition=Post.views < 5)
        tx.check(keyed, Post.views > 0)
        tx.update(Post, key={"forum": "f", "id": UID}, actions=[Post.tags.add({"t"})])
    async with engine.transaction(mode="r") as reads:
        assert_type(reads, ReadTransaction)
        reads.load(keyed)


def dynamic(name: str) -> DynamicPath:
    """A path the checker knows nothing about accepts everything (checked at run time)."""
    path: DynamicPath = getattr(Post, name)
    return path
