"""Queries, scans and batches: key condition rules, pages with Limit and filters, batch shapes."""

from __future__ import annotations

from typing import Any

import pytest

from ._wire import Wire, WireError, n, s
from .conftest import Tables


async def filled(wire: Wire, tables: Tables, count: int = 10, **options: Any) -> str:
    table = await tables.create(range_key=("sk", "N"), **options)
    puts = [
        {
            "PutRequest": {
                "Item": {"pk": s("p"), "sk": n(i), "even": {"BOOL": i % 2 == 0}, "g": s("G")}
            }
        }
        for i in range(count)
    ]
    for start in range(0, count, 25):
        await wire("BatchWriteItem", {"RequestItems": {table: puts[start : start + 25]}})
    return table


async def refused(wire: Wire, operation: str, body: dict[str, Any]) -> None:
    with pytest.raises(WireError) as raised:
        await wire(operation, body)
    assert raised.value.code == "ValidationException", raised.value


async def test_a_key_condition_needs_the_partition_key_by_equality(
    wire: Wire, tables: Tables
) -> None:
    table = await filled(wire, tables, 2)
    base = {"TableName": table, "ExpressionAttributeValues": {":p": s("p"), ":one": n(1)}}
    await refused(
        wire,
        "Query",
        {
            **base,
            "KeyConditionExpression": "sk = :one",
            "ExpressionAttributeValues": {":one": n(1)},
        },
    )
    await refused(wire, "Query", {**base, "KeyConditionExpression": "pk > :p AND sk = :one"})
    await refused(
        wire,
        "Query",
        {
            **base,
            "KeyConditionExpression": "pk = :p AND even = :t",
            "ExpressionAttributeValues": {":p": s("p"), ":t": {"BOOL": True}},
        },
    )
    got = await wire("Query", {**base, "KeyConditionExpression": "pk = :p AND sk >= :one"})
    assert [i["sk"] for i in got["Items"]] == [n(1)]


async def test_limit_counts_items_read_before_the_filter(wire: Wire, tables: Tables) -> None:
    table = await filled(wire, tables, 10)
    body: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "FilterExpression": "even = :t",
        "ExpressionAttributeValues": {":p": s("p"), ":t": {"BOOL": True}},
        "Limit": 3,
    }
    pages = []
    while True:
        page = await wire("Query", body)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            break
        body["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    first = pages[0]
    assert first["ScannedCount"] == 3
    assert [i["sk"] for i in first["Items"]] == [n(0), n(2)]
    assert first["Count"] == 2
    assert first["LastEvaluatedKey"] == {"pk": s("p"), "sk": n(2)}
    found = [i["sk"]["N"] for page in pages for i in page["Items"]]
    assert found == ["0", "2", "4", "6", "8"]
    assert sum(p["ScannedCount"] for p in pages) >= 10


async def test_a_page_can_be_empty_and_still_continue(wire: Wire, tables: Tables) -> None:
    table = await filled(wire, tables, 6)
    page = await wire(
        "Query",
        {
            "TableName": table,
            "KeyConditionExpression": "pk = :p AND sk >= :one",
            "FilterExpression": "even = :t",
            "ExpressionAttributeValues": {":p": s("p"), ":one": n(1), ":t": {"BOOL": True}},
            "Limit": 1,
        },
    )
    assert page["Items"] == [] and page["Count"] == 0 and page["ScannedCount"] == 1
    assert page["LastEvaluatedKey"] == {"pk": s("p"), "sk": n(1)}


async def test_an_index_page_ends_at_a_key_of_index_and_table(wire: Wire, tables: Tables) -> None:
    table = await filled(wire, tables, 4, indexes={"by_g": (("g", "S"), None)})
    page = await wire(
        "Query",
        {
            "TableName": table,
            "IndexName": "by_g",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": s("G")},
            "Limit": 2,
        },
    )
    assert page["Count"] == 2
    assert set(page["LastEvaluatedKey"]) == {"pk", "sk", "g"}


async def test_descending_queries_page_backwards(wire: Wire, tables: Tables) -> None:
    table = await filled(wire, tables, 5)
    body: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": s("p")},
        "ScanIndexForward": False,
        "Limit": 2,
    }
    seen = []
    while True:
        page = await wire("Query", body)
        seen += [i["sk"]["N"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        body["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert seen == ["4", "3", "2", "1", "0"]


async def test_a_batch_write_reports_nothing_unprocessed(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    got = await wire(
        "BatchWriteItem",
        {
            "RequestItems": {
                table: [{"PutRequest": {"Item": {"pk": s(f"k{i}")}}} for i in range(25)]
            }
        },
    )
    assert got["UnprocessedItems"] == {}


async def test_a_batch_get_gives_found_items_and_nothing_unprocessed(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("a"), "v": n(1)}})
    got = await wire(
        "BatchGetItem",
        {
            "RequestItems": {
                table: {"Keys": [{"pk": s("a")}, {"pk": s("missing")}], "ConsistentRead": True}
            }
        },
    )
    assert got["Responses"] == {table: [{"pk": s("a"), "v": n(1)}]}
    assert got["UnprocessedKeys"] == {}


async def test_batches_refuse_duplicate_keys_and_too_many_items(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    twice = [{"PutRequest": {"Item": {"pk": s("a")}}}, {"PutRequest": {"Item": {"pk": s("a")}}}]
    await refused(wire, "BatchWriteItem", {"RequestItems": {table: twice}})
    put_and_delete = [
        {"PutRequest": {"Item": {"pk": s("a"), "v": n(1)}}},
        {"DeleteRequest": {"Key": {"pk": s("a")}}},
    ]
    await refused(wire, "BatchWriteItem", {"RequestItems": {table: put_and_delete}})
    other_values = [{"PutRequest": {"Item": {"pk": s("a"), "v": n(i)}}} for i in range(2)]
    await refused(wire, "BatchWriteItem", {"RequestItems": {table: other_values}})
    many = [{"PutRequest": {"Item": {"pk": s(f"k{i}")}}} for i in range(26)]
    await refused(wire, "BatchWriteItem", {"RequestItems": {table: many}})
    keys = [{"pk": s(f"k{i}")} for i in range(101)]
    await refused(wire, "BatchGetItem", {"RequestItems": {table: {"Keys": keys}}})
    scanned = await wire("Scan", {"TableName": table, "Select": "COUNT", "ConsistentRead": True})
    assert scanned["Count"] == 0  # a refused batch writes nothing
