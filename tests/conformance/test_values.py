"""Values: number precision, range and form; binary by bytes; empty sets and strings; sizes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ._wire import Wire, WireError, n, s
from .conftest import Tables

LIMIT = 400 * 1024  # DynamoDB's item size limit, names and values counted in bytes


def b(value: bytes) -> dict[str, str]:
    return {"B": base64.b64encode(value).decode()}


async def put_get(wire: Wire, table: str, item: dict[str, Any]) -> dict[str, Any]:
    await wire("PutItem", {"TableName": table, "Item": item})
    got = await wire(
        "GetItem", {"TableName": table, "Key": {"pk": item["pk"]}, "ConsistentRead": True}
    )
    stored: dict[str, Any] = got["Item"]
    return stored


async def refused(wire: Wire, operation: str, body: dict[str, Any]) -> str:
    with pytest.raises(WireError) as raised:
        await wire(operation, body)
    assert raised.value.code == "ValidationException", raised.value
    return raised.value.message


# ---------------------------------------------------------------------- numbers

DIGITS_38 = "1.234567890123456789012345678901234567"  # 37 digits after the point


async def test_numbers_keep_38_significant_digits(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    values = [DIGITS_38 + "8", "-" + DIGITS_38 + "9", "12345678901234567890123456789012345678"]
    for value in values:
        stored = await put_get(wire, table, {"pk": s(value), "v": n(value), "ns": {"NS": [value]}})
        assert stored["v"] == n(value)
        assert stored["ns"] == {"NS": [value]}


async def test_arithmetic_is_exact_to_38_digits(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    await wire(
        "PutItem", {"TableName": table, "Item": {"pk": s("a"), "v": n("1E-37"), "w": n("0.5")}}
    )
    got = await wire(
        "UpdateItem",
        {
            "TableName": table,
            "Key": {"pk": s("a")},
            "UpdateExpression": "SET v = v + :one, w = w - :tiny ADD c :big",
            "ExpressionAttributeValues": {
                ":one": n(1),
                ":tiny": n("0.0000000000000000000000000000000000001"),
                ":big": n("12345678901234567890123456789012345678"),
            },
            "ReturnValues": "ALL_NEW",
        },
    )
    attributes = got["Attributes"]
    assert attributes["v"] == n("1.0000000000000000000000000000000000001")
    assert attributes["w"] == n("0.4999999999999999999999999999999999999")
    assert attributes["c"] == n("12345678901234567890123456789012345678")


async def test_numbers_are_stored_without_leading_or_trailing_zeros(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    cases = {
        "1.50": "1.5",
        "001": "1",
        "1E+2": "100",
        "-0": "0",
        "0.0010": "0.001",
        "1e-3": "0.001",
    }
    for given, kept in cases.items():
        stored = await put_get(wire, table, {"pk": s(given), "v": n(given)})
        assert stored["v"] == n(kept), given


async def test_numbers_outside_dynamodbs_range_or_precision_are_refused(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    largest = "9.9999999999999999999999999999999999999E+125"
    for ok in (largest, "-" + largest, "1E-130", "-1E-130"):
        await wire("PutItem", {"TableName": table, "Item": {"pk": s(ok), "v": n(ok)}})
    too = {"1E+126": "overflow", "-1E+126": "overflow", "1E-131": "underflow"}
    for value, word in too.items():
        message = await refused(
            wire, "PutItem", {"TableName": table, "Item": {"pk": s(value), "v": n(value)}}
        )
        assert word in message.lower(), message
    precise = "1." + "1" * 38  # 39 significant digits
    message = await refused(
        wire, "PutItem", {"TableName": table, "Item": {"pk": s("p"), "v": n(precise)}}
    )
    assert "38 significant digits" in message


# ---------------------------------------------------------------------- binary


@pytest.mark.parametrize("index", [False, True], ids=["key-condition", "filter"])
async def test_binary_begins_with_compares_bytes(wire: Wire, tables: Tables, index: bool) -> None:
    table = await tables.create(range_key=("sk", "B"))
    values = [b"ab", b"abc", b"abd\x00", b"b", b"\xfa\xfb", b"\xfa"]
    for value in values:
        await wire(
            "PutItem", {"TableName": table, "Item": {"pk": s("p"), "sk": b(value), "bin": b(value)}}
        )
    body: dict[str, Any] = {
        "TableName": table,
        "ExpressionAttributeValues": {":p": s("p"), ":pre": b(b"ab")},
    }
    if index:
        body |= {"KeyConditionExpression": "pk = :p", "FilterExpression": "begins_with(bin, :pre)"}
    else:
        body |= {"KeyConditionExpression": "pk = :p AND begins_with(sk, :pre)"}
    got = await wire("Query", body)
    assert [i["sk"] for i in got["Items"]] == [b(b"ab"), b(b"abc"), b(b"abd\x00")]
    body["ExpressionAttributeValues"][":pre"] = b(b"\xfa")
    got = await wire("Query", body)
    assert [i["sk"] for i in got["Items"]] == [b(b"\xfa"), b(b"\xfa\xfb")]


async def test_binary_sort_keys_sort_by_unsigned_bytes(wire: Wire, tables: Tables) -> None:
    table = await tables.create(range_key=("sk", "B"))
    values = [b"\xff", b"\x00", b"\x7f", b"\xf8", b"\x00\x01", b"A", b"+"]
    for value in values:
        await wire("PutItem", {"TableName": table, "Item": {"pk": s("p"), "sk": b(value)}})
    got = await wire(
        "Query",
        {
            "TableName": table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": s("p")},
        },
    )
    assert [i["sk"] for i in got["Items"]] == [b(v) for v in sorted(values)]
    between = await wire(
        "Query",
        {
            "TableName": table,
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":p": s("p"), ":lo": b(b"\x01"), ":hi": b(b"\xf8")},
        },
    )
    assert [i["sk"] for i in between["Items"]] == [b(b"+"), b(b"A"), b(b"\x7f"), b(b"\xf8")]


# ---------------------------------------------------------------------- empty values


async def test_empty_strings_and_binaries_are_allowed_outside_keys(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    item = {
        "pk": s("a"),
        "e": s(""),
        "eb": {"B": ""},
        "m": {"M": {"e": s("")}},
        "l": {"L": [s("")]},
    }
    assert await put_get(wire, table, item) == item


async def test_empty_key_values_are_refused(wire: Wire, tables: Tables) -> None:
    table = await tables.create(range_key=("sk", "S"))
    for item in ({"pk": s(""), "sk": s("x")}, {"pk": s("x"), "sk": s("")}):
        await refused(wire, "PutItem", {"TableName": table, "Item": item})


@pytest.mark.dynalite_gap("the rule against empty index key values (it stores them)")
async def test_empty_index_key_values_are_refused(wire: Wire, tables: Tables) -> None:
    table = await tables.create(indexes={"by_g": (("g", "S"), None)})
    await refused(wire, "PutItem", {"TableName": table, "Item": {"pk": s("x"), "g": s("")}})


@pytest.mark.parametrize("kind", ["SS", "NS", "BS"])
async def test_empty_sets_are_refused(wire: Wire, tables: Tables, kind: str) -> None:
    table = await tables.create()
    await refused(wire, "PutItem", {"TableName": table, "Item": {"pk": s("a"), "set": {kind: []}}})


async def test_sets_with_duplicates_are_refused(wire: Wire, tables: Tables) -> None:
    table = await tables.create()
    await refused(
        wire, "PutItem", {"TableName": table, "Item": {"pk": s("a"), "set": {"SS": ["x", "x"]}}}
    )


# ---------------------------------------------------------------------- sizes


async def test_an_item_of_exactly_400_kb_is_accepted_and_one_byte_more_refused(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    room = LIMIT - len("pk") - len("a") - len("v")
    item = {"pk": s("a"), "v": s("x" * room)}
    assert (await put_get(wire, table, item))["v"] == item["v"]
    message = await refused(
        wire, "PutItem", {"TableName": table, "Item": {"pk": s("a"), "v": s("x" * (room + 1))}}
    )
    assert "Item size has exceeded the maximum allowed size" in message


async def test_binary_values_count_their_bytes_not_their_base64_text(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    item = {"pk": s("a"), "v": b(b"\x01" * 390_000)}  # 520,000 characters of base64
    assert (await put_get(wire, table, item))["v"] == item["v"]


async def test_an_update_that_grows_an_item_past_400_kb_is_refused(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create()
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("a"), "v": s("x" * 300_000)}})
    message = await refused(
        wire,
        "UpdateItem",
        {
            "TableName": table,
            "Key": {"pk": s("a")},
            "UpdateExpression": "SET w = :w",
            "ExpressionAttributeValues": {":w": s("y" * 200_000)},
        },
    )
    assert "Item size to update has exceeded the maximum allowed size" in message
    got = await wire("GetItem", {"TableName": table, "Key": {"pk": s("a")}, "ConsistentRead": True})
    assert set(got["Item"]) == {"pk", "v"}


async def test_key_values_longer_than_dynamodb_allows_are_refused(
    wire: Wire, tables: Tables
) -> None:
    table = await tables.create(range_key=("sk", "S"))
    await wire("PutItem", {"TableName": table, "Item": {"pk": s("p" * 2048), "sk": s("s" * 1024)}})
    await refused(
        wire, "PutItem", {"TableName": table, "Item": {"pk": s("p" * 2049), "sk": s("s")}}
    )
    await refused(
        wire, "PutItem", {"TableName": table, "Item": {"pk": s("p"), "sk": s("s" * 1025)}}
    )
