"""The fake DynamoDB Streams service and its virtual clock behave like the real service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
import pytest

from adyn import Engine, HashKey, Model
from adyn.errors import DynamoError, Throttled
from adyn.stream import SystemClock
from adyn.testing.fakes import FakeStreams, VirtualClock, plain_source

Wire = dict[str, Any]


def key(name: str) -> Wire:
    return {"id": {"S": name}}


def item(name: str, n: int) -> Wire:
    return {"id": {"S": name}, "n": {"N": str(n)}}


async def all_shards(fake: FakeStreams, arn: str, limit: int = 100) -> list[Wire]:
    shards: list[Wire] = []
    request: Wire = {"StreamArn": arn, "Limit": limit}
    while True:
        description = (await fake("DescribeStream", request))["StreamDescription"]
        shards.extend(description["Shards"])
        if "LastEvaluatedShardId" not in description:
            return shards
        request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]


async def iterator(fake: FakeStreams, arn: str, shard_id: str, kind: str, seq: str = "") -> str:
    request = {"StreamArn": arn, "ShardId": shard_id, "ShardIteratorType": kind}
    if seq:
        request["SequenceNumber"] = seq
    return str((await fake("GetShardIterator", request))["ShardIterator"])


async def read_all(fake: FakeStreams, arn: str, shard_id: str) -> list[Wire]:
    it: str | None = await iterator(fake, arn, shard_id, "TRIM_HORIZON")
    records: list[Wire] = []
    while it is not None:
        page = await fake("GetRecords", {"ShardIterator": it})
        records.extend(page["Records"])
        it = page.get("NextShardIterator")
        if not page["Records"] and it is not None and not await closed(fake, arn, shard_id):
            break
    return records


async def closed(fake: FakeStreams, arn: str, shard_id: str) -> bool:
    for shard in await all_shards(fake, arn):
        if shard["ShardId"] == shard_id:
            return "EndingSequenceNumber" in shard["SequenceNumberRange"]
    return True


# ---------------------------------------------------------------- virtual clock


async def test_sleepers_wake_in_deadline_order_as_time_advances() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "late", 30)
        tg.start_soon(sleeper, "early", 10)
        await clock.advance(5)
        assert woke == []
        await clock.advance(30)
    assert woke == [("early", 10), ("late", 30)]
    assert clock.now() == 35


async def test_jump_moves_time_at_once() -> None:
    clock = VirtualClock()
    woke: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(60)
            woke.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await clock.jump(600)
        tg.cancel_scope.cancel()
    assert woke == [600]  # one wake-up, late: what a suspended process sees


async def test_autojump_skips_idle_time_and_ignores_cancelled_sleepers() -> None:
    clock = VirtualClock()
    async with clock.autojump():
        with anyio.move_on_after(5):  # real seconds: never reached
            with anyio.CancelScope() as scope:
                scope.cancel()
                await clock.sleep(1000)  # cancelled before it waits
            await clock.sleep(3600)
    assert clock.now() == 3600
    assert clock.utcnow().hour == 1


# ---------------------------------------------------------------- listing


async def test_describe_stream_pages_and_lists_children_late() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock, describe_page_size=2)
    arn = fake.create_stream(shards=3)
    first = fake.open_shards(arn)[0].shard_id
    children = fake.split(arn, first, children=2, list_after=60)

    listed = await all_shards(fake, arn)
    assert [s["ShardId"] for s in listed] == [s.shard_id for s in fake.shards(arn)[:3]]
    assert "EndingSequenceNumber" in listed[0]["SequenceNumberRange"]
    assert fake.requests["DescribeStream"] == 2

    await clock.advance(60)
    listed = await all_shards(fake, arn, limit=1)
    assert [s["ShardId"] for s in listed][-2:] == children
    assert {s.get("ParentShardId") for s in listed[-2:]} == {first}


async def test_writes_follow_the_key_into_children_and_rollovers() -> None:
    fake = FakeStreams()
    arn = fake.create_stream()
    parent = fake.shard_for(arn, key("a")).shard_id
    fake.put(arn, key("a"), new=item("a", 1))
    children = fake.split(arn, children=2)
    fake.put(arn, key("a"), new=item("a", 2), old=item("a", 1))
    child = fake.shard_for(arn, key("a")).shard_id
    assert child in children
    (rolled,) = fake.split(arn, child, children=1)
    fake.put(arn, key("a"), old=item("a", 2))
    assert fake.shard_for(arn, key("a")).shard_id == rolled

    events = [
        [r["eventName"] for r in await read_all(fake, arn, shard)]
        for shard in (parent, child, rolled)
    ]
    assert events == [["INSERT"], ["MODIFY"], ["REMOVE"]]


async def test_sequence_numbers_grow_in_length_so_only_numeric_order_works() -> None:
    fake = FakeStreams()
    arn = fake.create_stream()
    seqs = [fake.put(arn, key("a"), new=item("a", i)) for i in range(8)]
    assert len(seqs[0]) < len(seqs[-1])
    assert sorted(seqs, key=int) == seqs
    assert sorted(seqs) != seqs


# ---------------------------------------------------------------- reading


async def test_view_type_decides_the_images_and_ttl_removals_are_marked() -> None:
    fake = FakeStreams()
    keys_only = fake.create_stream("a", view_type="KEYS_ONLY")
    old_only = fake.create_stream("b", view_type="OLD_IMAGE")
    for arn in (keys_only, old_only):
        fake.put(arn, key("x"), new=item("x", 2), old=item("x", 1))
        fake.put(arn, key("x"), old=item("x", 2), ttl=True)

    (shard,) = fake.shards(keys_only)
    modify, remove = await read_all(fake, keys_only, shard.shard_id)
    assert set(modify["dynamodb"]) >= {"Keys", "SequenceNumber", "ApproximateCreationDateTime"}
    assert "NewImage" not in modify["dynamodb"] and "OldImage" not in modify["dynamodb"]
    assert remove["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert "userIdentity" not in modify

    (shard,) = fake.shards(old_only)
    modify, remove = await read_all(fake, old_only, shard.shard_id)
    assert modify["dynamodb"]["OldImage"] == item("x", 1)
    assert "NewImage" not in modify["dynamodb"]


async def test_closed_shard_ends_without_next_iterator_and_latest_skips_old_records() -> None:
    fake = FakeStreams()
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    fake.put(arn, key("a"), new=item("a", 1))
    latest = await iterator(fake, arn, shard.shard_id, "LATEST")
    fake.put(arn, key("a"), new=item("a", 2), old=item("a", 1))
    fake.split(arn, children=1)

    page = await fake("GetRecords", {"ShardIterator": latest})
    assert [r["eventName"] for r in page["Records"]] == ["MODIFY"]
    assert "NextShardIterator" not in page


async def test_at_and_after_sequence_number() -> None:
    fake = FakeStreams()
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    seqs = [fake.put(arn, key("a"), new=item("a", i)) for i in range(3)]
    at = await iterator(fake, arn, shard.shard_id, "AT_SEQUENCE_NUMBER", seqs[1])
    after = await iterator(fake, arn, shard.shard_id, "AFTER_SEQUENCE_NUMBER", seqs[1])
    at_page = await fake("GetRecords", {"ShardIterator": at})
    after_page = await fake("GetRecords", {"ShardIterator": after})
    assert [r["dynamodb"]["SequenceNumber"] for r in at_page["Records"]] == seqs[1:]
    assert [r["dynamodb"]["SequenceNumber"] for r in after_page["Records"]] == seqs[2:]


async def test_iterators_expire_after_fifteen_minutes() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock)
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    it = await iterator(fake, arn, shard.shard_id, "TRIM_HORIZON")
    await clock.advance(14 * 60 + 59)
    page = await fake("GetRecords", {"ShardIterator": it})
    await clock.advance(14 * 60 + 59)
    await fake("GetRecords", {"ShardIterator": page["NextShardIterator"]})  # a fresh one
    await clock.advance(2)
    with pytest.raises(DynamoError) as caught:
        await fake("GetRecords", {"ShardIterator": it})
    assert caught.value.code == "ExpiredIteratorException"
    assert fake.errors["ExpiredIteratorException"] == 1


async def test_records_are_trimmed_after_a_day_and_closed_shards_vanish() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock)
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    old = fake.put(arn, key("a"), new=item("a", 1))
    await clock.jump(12 * 3600)
    kept = fake.put(arn, key("a"), new=item("a", 2), old=item("a", 1))
    await clock.jump(12 * 3600 + 1)

    # DynamoDB refuses any position older than the trim point, even right after the last
    # trimmed record, where nothing is missing.
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        with pytest.raises(DynamoError) as caught:
            await iterator(fake, arn, shard.shard_id, kind, old)
        assert caught.value.code == "TrimmedDataAccessException"
    horizon = await iterator(fake, arn, shard.shard_id, "TRIM_HORIZON")
    at_kept = await iterator(fake, arn, shard.shard_id, "AT_SEQUENCE_NUMBER", kept)
    for it in (horizon, at_kept):
        page = await fake("GetRecords", {"ShardIterator": it})
        assert [r["dynamodb"]["SequenceNumber"] for r in page["Records"]] == [kept]

    fake.split(arn, children=1)
    await clock.jump(24 * 3600 + 1)
    assert shard.shard_id not in [s["ShardId"] for s in await all_shards(fake, arn)]
    with pytest.raises(DynamoError) as caught:
        await iterator(fake, arn, shard.shard_id, "TRIM_HORIZON")
    assert caught.value.code == "ResourceNotFoundException"


async def test_an_old_iterator_into_trimmed_records_fails() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock)
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    fake.put(arn, key("a"), new=item("a", 1))
    it = await iterator(fake, arn, shard.shard_id, "TRIM_HORIZON")
    await clock.jump(24 * 3600 + 1)
    with pytest.raises(DynamoError) as caught:
        await fake("GetRecords", {"ShardIterator": it})
    # Expiry is checked first, as an iterator this old has certainly expired.
    assert caught.value.code == "ExpiredIteratorException"


async def test_empty_pages_while_data_waits() -> None:
    fake = FakeStreams(empty_every=2, rate_limit=0)
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    for i in range(3):
        fake.put(arn, key("a"), new=item("a", i))
    it: str = await iterator(fake, arn, shard.shard_id, "TRIM_HORIZON")
    sizes = []
    for _ in range(4):
        page = await fake("GetRecords", {"ShardIterator": it, "Limit": 2})
        sizes.append(len(page["Records"]))
        it = page["NextShardIterator"]
    assert sizes == [2, 0, 1, 0]


async def test_get_records_beyond_five_per_second_per_shard_is_refused() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock)
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    it = await iterator(fake, arn, shard.shard_id, "LATEST")
    for _ in range(5):
        await fake("GetRecords", {"ShardIterator": it})
    with pytest.raises(DynamoError) as caught:
        await fake("GetRecords", {"ShardIterator": it})
    assert caught.value.code == "LimitExceededException"
    await clock.advance(1)
    await fake("GetRecords", {"ShardIterator": it})


async def test_injected_faults() -> None:
    fake = FakeStreams()
    arn = fake.create_stream()
    fake.fail("DescribeStream", "ThrottlingException")
    fake.fail("DescribeStream", "AccessDeniedException")
    fake.fail_every("GetShardIterator", 2)
    with pytest.raises(Throttled):
        await all_shards(fake, arn)
    with pytest.raises(DynamoError) as caught:
        await all_shards(fake, arn)
    assert caught.value.code == "AccessDeniedException"
    assert not isinstance(caught.value, Throttled)
    await all_shards(fake, arn)

    (shard,) = fake.shards(arn)
    await iterator(fake, arn, shard.shard_id, "LATEST")
    with pytest.raises(DynamoError) as caught:
        await iterator(fake, arn, shard.shard_id, "LATEST")
    assert caught.value.code == "LimitExceededException"
    assert fake.errors == {
        "ThrottlingException": 1,
        "AccessDeniedException": 1,
        "LimitExceededException": 1,
    }


async def test_bad_requests_are_refused_like_the_service_does() -> None:
    fake = FakeStreams()
    arn = fake.create_stream()
    (shard,) = fake.shards(arn)
    cases: list[tuple[str, Wire, str]] = [
        ("DescribeStream", {"StreamArn": "arn:nope"}, "ResourceNotFoundException"),
        ("DescribeStream", {"StreamArn": arn, "Limit": 101}, "ValidationException"),
        ("GetRecords", {"ShardIterator": "bogus"}, "ValidationException"),
        ("GetShardIterator", {"StreamArn": arn, "ShardId": "shardId-x"}, "ResourceNotFound"),
        (
            "GetShardIterator",
            {"StreamArn": arn, "ShardId": shard.shard_id, "ShardIteratorType": "AT_TIMESTAMP"},
            "ValidationException",
        ),
    ]
    for operation, request, code in cases:
        with pytest.raises(DynamoError) as caught:
            await fake(operation, request)
        assert caught.value.code.startswith(code)


def test_plain_source_decodes_wire_values() -> None:
    source = plain_source("arn:x")
    image = {
        "id": {"S": "a"},
        "n": {"N": "3"},
        "f": {"N": "2.5"},
        "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}]}}},
    }
    assert source.decode_item(image) == {"id": "a", "n": 3, "f": 2.5, "m": {"l": [True, None]}}


# ---------------------------------------------------------------- tables, re-enable, limits


class Parcel(Model):
    class Meta:
        table_name = "parcels"
        stream = "new_and_old"
        ttl = "expires"

    id: Annotated[str, HashKey()]
    weight: int = 0
    expires: datetime | None = None


class Recording:
    """An inner transport that remembers what reached it (and answers like an empty moto)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        self.seen.append(f"{operation}:{request.get('TableName')}")
        if operation == "DescribeTable":
            raise DynamoError("ResourceNotFoundException", "no such table", operation)
        return {}


async def test_the_engine_binds_and_streams_through_the_fake_as_a_transport() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock, shards=2)
    async with Engine(transport=fake) as engine:
        await engine.bind(Parcel)  # CreateTable, then TTL: the fake answers both
        description = (
            await fake.call("dynamodb", "DescribeTable", {"TableName": "parcels"}, idempotent=True)
        )["Table"]
        assert description["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        (arn,) = fake.stream_arns("parcels")
        assert description["LatestStreamArn"] == arn and len(fake.open_shards(arn)) == 2
        await engine.bind(Parcel, create=False)  # and verifying the table passes
        await engine.save(Parcel(id="p", weight=1))
        await engine.save(Parcel(id="p", weight=1))  # changes nothing: no record
        await engine.save(Parcel(id="p", weight=2))
        await engine.delete(Parcel(id="p"))
        async with (
            clock.autojump(),
            engine.stream(Parcel, position="trim_horizon", clock=clock) as stream,
        ):
            records = [await stream.next(timeout=30) for _ in range(3)]
            assert await stream.next(timeout=30) is None
    assert [r.event for r in records if r is not None] == ["insert", "modify", "remove"]
    assert records[2] is not None and records[2].old == Parcel(id="p", weight=2)


async def test_writes_from_model_objects() -> None:
    fake = FakeStreams()
    arn = fake.create_stream("parcels")
    fake.insert(Parcel(id="a", weight=1))
    fake.modify(Parcel(id="a", weight=1), Parcel(id="a", weight=2))
    fake.remove(Parcel(id="a", weight=2), ttl=True)
    (shard,) = fake.shards(arn)
    insert, modify, remove = await read_all(fake, arn, shard.shard_id)
    assert insert["dynamodb"]["NewImage"] == {"id": {"S": "a"}, "weight": {"N": "1"}}
    assert modify["dynamodb"]["OldImage"]["weight"] == {"N": "1"}
    assert remove["eventName"] == "REMOVE" and "userIdentity" in remove
    with pytest.raises(ValueError, match="same key"):
        fake.modify(Parcel(id="a"), Parcel(id="b"))
    with pytest.raises(ValueError, match="table="):
        FakeStreams().insert(Parcel(id="a"))


async def test_a_re_enabled_stream_is_a_new_one_and_the_old_one_stays_a_day() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock)
    old = fake.create_stream("parcels")
    fake.put(old, key("a"), new=item("a", 1))
    fake.disable(old)
    new = fake.enable("parcels")
    assert new != old and fake.stream_arns("parcels") == [old, new]
    listed = await fake("ListStreams", {"TableName": "parcels", "Limit": 1})
    assert [s["StreamArn"] for s in listed["Streams"]] == [old]
    rest = await fake(
        "ListStreams",
        {"TableName": "parcels", "ExclusiveStartStreamArn": listed["LastEvaluatedStreamArn"]},
    )
    assert [s["StreamArn"] for s in rest["Streams"]] == [new]
    description = (await fake("DescribeStream", {"StreamArn": old}))["StreamDescription"]
    assert description["StreamStatus"] == "DISABLED"
    with pytest.raises(ValueError, match="disabled"):
        fake.put(old, key("a"), new=item("a", 2))
    await clock.jump(24 * 3600 + 1)
    listed = await fake("ListStreams", {"TableName": "parcels"})
    assert [s["StreamArn"] for s in listed["Streams"]] == [new]
    with pytest.raises(DynamoError) as caught:
        await fake("DescribeStream", {"StreamArn": old})
    assert caught.value.code == "ResourceNotFoundException"


async def test_describe_stream_is_limited_to_ten_calls_a_second_and_filters_children() -> None:
    clock = VirtualClock()
    fake = FakeStreams(clock)
    arn = fake.create_stream(shards=2)
    parent = fake.open_shards(arn)[0].shard_id
    children = fake.split(arn, parent, children=2)
    for _ in range(10):
        await fake("DescribeStream", {"StreamArn": arn})
    with pytest.raises(DynamoError) as caught:
        await fake("DescribeStream", {"StreamArn": arn})
    assert caught.value.code == "LimitExceededException"
    await clock.advance(1)
    only = await fake(
        "DescribeStream",
        {"StreamArn": arn, "ShardFilter": {"Type": "CHILD_SHARDS", "ShardId": parent}},
    )
    assert [s["ShardId"] for s in only["StreamDescription"]["Shards"]] == children
    assert fake.peak_rate("DescribeStream") == 10


async def test_items_of_the_fakes_tables_honour_conditions_and_transactions() -> None:
    fake = FakeStreams()
    await fake.call(
        "dynamodb",
        "CreateTable",
        {
            "TableName": "t",
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        },
        idempotent=False,
    )

    async def call(operation: str, request: Wire) -> Wire:
        return await fake.call(
            "dynamodb", operation, {"TableName": "t", **request}, idempotent=False
        )

    await call("PutItem", {"Item": {"k": {"S": "a"}, "n": {"N": "1"}}})
    await call(
        "UpdateItem",
        {
            "Key": {"k": {"S": "a"}},
            "UpdateExpression": (
                "SET #n = #n + :one, tags = list_append(if_not_exists(tags, :e), :t)"
            ),
            "ConditionExpression": "attribute_exists(k) AND #n < :ten",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":ten": {"N": "10"},
                ":e": {"L": []},
                ":t": {"L": [{"S": "x"}]},
            },
        },
    )
    got = await call("GetItem", {"Key": {"k": {"S": "a"}}})
    assert got["Item"] == {"k": {"S": "a"}, "n": {"N": "2"}, "tags": {"L": [{"S": "x"}]}}
    with pytest.raises(DynamoError) as caught:
        await call(
            "PutItem",
            {
                "Item": {"k": {"S": "a"}},
                "ConditionExpression": "attribute_not_exists(k)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
    assert caught.value.code == "ConditionalCheckFailedException"
    assert caught.value.response["Item"]["n"] == {"N": "2"}
    with pytest.raises(DynamoError) as caught:
        await fake.call(
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "t", "Item": {"k": {"S": "b"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"k": {"S": "a"}},
                            "ConditionExpression": "#n = :five",
                            "ExpressionAttributeNames": {"#n": "n"},
                            "ExpressionAttributeValues": {":five": {"N": "5"}},
                        }
                    },
                ]
            },
            idempotent=True,
        )
    assert [r["Code"] for r in caught.value.response["CancellationReasons"]] == [
        "None",
        "ConditionalCheckFailed",
    ]
    assert "Item" not in await call("GetItem", {"Key": {"k": {"S": "b"}}})  # nothing applied
    page = await call(
        "Query",
        {
            "KeyConditionExpression": "k = :a",
            "ExpressionAttributeValues": {":a": {"S": "a"}},
        },
    )
    assert page["Count"] == 1
    with pytest.raises(DynamoError, match="no secondary indexes"):
        await call("Query", {"IndexName": "i", "KeyConditionExpression": "k = :a"})


async def test_other_tables_go_to_the_inner_transport() -> None:
    inner = Recording()
    fake = FakeStreams(inner=inner)
    async with Engine(transport=fake) as engine:
        await engine.bind(Parcel)  # created in both: the fake makes its stream
        await engine.save(Parcel(id="a"))  # items live in the inner service
    assert "CreateTable:parcels" in inner.seen and "UpdateItem:parcels" in inner.seen
    assert fake.stream_arns("parcels")


async def test_the_fake_answers_over_http(moto_endpoint: str) -> None:
    from adyn._http import HTTPTransport

    fake = FakeStreams(SystemClock())
    arn = fake.create_stream("parcels")
    fake.put(arn, key("a"), new=item("a", 1))
    async with fake.serve() as url:
        transport = HTTPTransport(endpoint_url=url)
        await transport.open()
        try:
            listed = await transport.call(
                "dynamodbstreams", "ListStreams", {"TableName": "parcels"}, idempotent=True
            )
            assert [s["StreamArn"] for s in listed["Streams"]] == [arn]
            with pytest.raises(DynamoError) as caught:
                await transport.call(
                    "dynamodbstreams", "DescribeStream", {"StreamArn": "nope"}, idempotent=True
                )
            assert caught.value.code == "ResourceNotFoundException"
        finally:
            await transport.close()
    assert moto_endpoint  # the suite's servers are up (HTTPTransport's credentials resolve)
