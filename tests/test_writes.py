"""Writes that tell the truth, on every backend: object updates (`engine.update(obj, ...)`),
`del obj.field`, conditions on empty values, and bad values refused before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import uuid4

import pytest
from pydantic import BaseModel

from _models import Account, Post
from _wire import raw_item
from adyn import (
    CallEvent,
    ConstraintViolation,
    Engine,
    GlobalIndex,
    HashKey,
    InvalidArgument,
    InvalidCondition,
    InvalidItem,
    InvalidQuery,
    Model,
    RangeKey,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def new_post(**fields: object) -> Post:
    data: dict[str, object] = {"forum": "f", "id": uuid4(), "user": uuid4(), "date": NOW}
    data.update(fields)
    return Post(**data)  # type: ignore[arg-type]


class Listened:
    """The calls an engine sends (through a listener)."""

    def __init__(self, engine: Engine) -> None:
        self.operations: list[str] = []
        engine.listeners.append(self._heard)

    def _heard(self, event: CallEvent) -> None:
        self.operations.append(event.operation)


# ---------------------------------------------------------------- object updates


async def test_update_of_an_object_refreshes_it_in_place(engine: Engine) -> None:
    await engine.bind(Post)
    post = new_post(views=1, content="a")
    await engine.save(post)
    other = await engine.get(Post, forum="f", id=post.id)
    assert other is not None
    await engine.update(other, actions=[Post.content.set("b")])  # someone else's change

    same = await engine.update(post, actions=[Post.views.add(2), Post.tags.add({"x"})])
    assert same is post
    assert (post.views, post.content, post.tags) == (3, "b", {"x"})  # the stored result
    post.views = 10  # a refreshed object saves as a diff of what it now holds
    await engine.save(post)
    assert (await raw_item(engine, Post, {"forum": {"S": "f"}, "id": {"S": str(post.id)}}))[
        "content"
    ] == {"S": "b"}

    with pytest.raises(ConstraintViolation) as caught:
        await engine.update(post, actions=[Post.views.add(1)], condition=Post.views > 100)
    assert caught.value.obj is post and post.views == 10


async def test_update_of_an_object_needs_its_item(engine: Engine) -> None:
    await engine.bind(Post)
    ghost = new_post()
    listened = Listened(engine)
    with pytest.raises(ConstraintViolation):
        await engine.update(ghost, actions=[Post.views.add(1)])
    assert listened.operations == ["UpdateItem"]
    assert await engine.get(Post, forum="f", id=ghost.id) is None  # nothing was created


async def test_update_of_an_object_checks_and_increments_its_version(engine: Engine) -> None:
    await engine.bind(Account)
    mine = Account(id="a", balance=10)
    await engine.save(mine)
    theirs = await engine.get(Account, id="a")
    assert theirs is not None and theirs.version == mine.version == 1

    await engine.update(mine, actions=[Account.balance.add(5)])
    assert (mine.balance, mine.version) == (15, 2)
    with pytest.raises(ConstraintViolation):  # theirs is a version behind
        await engine.update(theirs, actions=[Account.balance.add(1)])
    assert (theirs.balance, theirs.version) == (10, 1)
    await engine.load(theirs)
    await engine.update(theirs, actions=[Account.balance.add(1)])
    assert (theirs.balance, theirs.version) == (16, 3)

    with pytest.raises(InvalidCondition, match="Version"):
        await engine.update(mine, actions=[Account.version.set(7)])
    with pytest.raises(InvalidArgument, match="actions="):
        await engine.update(mine, [Account.balance.add(1)])  # type: ignore[call-overload]
    # the key form stays: no check, the version still counts
    by_key = await engine.update(Account, {"id": "a"}, [Account.balance.add(1)])
    assert (by_key.balance, by_key.version) == (17, 4)


# ---------------------------------------------------------------- del obj.field


async def test_del_then_save_removes_the_attribute(engine: Engine) -> None:
    await engine.bind(Post)
    post = new_post(content="text", em="e@x", tags={"t"})
    await engine.save(post)
    loaded = await engine.get(Post, forum="f", id=post.id)
    assert loaded is not None
    del loaded.content
    del loaded.email
    del loaded.tags
    await engine.save(loaded)
    key = {"forum": {"S": "f"}, "id": {"S": str(post.id)}}
    item = await raw_item(engine, Post, key)
    assert "content" not in item and "em" not in item and "tags" not in item
    again = await engine.get(Post, forum="f", id=post.id)
    assert again is not None and (again.content, again.email, again.tags) == ("", None, set())

    # a partial object (a projection) keeps what it did not read
    partial = await engine.query(Post, key=Post.forum == "f", projection=["views"]).one()
    partial.views = 3
    await engine.save(partial)
    assert (await raw_item(engine, Post, key))["user"] == {"S": str(post.user)}


class Parcel(Model):
    class Meta:
        table_name = "parcels"

    id: Annotated[str, HashKey()]
    carrier: str  # required: an item without it could not be loaded
    code: str | None = None
    by_code = GlobalIndex(hash_key="code", projection="keys")


async def test_a_required_field_cannot_be_deleted_or_set_to_none(engine: Engine) -> None:
    await engine.bind(Parcel)
    parcel = Parcel(id="p", carrier="post")
    await engine.save(parcel)
    listened = Listened(engine)
    del parcel.carrier
    with pytest.raises(InvalidItem) as caught:
        await engine.save(parcel)
    assert (caught.value.model, caught.value.field) == ("Parcel", "carrier")
    parcel.carrier = None  # type: ignore[assignment]
    with pytest.raises(InvalidItem, match="required field has no value"):
        await engine.save(parcel)
    with pytest.raises(InvalidItem, match="carrier"):
        async with engine.batch() as batch:
            batch.save(parcel)
    assert listened.operations == []


# ---------------------------------------------------------------- empty values


async def test_empty_sets_in_conditions_mean_absence(engine: Engine) -> None:
    await engine.bind(Post)
    plain, tagged = new_post(), new_post(tags={"a"})
    await engine.save(plain, tagged)
    untagged = await engine.scan(Post, filter=Post.tags == set()).all()
    assert [p.id for p in untagged] == [plain.id]
    assert [p.id for p in await engine.scan(Post, filter=Post.tags != []).all()] == [tagged.id]
    plain.content = "x"
    await engine.save(plain, condition=Post.tags == {})
    with pytest.raises(ConstraintViolation):
        await engine.save(tagged, condition=Post.tags == set())


async def test_empty_index_key_values_are_refused_before_sending(engine: Engine) -> None:
    await engine.bind(Post, Parcel)
    listened = Listened(engine)
    parcel = Parcel(id="p", carrier="post", code="")
    with pytest.raises(InvalidItem) as caught:
        await engine.save(parcel)
    assert (caught.value.model, caught.value.field) == ("Parcel", "code")
    assert "index key value cannot be empty" in str(caught.value)
    with pytest.raises(InvalidItem, match="code"):
        async with engine.batch() as batch:
            batch.save(parcel)
    with pytest.raises(InvalidItem, match="code"):
        await engine.update(Parcel, {"id": "p"}, [Parcel.code.set("")])
    assert listened.operations == []

    parcel.code = None  # no value: the item is simply not in the (sparse) index
    await engine.save(parcel)
    assert await engine.scan(Parcel.by_code).all() == []
    parcel.code = "c1"
    await engine.save(parcel)
    assert [p.id for p in await engine.query(Parcel.by_code, key=Parcel.code == "c1").all()] == [
        "p"
    ]


class Nested(BaseModel):
    model: str = ""
    field: str = ""
    size: int = 0


class Car(Model):
    class Meta:
        table_name = "cars"

    make: Annotated[str, HashKey()]
    serial: Annotated[int, RangeKey()]
    model: str = ""
    info: Nested = Nested()


async def test_every_field_name_works_as_a_path_on_the_server(engine: Engine) -> None:
    await engine.bind(Car)
    await engine.save(
        Car(make="m", serial=1, model="S", info=Nested(model="T", field="x", size=3)),
        Car(make="m", serial=2, info=Nested(model="Y")),
    )
    found = await engine.query(
        Car,
        key=Car.make == "m",
        filter=(Car.info.model == "T") & (Car.info.size == 3) & (Car.info["field"] == "x"),
    ).all()
    assert [c.serial for c in found] == [1]
    car = found[0]
    await engine.update(car, actions=[Car.info.model.set("3"), Car.model.set("X")])
    assert (car.info.model, car.model) == ("3", "X")


async def test_bad_values_are_refused_before_anything_is_sent(engine: Engine) -> None:
    await engine.bind(Post)
    post = new_post()
    await engine.save(post)
    listened = Listened(engine)
    post.views = 1.5  # type: ignore[assignment]  (pydantic does not validate assignments)
    with pytest.raises(InvalidItem, match=r"expected int, got float 1\.5") as caught:
        await engine.save(post)
    assert caught.value.field == "views"
    post.views = 1
    post.content = "lone \udc80 surrogate"
    with pytest.raises(InvalidItem, match="surrogate") as caught:
        await engine.save(post)
    assert caught.value.field == "content"
    with pytest.raises(InvalidItem, match="surrogate"):
        await engine.get(Post, forum="\ud800", id=post.id)
    with pytest.raises(InvalidCondition, match="surrogate"):
        engine.query(Post, key=Post.forum == "f", filter=Post.content.begins_with("\ud800"))
    with pytest.raises(InvalidQuery, match="key condition"):
        engine.query(Post, key=None)  # type: ignore[arg-type]
    assert listened.operations == []
