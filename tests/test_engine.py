"""Engine against real servers (moto fast and slow path, dynalite): items and tables."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated
from uuid import UUID, uuid4

import pytest

from _models import Account, Address, Everything, Expiring, Post, Shared1, Shared2
from _wire import raw_call, raw_item
from adyn import (
    ConstraintViolation,
    Engine,
    EngineClosed,
    HashKey,
    InvalidCondition,
    InvalidItem,
    InvalidModel,
    MissingObjects,
    Model,
    NotBound,
    RangeKey,
    TableMismatch,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def new_post(forum: str = "dynamo", **fields: object) -> Post:
    data: dict[str, object] = {"forum": forum, "id": uuid4(), "user": uuid4(), "date": NOW}
    data.update(fields)
    return Post(**data)  # type: ignore[arg-type]


@pytest.fixture
async def posts(engine: Engine) -> Engine:
    await engine.bind(Post)
    return engine


async def test_save_then_get_returns_an_equal_object(posts: Engine) -> None:
    post = new_post(tags={"a", "b"}, address=Address(city="Oslo"), history=[{"x": 1}], em="e@x")
    await posts.save(post)
    same = await posts.get(Post, forum="dynamo", id=post.id)
    assert same == post
    assert await posts.get(Post, forum="dynamo", id=uuid4()) is None
    assert await posts.get(Post, forum="dynamo", id=post.id, consistent=True) == post


async def test_save_sends_only_changed_fields_and_never_touches_unknown_attributes(
    posts: Engine,
) -> None:
    post = new_post(content="first")
    await posts.save(post)
    key = {"forum": {"S": "dynamo"}, "id": {"S": str(post.id)}}
    # an attribute the model does not declare, written by someone else
    await raw_call(
        posts,
        "UpdateItem",
        {
            "TableName": posts.table_name(Post),
            "Key": key,
            "UpdateExpression": "SET legacy = :v, content = :c",
            "ExpressionAttributeValues": {":v": {"S": "keep me"}, ":c": {"S": "theirs"}},
        },
    )
    loaded = await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    assert loaded is not None and loaded.content == "theirs"
    loaded.views = 7
    await posts.save(loaded)  # only `views` changed: content must stay as stored
    item = await raw_item(posts, Post, key)
    assert item["legacy"] == {"S": "keep me"}
    assert item["views"] == {"N": "7"}
    assert item["content"] == {"S": "theirs"}


async def test_setting_a_field_to_none_removes_the_attribute(posts: Engine) -> None:
    post = new_post(em="a@b", address=Address(city="x"))
    await posts.save(post)
    post.email = None
    post.address = None
    await posts.save(post)
    item = await raw_item(posts, Post, {"forum": {"S": "dynamo"}, "id": {"S": str(post.id)}})
    assert "em" not in item and "address" not in item
    same = await posts.get(Post, forum="dynamo", id=post.id)
    assert same is not None and same.email is None and same.address is None


async def test_save_with_a_condition_raises_constraint_violation_carrying_the_object(
    posts: Engine,
) -> None:
    post = new_post(views=20)
    await posts.save(post)
    post.content = "changed"
    with pytest.raises(ConstraintViolation) as info:
        await posts.save(post, condition=Post.views < 10)
    assert info.value.obj is post
    stored = await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    assert stored is not None and stored.content == ""
    await posts.save(post, condition=Post.views >= 10)
    stored = await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    assert stored is not None and stored.content == "changed"


async def test_atomic_save_only_succeeds_when_the_item_is_unchanged_since_loaded(
    posts: Engine,
) -> None:
    post = new_post()
    await posts.save(post, atomic=True)  # new object: only if no item exists
    twin = Post(**post.model_dump())
    with pytest.raises(ConstraintViolation):
        await posts.save(twin, atomic=True)
    mine = await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    theirs = await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    assert mine is not None and theirs is not None
    theirs.views = 1
    await posts.save(theirs, atomic=True)
    mine.content = "late"
    with pytest.raises(ConstraintViolation):
        await posts.save(mine, atomic=True)
    fresh = await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    assert fresh is not None and fresh.views == 1 and fresh.content == ""


async def test_version_fields_lock_optimistically(engine: Engine) -> None:
    await engine.bind(Account)
    account = Account(id="acc", balance=10)
    await engine.save(account)
    assert account.version == 1
    first = await engine.get(Account, id="acc", consistent=True)
    second = await engine.get(Account, id="acc", consistent=True)
    assert first is not None and second is not None
    first.balance = 20
    await engine.save(first)
    assert first.version == 2
    second.balance = 30
    with pytest.raises(ConstraintViolation):
        await engine.save(second)
    with pytest.raises(ConstraintViolation):
        await engine.delete(second)
    stored = await engine.get(Account, id="acc", consistent=True)
    assert stored is not None and (stored.balance, stored.version) == (20, 2)
    with pytest.raises(ConstraintViolation):  # a never-saved object must not overwrite
        await engine.save(Account(id="acc", balance=99))
    await engine.delete(first)
    assert await engine.get(Account, id="acc", consistent=True) is None


async def test_update_applies_actions_and_returns_the_new_item(posts: Engine) -> None:
    post = new_post(views=3, tags={"old", "keep"}, em="x@y", score=Decimal("1.5"))
    await posts.save(post)
    updated = await posts.update(
        Post,
        key={"forum": "dynamo", "id": post.id},
        actions=[
            Post.views.add(1),
            Post.tags.delete({"old"}),
            Post.content.set("hi"),
            Post.history.append([{"a": 1}]),
            Post.score.set(Post.score + 2),
            Post.email.remove(),
        ],
        condition=Post.views < 1000,
    )
    assert updated.views == 4 and updated.tags == {"keep"} and updated.content == "hi"
    assert updated.history == [{"a": 1}] and updated.score == Decimal("3.5")
    assert updated.email is None
    again = await posts.update(
        Post,
        key={"forum": "dynamo", "id": post.id},
        actions=[Post.history.prepend([{"z": 0}]), Post.address.set_if_missing(Address(city="a"))],
    )
    assert again.history == [{"z": 0}, {"a": 1}] and again.address == Address(city="a")
    with pytest.raises(ConstraintViolation):
        await posts.update(
            Post,
            key={"forum": "dynamo", "id": post.id},
            actions=[Post.views.add(1)],
            condition=Post.views > 1000,
        )
    with pytest.raises(InvalidCondition):
        await posts.update(
            Post,
            key={"forum": "dynamo", "id": post.id},
            actions=[Post.views.add(1), Post.views.set_if_missing(0)],
        )


async def test_save_and_delete_several_objects_concurrently(posts: Engine) -> None:
    batch = [new_post(views=i) for i in range(30)]
    await posts.save(*batch)
    loaded = [Post.model_construct(forum="dynamo", id=p.id) for p in batch]
    await posts.load(*loaded)
    assert [p.views for p in loaded] == list(range(30))
    await posts.delete(*batch[:10])
    assert await posts.query(Post, key=Post.forum == "dynamo", consistent=True).count() == 20


async def test_load_fills_objects_and_names_every_missing_one(posts: Engine) -> None:
    stored = [new_post(views=i) for i in range(250)]
    await posts.save(*stored)
    wanted = [Post.model_construct(forum="dynamo", id=p.id) for p in stored]
    ghosts = [Post.model_construct(forum="dynamo", id=uuid4()) for _ in range(3)]
    with pytest.raises(MissingObjects) as info:
        await posts.load(*wanted, *ghosts)
    assert info.value.objects == ghosts
    assert [w.views for w in wanted] == list(range(250))
    assert wanted[5] == stored[5]


async def test_load_tells_apart_keys_whose_values_trade_places(engine: Engine) -> None:
    await engine.bind(Shared1)
    ab = Shared1(pk="a", sk="b", name="ab")
    ba = Shared1(pk="b", sk="a", name="ba")
    await engine.save(ab, ba)
    x, y = Shared1.model_construct(pk="b", sk="a"), Shared1.model_construct(pk="a", sk="b")
    await engine.load(x, y)
    assert (x.name, y.name) == ("ba", "ab")


async def test_models_sharing_a_table_without_a_discriminator_are_refused_at_bind(
    engine: Engine,
) -> None:
    assert engine.table_name(Shared1) == engine.table_name(Shared2)
    with pytest.raises(InvalidModel) as info:
        await engine.bind(Shared1, Shared2)
    text = str(info.value)
    assert "Shared1" in text and "Shared2" in text
    assert "discriminator" in text and "callable" in text  # both ways out are named
    with pytest.raises(NotBound):
        await engine.get(Shared1, pk="p", sk="1")
    # one at a time, the second bind finds the first model on the table
    await engine.bind(Shared1)
    with pytest.raises(InvalidModel, match=r"Shared2.*Shared1|Shared1.*Shared2"):
        await engine.bind(Shared2)


async def test_binary_values_are_stored_raw(engine: Engine) -> None:
    await engine.bind(Everything)
    raw = bytes(range(256))
    await engine.save(Everything(pk="bin", raw=raw, bs={b"\x00", b"\xff"}))
    item = await raw_item(engine, Everything, {"pk": {"S": "bin"}, "sk": {"N": "0"}})
    stored = item["raw"]["B"]  # type: ignore[index]
    as_bytes = stored if isinstance(stored, bytes) else base64.b64decode(stored)
    assert as_bytes == raw  # decoded once by the transport: the server holds the raw bytes
    loaded = await engine.get(Everything, pk="bin", sk=0)
    assert loaded is not None and loaded.raw == raw and loaded.bs == {b"\x00", b"\xff"}


async def test_every_type_round_trips_through_the_server(engine: Engine) -> None:
    await engine.bind(Everything)
    obj = Everything(
        pk="all",
        sk=-5,
        s="text",
        i=10**37,
        f=0.1,
        d=Decimal("-1.000000000000000000000000000000000001"),
        b=False,
        raw=b"\x01",
        u=UUID(int=1),
        when=NOW,
        stamp=NOW,
        day=NOW.date(),
        color="red",
        level=2,
        mode="a",
        ss={"x"},
        ns={Decimal("1.5"), Decimal(2)},
        bs={b"a"},
        items=[1, 2],
        pair=("p", "q"),
        mapping={"k": 1},
        address=Address(city="c", zip=None),
        anything={"n": None, "l": [1, "a"], "m": {"b": True}},
    )
    await engine.save(obj)
    assert await engine.get(Everything, pk="all", sk=-5) == obj


async def test_invalid_items_are_refused_before_anything_is_sent(engine: Engine) -> None:
    await engine.bind(Everything)
    big = Everything(pk="big", s="x" * 410_000)
    with pytest.raises(InvalidItem, match="400 KB"):
        await engine.save(big)
    ok = Everything(pk="ok")
    bad = Everything.model_construct(pk="", sk=0)
    with pytest.raises(InvalidItem) as info:
        await engine.save(ok, bad)  # every object is checked before any is sent
    assert (info.value.model, info.value.field) == ("Everything", "pk")
    assert await engine.get(Everything, pk="ok", sk=0) is None
    with pytest.raises(InvalidItem, match="missing key"):
        await engine.get(Everything, pk="ok")
    with pytest.raises(InvalidItem, match="not a key field"):
        await engine.get(Everything, pk="ok", sk=0, s="x")


async def test_bind_verifies_existing_tables_and_lists_every_difference(engine: Engine) -> None:
    await engine.bind(Post)
    await engine.bind(Post, create=False)  # verifying an exact table is fine

    class Clash(Model):
        class Meta:
            table_name = "posts"

        forum: Annotated[int, HashKey()]
        other: Annotated[str, RangeKey()]
        views: int = 0

    class Wider(Post):
        class Meta:
            table_name = "posts"

        from adyn import GlobalIndex as _G

        by_content = _G(hash_key="content")

    # Another engine (another service) on the same server and tables, since this engine
    # refuses a second model on a table it has bound; it borrows the fixture's connections.
    class Borrowed:
        call = engine.transport.call

    async with Engine(
        transport=Borrowed(), table_name_template=engine.table_name_template
    ) as other:
        with pytest.raises(TableMismatch) as info:
            await other.bind(Clash)
        text = str(info.value)
        assert "key schema" in text and "'forum' has type S" in text
        with pytest.raises(TableMismatch) as info:
            await other.bind(Wider, create=False)
        assert info.value.differences == ["global index 'by_content' is missing"]

    class Absent(Model):
        pk: Annotated[str, HashKey()]

    with pytest.raises(TableMismatch, match="does not exist"):
        await engine.bind(Absent, create=False)


@pytest.mark.moto_only
async def test_bind_enables_ttl(engine: Engine) -> None:
    await engine.bind(Expiring)
    response = await raw_call(
        engine, "DescribeTimeToLive", {"TableName": engine.table_name(Expiring)}
    )
    ttl = response["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert ttl["AttributeName"] == "expires"
    soon = NOW + timedelta(days=1)
    await engine.save(Expiring(id="x", expires=soon))
    item = await raw_item(engine, Expiring, {"id": {"S": "x"}})
    assert item["expires"] == {"N": str(int(soon.timestamp()))}


async def test_using_an_unbound_model_or_a_closed_engine_is_a_clear_error(
    backend: str, engine: Engine
) -> None:
    with pytest.raises(NotBound, match=r"engine.bind\(Account\)"):
        await engine.get(Account, id="x")
    other = Engine(endpoint_url=backend, aws_secret_access_key="s3cr3t", aws_access_key_id="AKID")
    with pytest.raises(EngineClosed, match="not open"):
        await other.bind(Account)
    assert "s3cr3t" not in repr(other) and "s3cr3t" not in repr(other.transport)
    await engine.bind(Account)
    await engine.close()
    with pytest.raises(EngineClosed, match="closed"):
        await engine.get(Account, id="x")
    with pytest.raises(EngineClosed, match="closed"):
        engine.query(Account, key=Account.id == "x")


async def test_a_stored_value_of_the_wrong_type_names_the_field(posts: Engine) -> None:
    post = new_post()
    await posts.save(post)
    await raw_call(
        posts,
        "UpdateItem",
        {
            "TableName": posts.table_name(Post),
            "Key": {"forum": {"S": "dynamo"}, "id": {"S": str(post.id)}},
            "UpdateExpression": "SET #v = :v",
            "ExpressionAttributeNames": {"#v": "content"},
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
    )
    with pytest.raises(InvalidItem, match="not of DynamoDB type S") as info:
        await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    assert (info.value.model, info.value.field) == ("Post", "content")


async def test_a_failed_update_names_the_item_by_its_key(posts: Engine) -> None:
    post = new_post()
    await posts.save(post)
    with pytest.raises(ConstraintViolation) as info:
        await posts.update(
            Post,
            key={"forum": "dynamo", "id": post.id},
            actions=[Post.views.add(1)],
            condition=Post.views > 5,
        )
    assert info.value.obj == {"forum": "dynamo", "id": post.id}


@pytest.mark.moto_only  # dynalite does not return the stored item with a failed condition
async def test_a_failed_condition_returns_the_stored_item_as_an_object(posts: Engine) -> None:
    post = new_post(views=20, content="stored")
    await posts.save(post)
    post.content = "mine"
    with pytest.raises(ConstraintViolation) as info:
        await posts.save(post, condition=Post.views < 10)
    assert isinstance(info.value.item, Post)
    assert (info.value.item.content, info.value.item.views) == ("stored", 20)
    with pytest.raises(ConstraintViolation) as info:
        await posts.delete(post, condition=Post.views < 10)
    assert info.value.item == await posts.get(Post, forum="dynamo", id=post.id, consistent=True)
    ghost = new_post()
    with pytest.raises(ConstraintViolation) as info:
        await posts.save(ghost, condition=Post.views > 0)
    assert info.value.item is None  # nothing was stored
