"""Stream records: one per write, none for a write that changes nothing, DynamoDB's shapes.

The sentinel pattern: a write whose record must not exist is followed by a write whose record
must, and the records up to the sentinel's are compared, so no test waits for an absence.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from ._wire import Wire, n, s
from .conftest import StreamReader, Tables

pytestmark = pytest.mark.dynalite_gap("DynamoDB Streams")

VIEWS = ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]


def events(records: list[dict[str, Any]]) -> list[str]:
    return [r["eventName"] for r in records]


async def test_an_update_that_creates_an_item_records_one_insert_with_the_full_image(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create(stream="NEW_AND_OLD_IMAGES")
    await wire(
        "UpdateItem",
        {
            "TableName": table,
            "Key": {"pk": s("a")},
            "UpdateExpression": "SET title = :t, votes = :v",
            "ExpressionAttributeValues": {":t": s("hello"), ":v": n(1)},
        },
    )
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("sentinel")}})
    records = await StreamReader.of(wire, table)
    got = await records.until(2)
    assert events(got) == ["INSERT", "INSERT"]
    first = got[0]["dynamodb"]
    assert first["Keys"] == {"pk": s("a")}
    assert first["NewImage"] == {"pk": s("a"), "title": s("hello"), "votes": n(1)}
    assert "OldImage" not in first


async def test_a_write_that_changes_nothing_records_nothing(wire: Wire, tables: Tables) -> None:
    table = await tables.create(stream="NEW_AND_OLD_IMAGES")
    item = {"pk": s("a"), "title": s("same"), "tags": {"SS": ["x", "y"]}}
    await wire("PutItem", {"TableName": table, "Item": item})
    await wire("PutItem", {"TableName": table, "Item": {**item, "tags": {"SS": ["y", "x"]}}})
    await wire(
        "UpdateItem",
        {
            "TableName": table,
            "Key": {"pk": s("a")},
            "UpdateExpression": "SET title = :t",
            "ExpressionAttributeValues": {":t": s("same")},
        },
    )
    await wire("DeleteItem", {"TableName": table, "Key": {"pk": s("never-written")}})
    await wire(
        "UpdateItem",
        {
            "TableName": table,
            "Key": {"pk": s("a")},
            "UpdateExpression": "SET title = :t",
            "ExpressionAttributeValues": {":t": s("changed")},
        },
    )
    got = await (await StreamReader.of(wire, table)).until(2)
    assert events(got) == ["INSERT", "MODIFY"]
    assert got[1]["dynamodb"]["OldImage"]["title"] == s("same")
    assert got[1]["dynamodb"]["NewImage"]["title"] == s("changed")


async def test_a_batch_records_one_record_per_item(wire: Wire, tables: Tables) -> None:
    table = await tables.create(stream="NEW_IMAGE")
    puts = [{"PutRequest": {"Item": {"pk": s(f"k{i}"), "i": n(i)}}} for i in range(5)]
    await wire("BatchWriteItem", {"RequestItems": {table: puts}})
    got = await (await StreamReader.of(wire, table)).until(5)
    assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in got) == [f"k{i}" for i in range(5)]
    assert events(got) == ["INSERT"] * 5


@pytest.mark.parametrize("view", VIEWS)
async def test_each_view_type_carries_the_images_it_names(
    wire: Wire, tables: Tables, view: str
) -> None:
    table = await tables.create(range_key=("sk", "N"), stream=view)
    key = {"pk": s("a"), "sk": n(1)}
    started = time.time()
    await wire("PutItem", {"TableName": table, "Item": {**key, "v": n(1), "b": {"B": "AP8="}}})
    await wire(
        "UpdateItem",
        {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": n(2)},
        },
    )
    await wire("DeleteItem", {"TableName": table, "Key": key})
    got = await (await StreamReader.of(wire, table)).until(3)
    assert events(got) == ["INSERT", "MODIFY", "REMOVE"]
    new_images = [r["dynamodb"].get("NewImage") for r in got]
    old_images = [r["dynamodb"].get("OldImage") for r in got]
    first = {**key, "v": n(1), "b": {"B": "AP8="}}
    second = {**first, "v": n(2)}
    wants_new = view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    wants_old = view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
    assert new_images == ([first, second, None] if wants_new else [None, None, None])
    assert old_images == ([None, first, second] if wants_old else [None, None, None])
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in got]
    assert sequence == sorted(sequence) and len(set(sequence)) == 3
    for record in got:
        body = record["dynamodb"]
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == wire.region
        assert isinstance(record["eventID"], str) and record["eventID"]
        assert "userIdentity" not in record  # a user's writes, not the TTL process
        assert body["Keys"] == key
        assert body["StreamViewType"] == view
        assert isinstance(body["SequenceNumber"], str)
        assert isinstance(body["SizeBytes"], int) and body["SizeBytes"] > 0
        created = body["ApproximateCreationDateTime"]
        assert isinstance(created, int | float)  # epoch seconds on the wire
        assert started - 60 <= created <= time.time() + 60


@pytest.mark.embedded_only("DynamoDB deletes expired items within days, not seconds")
async def test_a_ttl_deletion_is_a_remove_by_the_dynamodb_service(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create(stream="NEW_AND_OLD_IMAGES")
    await wire(
        "UpdateTimeToLive",
        {"TableName": table, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"}},
    )
    past, future = int(time.time()) - 60, int(time.time()) + 3600
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("old"), "exp": n(past)}})
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("young"), "exp": n(future)}})
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("user"), "exp": n(future)}})
    await wire("DeleteItem", {"TableName": table, "Key": {"pk": s("user")}})
    got = await (await StreamReader.of(wire, table)).until(5)
    removes = [r for r in got if r["eventName"] == "REMOVE"]
    by_key = {r["dynamodb"]["Keys"]["pk"]["S"]: r for r in removes}
    assert set(by_key) == {"old", "user"}
    assert by_key["old"]["userIdentity"] == {
        "PrincipalId": "dynamodb.amazonaws.com",
        "Type": "Service",
    }
    assert by_key["old"]["dynamodb"]["OldImage"] == {"pk": s("old"), "exp": n(past)}
    assert "userIdentity" not in by_key["user"]
    young = await wire("GetItem", {"TableName": table, "Key": {"pk": s("young")}})
    assert young["Item"]["exp"] == n(future)


async def test_binary_values_travel_as_base64_text(wire: Wire, tables: Tables) -> None:
    table = await tables.create(stream="NEW_IMAGE")
    raw = bytes(range(256))
    text = base64.b64encode(raw).decode()
    item = {"pk": s("a"), "b": {"B": text}, "bs": {"BS": [text]}, "m": {"M": {"b": {"B": text}}}}
    await wire("PutItem", {"TableName": table, "Item": item})
    got = await (await StreamReader.of(wire, table)).until(1)
    assert got[0]["dynamodb"]["NewImage"] == item
    stored = await wire("GetItem", {"TableName": table, "Key": {"pk": s("a")}})
    assert stored["Item"] == item
