"""TransactWriteItems: all or nothing, reasons per item in request order, idempotency, isolation."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

from ._wire import Wire, WireError, get, n, s
from .conftest import StreamReader, Tables

pytestmark = pytest.mark.dynalite_gap("transactions (TransactWriteItems)")


def add_one(table: str, pk: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": s(pk)},
            "UpdateExpression": "ADD hits :one",
            "ExpressionAttributeValues": {":one": n(1)},
        }
    }


async def test_a_cancelled_transaction_gives_one_reason_per_item_in_request_order(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("taken"), "v": n(1)}})
    items = [
        {"Put": {"TableName": table, "Item": {"pk": s("new"), "v": n(1)}}},
        {
            "Put": {
                "TableName": table,
                "Item": {"pk": s("taken"), "v": n(2)},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        add_one(table, "counter"),
        {
            "ConditionCheck": {
                "TableName": table,
                "Key": {"pk": s("missing")},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    with pytest.raises(WireError) as raised:
        await wire("TransactWriteItems", {"TransactItems": items})
    error = raised.value
    assert error.code == "TransactionCanceledException"
    reasons = error.body["CancellationReasons"]
    assert [r["Code"] for r in reasons] == [
        "None",
        "ConditionalCheckFailed",
        "None",
        "ConditionalCheckFailed",
    ]
    assert reasons[1]["Item"] == {"pk": s("taken"), "v": n(1)}  # the stored item, ALL_OLD
    assert "Item" not in reasons[3]  # no ReturnValuesOnConditionCheckFailure: no item
    assert await get(wire, table, "new") is None
    assert await get(wire, table, "counter") is None
    assert await get(wire, table, "taken") == {"pk": s("taken"), "v": n(1)}


async def test_a_cancelled_transaction_records_no_stream_record(wire: Wire, tables: Tables) -> None:
    table = await tables.create(stream="NEW_AND_OLD_IMAGES")
    items = [
        add_one(table, "created-by-update"),
        {
            "Put": {
                "TableName": table,
                "Item": {"pk": s("x")},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    with pytest.raises(WireError):
        await wire("TransactWriteItems", {"TransactItems": items})
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("sentinel")}})
    got = await (await StreamReader.of(wire, table)).until(1)
    assert [r["dynamodb"]["Keys"] for r in got] == [{"pk": s("sentinel")}]


async def test_a_transaction_that_creates_by_update_records_one_insert_per_item(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create(stream="NEW_IMAGE")
    await wire("TransactWriteItems", {"TransactItems": [add_one(table, "a"), add_one(table, "b")]})
    got = await (await StreamReader.of(wire, table)).until(2)
    assert sorted((r["eventName"], r["dynamodb"]["NewImage"]["hits"]["N"]) for r in got) == [
        ("INSERT", "1"),
        ("INSERT", "1"),
    ]


async def test_a_resent_transaction_with_its_token_succeeds_and_applies_once(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    request = {
        "ClientRequestToken": uuid.uuid4().hex,
        "TransactItems": [
            add_one(table, "counter"),
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": s("order-1")},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ],
    }
    for _ in range(3):
        await wire("TransactWriteItems", request)  # a resend succeeds, though the order exists
    assert await get(wire, table, "counter") == {"pk": s("counter"), "hits": n(1)}


async def test_a_token_reused_for_another_request_is_refused(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    token = uuid.uuid4().hex
    await wire(
        "TransactWriteItems", {"ClientRequestToken": token, "TransactItems": [add_one(table, "a")]}
    )
    with pytest.raises(WireError) as raised:
        await wire(
            "TransactWriteItems",
            {"ClientRequestToken": token, "TransactItems": [add_one(table, "b")]},
        )
    assert raised.value.code == "IdempotentParameterMismatchException"
    assert await get(wire, table, "b") is None


async def test_two_operations_on_one_item_are_refused(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    with pytest.raises(WireError) as raised:
        await wire(
            "TransactWriteItems", {"TransactItems": [add_one(table, "a"), add_one(table, "a")]}
        )
    assert raised.value.code == "ValidationException"
    assert await get(wire, table, "a") is None


async def test_more_than_100_items_are_refused(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    items = [add_one(table, f"k{i}") for i in range(101)]
    with pytest.raises(WireError) as raised:
        await wire("TransactWriteItems", {"TransactItems": items})
    assert raised.value.code == "ValidationException"


async def test_concurrent_transactions_never_oversell(wire: Wire, tables: Tables) -> None:
    """20 buyers race for 5 units; a conflict is retried, a failed condition is final."""
    table = await tables.create()
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("stock"), "left": n(5)}})
    outcomes: list[str] = []

    async def buy(buyer: int) -> None:
        items = [
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": s("stock")},
                    "UpdateExpression": "SET #l = #l - :one",
                    "ConditionExpression": "#l >= :one",
                    "ExpressionAttributeNames": {"#l": "left"},
                    "ExpressionAttributeValues": {":one": n(1)},
                }
            },
            {"Put": {"TableName": table, "Item": {"pk": s(f"order-{buyer}")}}},
        ]
        for _ in range(50):
            try:
                await wire("TransactWriteItems", {"TransactItems": items})
            except WireError as error:
                codes = [r["Code"] for r in error.body.get("CancellationReasons", [])]
                if "TransactionConflict" in codes or error.code == "TransactionInProgressException":
                    await anyio.sleep(0.05)
                    continue
                assert codes == ["ConditionalCheckFailed", "None"], error
                outcomes.append("sold out")
                return
            outcomes.append("bought")
            return

    async with anyio.create_task_group() as group:
        for buyer in range(20):
            group.start_soon(buy, buyer)
    assert sorted(outcomes) == ["bought"] * 5 + ["sold out"] * 15
    assert await get(wire, table, "stock") == {"pk": s("stock"), "left": n(0)}


async def test_concurrent_transactions_on_other_items_all_commit(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    await wire(
        "BatchWriteItem",
        {
            "RequestItems": {
                table: [{"PutRequest": {"Item": {"pk": s(f"pre{i}")}}} for i in range(25)]
            }
        },
    )

    async def write(i: int) -> None:
        await wire(
            "TransactWriteItems",
            {"TransactItems": [add_one(table, f"k{i}"), add_one(table, f"j{i}")]},
        )

    async with anyio.create_task_group() as group:
        for i in range(40):
            group.start_soon(write, i)
    scanned = await wire("Scan", {"TableName": table, "Select": "COUNT", "ConsistentRead": True})
    assert scanned["Count"] == 25 + 80


async def test_a_cancelled_transaction_keeps_concurrent_writes(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    filler = [{"PutRequest": {"Item": {"pk": s(f"f{i}"), "pad": s("x" * 200)}}} for i in range(25)]
    for _ in range(8):  # a table of some size, so that copying it takes a while
        batch = [
            {"PutRequest": {"Item": {**r["PutRequest"]["Item"], "pk": s(uuid.uuid4().hex)}}}
            for r in filler
        ]
        await wire("BatchWriteItem", {"RequestItems": {table: batch}})
    doomed = {
        "Put": {
            "TableName": table,
            "Item": {"pk": s("x")},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }

    updates = [add_one(table, f"t{i}") for i in range(60)]

    async def cancel() -> None:
        for _ in range(5):
            with pytest.raises(WireError) as raised:
                await wire("TransactWriteItems", {"TransactItems": [*updates, doomed]})
            assert raised.value.code == "TransactionCanceledException"

    async def put(i: int) -> None:
        await wire("PutItem", {"TableName": table, "Item": {"pk": s(f"plain{i}")}})

    async with anyio.create_task_group() as group:
        group.start_soon(cancel)
        for i in range(60):
            group.start_soon(put, i)
    for i in range(60):
        assert await get(wire, table, f"plain{i}") == {"pk": s(f"plain{i}")}
