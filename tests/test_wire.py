"""adyn's transport answers exactly what botocore's own client answers, values and errors alike.

The engine speaks DynamoDB's JSON through its own transport; botocore parses the same answers
into Python values (bytes, datetimes). Sending each request both ways to moto and comparing
(binaries decoded) proves the transport neither loses nor bends anything.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from aiobotocore.session import get_session
from hypothesis import HealthCheck, given, settings

from _models import Everything, Post
from adyn import DynamoError, Engine
from adyn.errors import service_error
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
        return {
            k: _normal(v)
            for k, v in value.items()
            if k not in ("ConsumedCapacity", "ResponseMetadata")
        }
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _botocore_form(value: Any) -> Any:
    """A wire request as botocore's client takes it: binaries as bytes (it base64s them)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "B" and isinstance(inner, str):
                return {"B": base64.b64decode(inner)}
            if tag == "BS":
                return {"BS": [base64.b64decode(i) for i in inner]}
        return {k: _botocore_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_botocore_form(v) for v in value]
    return value


class Pair:
    """The engine under test and a plain aiobotocore client on the same moto."""

    def __init__(self, engine: Engine, client: Any) -> None:
        self.engine = engine
        self.client = client

    async def ours(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return await self.engine.transport.call("dynamodb", operation, request, idempotent=True)

    async def botocore(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            result: dict[str, Any] = await self.client._make_api_call(
                operation, _botocore_form(request)
            )
        except ClientError as exc:
            info = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            data = {k: v for k, v in exc.response.items() if k not in ("Error", "ResponseMetadata")}
            raise service_error(
                str(info.get("Code")), str(info.get("Message", "")), operation, data, status=status
            ) from None
        return result


@pytest.fixture
async def pair(moto_endpoint: str) -> AsyncIterator[Pair]:
    template = "{table_name}-wire"
    async with (
        Engine(endpoint_url=moto_endpoint, table_name_template=template) as engine,
        get_session().create_client(
            "dynamodb",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        ) as client,
    ):
        await engine.bind(Everything, Post)
        yield Pair(engine, client)


async def both(
    pair: Pair,
    operation: str,
    request: dict[str, Any],
    before: dict[str, Any] | None = None,
) -> Any:
    """Send one request each way (after `before`, a PutItem that resets state)."""
    results = []
    for send in (pair.ours, pair.botocore):
        if before is not None:
            await pair.ours("PutItem", before)
        try:
            results.append(_normal(await send(operation, request)))
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
async def test_every_type_reads_back_identically_both_ways(pair: Pair, obj: Everything) -> None:
    engine = pair.engine
    await engine.save(obj)
    assert await engine.get(Everything, pk=obj.pk, sk=obj.sk, consistent=True) == obj
    key = {"pk": {"S": obj.pk}, "sk": {"N": str(obj.sk)}}
    table = engine.table_name(Everything)
    await both(pair, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
    # written by botocore's serialiser, read by ours
    item = Everything.__adyn_schema__.encode_item(obj)  # type: ignore[union-attr]
    await pair.ours("DeleteItem", {"TableName": table, "Key": key})
    await pair.botocore("PutItem", {"TableName": table, "Item": item})
    assert await engine.get(Everything, pk=obj.pk, sk=obj.sk, consistent=True) == obj


async def test_every_data_plane_operation_answers_the_same(pair: Pair) -> None:
    table = pair.engine.table_name(Everything)
    item = {
        "pk": {"S": "dp"},
        "sk": {"N": "1"},
        "raw": {"B": base64.b64encode(b"\x00\x01").decode()},
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
    assert deleted["Attributes"]["raw"] == {"B": b"\x00\x01"}  # _normal decoded it


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
    pair: Pair, operation: str, request_body: dict[str, Any], code: str
) -> None:
    table = pair.engine.table_name(Everything)
    request = _replace_table(request_body, table)
    kind, error_type, error_code, _message = await both(pair, operation, request)
    assert (kind, error_code) == ("error", code)
    assert error_type is type(service_error(code, "", operation))
    with pytest.raises(DynamoError) as ours:
        await pair.ours(operation, request)
    assert ours.value.status == 400
    if code == "TransactionCanceledException":
        with pytest.raises(DynamoError) as theirs:
            await pair.botocore(operation, request)
        assert (
            ours.value.response["CancellationReasons"]
            == (theirs.value.response["CancellationReasons"])
        )


def _replace_table(value: Any, table: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace_table(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_table(v, table) for v in value]
    return table if value == "TABLE" else value


async def test_the_crc32_of_every_response_is_verified(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adyn._http as transport_module

    fast = pair.engine
    calls: list[bytes] = []
    real = transport_module.zlib.crc32

    def spy(data: bytes, *args: int) -> int:
        calls.append(data)
        return real(data, *args)

    monkeypatch.setattr(transport_module.zlib, "crc32", spy)
    await fast.get(Post, forum="crc", id=UUID(int=0))
    assert calls, "the transport must check the x-amz-crc32 header"
