"""The fast path returns exactly what the slow (botocore) path returns, values and errors alike."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings

from _models import Everything, Post
from adyn import DynamoError, Engine
from adyn._transport import Transport
from test_codecs import everything

pytestmark = pytest.mark.moto_only


def _normal(value: Any) -> Any:
    """Wire data with binaries as bytes and without volatile metadata, for comparison."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "B" and isinstance(inner, str):
                return {"B": base64.b64decode(inner)}
            if tag == "BS":
                return {
                    "BS": sorted(i if isinstance(i, bytes) else base64.b64decode(i) for i in inner)
                }
            if tag in ("SS", "NS"):
                return {tag: sorted(inner)}
        return {k: _normal(v) for k, v in value.items() if k != "ConsumedCapacity"}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


@pytest.fixture
async def pair(moto_endpoint: str) -> AsyncIterator[tuple[Engine, Engine]]:
    template = "{table_name}-fastpath"
    async with (
        Engine(endpoint_url=moto_endpoint, table_name_template=template) as fast,
        Engine(endpoint_url=moto_endpoint, table_name_template=template, fast_path=False) as slow,
    ):
        await fast.bind(Everything, Post)
        await slow.bind(Everything, Post)
        yield fast, slow


async def both(
    pair: tuple[Engine, Engine],
    operation: str,
    request: dict[str, Any],
    before: dict[str, Any] | None = None,
) -> Any:
    """Send one request through each path (after `before`, a PutItem that resets state)."""
    fast, slow = pair
    results = []
    for engine in (fast, slow):
        if before is not None:
            await engine.transport.call("PutItem", before)
        try:
            results.append(_normal(await engine.transport.call(operation, request)))
        except DynamoError as exc:
            results.append(("error", type(exc), exc.code, exc.message))
    assert results[0] == results[1], operation
    return results[0]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(obj=everything)
async def test_every_type_reads_back_identically_through_both_paths(
    pair: tuple[Engine, Engine], obj: Everything
) -> None:
    fast, slow = pair
    await fast.save(obj)
    from_fast = await fast.get(Everything, pk=obj.pk, sk=obj.sk, consistent=True)
    from_slow = await slow.get(Everything, pk=obj.pk, sk=obj.sk, consistent=True)
    assert from_fast == from_slow == obj
    key = {"pk": {"S": obj.pk}, "sk": {"N": str(obj.sk)}}
    table = fast.table_name(Everything)
    await both(pair, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
    await slow.save(obj)  # written by botocore's serialiser, read by ours
    assert await fast.get(Everything, pk=obj.pk, sk=obj.sk, consistent=True) == obj


async def test_every_data_plane_operation_answers_the_same(pair: tuple[Engine, Engine]) -> None:
    fast, _ = pair
    table = fast.table_name(Everything)
    item = {
        "pk": {"S": "dp"},
        "sk": {"N": "1"},
        "raw": {"B": b"\x00\x01"},
        "ss": {"SS": ["a", "b"]},
    }
    key = {"pk": {"S": "dp"}, "sk": {"N": "1"}}
    await both(pair, "PutItem", {"TableName": table, "Item": item})
    await both(pair, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
    await both(
        pair,
        "UpdateItem",
        {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "SET #s = :s",
            "ExpressionAttributeNames": {"#s": "s"},
            "ExpressionAttributeValues": {":s": {"S": "x"}},
            "ReturnValues": "ALL_NEW",
        },
    )
    await both(
        pair,
        "Query",
        {
            "TableName": table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "dp"}},
            "ConsistentRead": True,
        },
    )
    await both(pair, "Scan", {"TableName": table, "Limit": 5, "ConsistentRead": True})
    await both(
        pair, "BatchGetItem", {"RequestItems": {table: {"Keys": [key], "ConsistentRead": True}}}
    )
    await both(pair, "BatchWriteItem", {"RequestItems": {table: [{"PutRequest": {"Item": item}}]}})
    await both(
        pair, "TransactGetItems", {"TransactItems": [{"Get": {"TableName": table, "Key": key}}]}
    )
    await both(
        pair,
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": table, "Item": item}}]},
    )
    deleted = await both(
        pair,
        "DeleteItem",
        {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD"},
        before={"TableName": table, "Item": item},
    )
    assert deleted["Attributes"]["raw"] == {"B": b"\x00\x01"}


@pytest.mark.parametrize(
    ("operation", "request_body", "code"),
    [
        (
            "GetItem",
            {"TableName": "no-such-table", "Key": {"pk": {"S": "x"}}},
            "ResourceNotFoundException",
        ),
        ("GetItem", {"TableName": "TABLE", "Key": {"nope": {"S": "x"}}}, "ValidationException"),
        (
            "PutItem",
            {
                "TableName": "TABLE",
                "Item": {"pk": {"S": "e"}, "sk": {"N": "1"}},
                "ConditionExpression": "attribute_exists(pk)",
            },
            "ConditionalCheckFailedException",
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": "TABLE",
                            "Key": {"pk": {"S": "e"}, "sk": {"N": "2"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    }
                ]
            },
            "TransactionCanceledException",
        ),
    ],
)
async def test_errors_map_identically(
    pair: tuple[Engine, Engine], operation: str, request_body: dict[str, Any], code: str
) -> None:
    table = pair[0].table_name(Everything)
    request = _replace_table(request_body, table)
    kind, error_type, error_code, _message = await both(pair, operation, request)
    assert (kind, error_type, error_code) == ("error", DynamoError, code)
    if code == "TransactionCanceledException":
        fast_exc = await _error_of(pair[0].transport, operation, request)
        slow_exc = await _error_of(pair[1].transport, operation, request)
        assert fast_exc.response["CancellationReasons"] == slow_exc.response["CancellationReasons"]


async def _error_of(transport: Transport, operation: str, request: dict[str, Any]) -> DynamoError:
    with pytest.raises(DynamoError) as info:
        await transport.call(operation, request)
    return info.value


def _replace_table(value: Any, table: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace_table(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_table(v, table) for v in value]
    return table if value == "TABLE" else value


async def test_the_crc32_of_every_fast_response_is_verified(
    pair: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    import adyn._transport as transport_module

    fast, _ = pair
    calls: list[bytes] = []
    real = transport_module.zlib.crc32

    def spy(data: bytes, *args: int) -> int:
        calls.append(data)
        return real(data, *args)

    monkeypatch.setattr(transport_module.zlib, "crc32", spy)
    await fast.get(Post, forum="crc", id=UUID(int=0))
    assert calls, "the fast path must check the x-amz-crc32 header"
