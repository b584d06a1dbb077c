"""Raw aiobotocore: the client method, results as DynamoDB-typed dicts or as plain dicts."""

from __future__ import annotations

import copy
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.parsers import AioResponseParserFactory
from aiobotocore.session import get_session
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..data import GET_KEY, PAGE_KEYS, TABLE, plain_item, wire_item
from .base import REGION, STATIC_CREDENTIALS, Contender, Endpoints

_HEADERS = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "bench"}


def typed_key(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"S": value} for name, value in key.items()}


def query_kwargs(size: int) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":pk": {"S": PAGE_KEYS[size]}},
    }


class AiobotocoreTyped(Contender):
    """`client.get_item(...)` and friends with aiobotocore's default config: typed dicts out."""

    key = "aiobotocore"
    label = "raw aiobotocore (default; typed dicts)"
    config: AioConfig | None = None

    async def open(self, endpoints: Endpoints) -> None:
        self._stack = AsyncExitStack()
        session = get_session()
        kwargs: dict[str, Any] = {"region_name": REGION, **STATIC_CREDENTIALS}
        if self.config is not None:
            kwargs["config"] = self.config
        self.client = await self._stack.enter_async_context(
            session.create_client("dynamodb", endpoint_url=endpoints.url, **kwargs)
        )
        self.slow_client = await self._stack.enter_async_context(
            session.create_client("dynamodb", endpoint_url=endpoints.latency_url, **kwargs)
        )
        self._parser = AioResponseParserFactory().create_parser("json")
        self._query_shape = self.client.meta.service_model.operation_model("Query").output_shape
        self._key = typed_key(GET_KEY)

    async def close(self) -> None:
        await self._stack.aclose()

    # Each result hook turns the client's typed output into this contender's result type.
    def item(self, typed: dict[str, Any]) -> Any:
        return typed

    def items(self, typed: list[dict[str, Any]]) -> list[Any]:
        return typed

    async def get_one(self) -> Any:
        response = await self.client.get_item(TableName=TABLE, Key=self._key)
        return self.item(response["Item"])

    def prepare_put(self, n: int) -> list[Any]:
        item = wire_item("bench", 1)
        item["blob"] = {"B": plain_item("bench", 1)["blob"]}  # botocore takes raw bytes
        return [copy.deepcopy(item) for _ in range(n)]

    async def put_one(self, obj: Any) -> None:
        await self.client.put_item(TableName=TABLE, Item=obj)

    async def _query(self, size: int) -> list[Any]:
        response = await self.client.query(**query_kwargs(size))
        return self.items(response["Items"])

    async def query_100(self) -> list[Any]:
        return await self._query(100)

    async def query_1000(self) -> list[Any]:
        return await self._query(1000)

    async def decode_1000(self, body: bytes) -> list[Any]:
        http = {"status_code": 200, "headers": _HEADERS, "body": body}
        parsed = await self._parser.parse(http, self._query_shape)  # type: ignore[arg-type]
        return self.items(parsed["Items"])

    async def concurrent_get(self) -> Any:
        response = await self.slow_client.get_item(TableName=TABLE, Key=self._key)
        return self.item(response["Item"])


class AiobotocorePool64(AiobotocoreTyped):
    """The same client with a 64-connection pool, to separate the pool limit from CPU cost."""

    key = "aiobotocore_pool64"
    label = "raw aiobotocore (max_pool_connections=64)"
    config = AioConfig(max_pool_connections=64)
    unsupported = {
        case: "only differs from the default in the concurrent case"
        for case in ("query_1000", "decode_1000", "put_one", "get_one", "query_100")
    }


class AiobotocoreDicts(AiobotocoreTyped):
    """Raw aiobotocore plus boto3's TypeDeserializer/TypeSerializer: plain dicts in and out."""

    key = "aiobotocore_dicts"
    label = "aiobotocore + TypeDeserializer (plain dicts)"

    def __init__(self) -> None:
        self._deserializer = TypeDeserializer()
        self._serializer = TypeSerializer()

    def item(self, typed: dict[str, Any]) -> Any:
        deserialize = self._deserializer.deserialize
        return {name: deserialize(value) for name, value in typed.items()}

    def items(self, typed: list[dict[str, Any]]) -> list[Any]:
        return [self.item(one) for one in typed]

    def prepare_put(self, n: int) -> list[Any]:
        return [plain_item("bench", 1) for _ in range(n)]

    def encode(self, obj: Any) -> dict[str, Any]:
        serialize = self._serializer.serialize
        return {name: serialize(value) for name, value in obj.items()}

    async def put_one(self, obj: Any) -> None:
        await self.client.put_item(TableName=TABLE, Item=self.encode(obj))
