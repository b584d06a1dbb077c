"""Conditional writes: atomic against each other, and a failure returns the stored item."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from ._wire import Wire, WireError, get, n, s
from .conftest import Tables


async def test_exactly_one_of_two_racing_conditional_creates_wins(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    wins: dict[str, list[str]] = {f"k{i}": [] for i in range(40)}

    async def claim(key: str, writer: str) -> None:
        try:
            await wire(
                "UpdateItem",
                {
                    "TableName": table,
                    "Key": {"pk": s(key)},
                    "UpdateExpression": "SET writer = :w",
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ExpressionAttributeValues": {":w": s(writer)},
                },
            )
        except WireError as error:
            assert error.code == "ConditionalCheckFailedException", error
            return
        wins[key].append(writer)

    async with anyio.create_task_group() as group:
        for key in wins:
            for writer in ("a", "b"):
                group.start_soon(claim, key, writer)
    for key, winners in wins.items():
        assert len(winners) == 1, (key, winners)
        assert await get(wire, table, key) == {"pk": s(key), "writer": s(winners[0])}


async def test_racing_increments_with_a_condition_lose_nothing(wire: Wire, tables: Tables) -> None:
    """Optimistic locking: read the version, write only if it is unchanged, retry otherwise."""
    table = await tables.create()
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("c"), "v": n(0), "total": n(0)}})

    async def increment() -> None:
        while True:
            item = await get(wire, table, "c")
            assert item is not None
            version = int(item["v"]["N"])
            try:
                await wire(
                    "PutItem",
                    {
                        "TableName": table,
                        "Item": {
                            "pk": s("c"),
                            "v": n(version + 1),
                            "total": n(int(item["total"]["N"]) + 1),
                        },
                        "ConditionExpression": "v = :v",
                        "ExpressionAttributeValues": {":v": n(version)},
                    },
                )
                return
            except WireError as error:
                assert error.code == "ConditionalCheckFailedException", error

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(increment)
    assert await get(wire, table, "c") == {"pk": s("c"), "v": n(10), "total": n(10)}


@pytest.mark.dynalite_gap("ReturnValuesOnConditionCheckFailure (no Item with the failure)")
@pytest.mark.parametrize("operation", ["PutItem", "UpdateItem", "DeleteItem"])
async def test_a_failed_condition_returns_the_stored_item(
    wire: Wire, tables: Tables, operation: str
) -> None:
    table = await tables.create()
    stored = {"pk": s("a"), "v": n(1), "b": {"B": "AAE="}}
    await wire("PutItem", {"TableName": table, "Item": stored})
    request: dict[str, Any] = {
        "TableName": table,
        "ConditionExpression": "v = :two",
        "ExpressionAttributeValues": {":two": n(2)},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if operation == "PutItem":
        request["Item"] = {"pk": s("a"), "v": n(3)}
    else:
        request["Key"] = {"pk": s("a")}
    if operation == "UpdateItem":
        request["UpdateExpression"] = "SET v = :three"
        request["ExpressionAttributeValues"][":three"] = n(3)
    with pytest.raises(WireError) as raised:
        await wire(operation, request)
    assert raised.value.code == "ConditionalCheckFailedException"
    assert raised.value.body["Item"] == stored
    assert await get(wire, table, "a") == stored


async def test_a_failed_condition_on_a_missing_item_returns_no_item(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    with pytest.raises(WireError) as raised:
        await wire(
            "UpdateItem",
            {
                "TableName": table,
                "Key": {"pk": s("none")},
                "UpdateExpression": "SET v = :v",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":v": n(1)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
    assert raised.value.code == "ConditionalCheckFailedException"
    assert "Item" not in raised.value.body
    assert await get(wire, table, "none") is None


async def failing_update(wire: Wire, table: str) -> None:
    """An update that sets `v` and then makes the item too large: it must fail as a whole."""
    with pytest.raises(WireError) as raised:
        await wire(
            "UpdateItem",
            {
                "TableName": table,
                "Key": {"pk": s("a")},
                "UpdateExpression": "SET v = :two, big = :big",
                "ExpressionAttributeValues": {":two": n(2), ":big": s("x" * 410_000)},
            },
        )
    assert raised.value.code == "ValidationException"


async def test_a_failed_update_of_a_missing_item_creates_nothing(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    await failing_update(wire, table)
    assert await get(wire, table, "a") is None


async def test_a_failed_update_changes_no_attribute(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("a"), "v": n(1)}})
    await failing_update(wire, table)
    assert await get(wire, table, "a") == {"pk": s("a"), "v": n(1)}


@pytest.mark.dynalite_gap("transactions (TransactWriteItems)")
async def test_a_consistent_read_never_sees_half_an_item(wire: Wire, tables: Tables) -> None:
    """Reads racing a transactional create see nothing or the whole item, never the bare key."""
    table = await tables.create()
    seen: list[dict[str, Any] | None] = []

    async def create(key: str) -> None:
        await wire(
            "TransactWriteItems",
            {
                "TransactItems": [
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"pk": s(key)},
                            "UpdateExpression": "SET title = :t, votes = :v",
                            "ExpressionAttributeValues": {":t": s("t"), ":v": n(1)},
                        }
                    }
                ]
            },
        )

    async def read(key: str) -> None:
        for _ in range(3):
            seen.append(await get(wire, table, key))

    async with anyio.create_task_group() as group:
        for i in range(15):
            group.start_soon(create, f"k{i}")
            for _ in range(3):
                group.start_soon(read, f"k{i}")
    for item in seen:
        assert item is None or set(item) == {"pk", "title", "votes"}, item
