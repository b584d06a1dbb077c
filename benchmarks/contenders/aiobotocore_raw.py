"""Raw aiobotocore: the client method, results as DynamoDB-typed dicts or as plain dicts."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.parsers import AioResponseParserFactory
from aiobotocore.session import get_session

from ..cases import CASES
from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE, to_wire
from .base import REGION, STATIC_CREDENTIALS, Contender, Endpoints

_HEADERS = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "bench"}
BATCH_SIZE = 25  # BatchWriteItem's limit


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

        async def client(url: str) -> Any:
            made = session.create_client("dynamodb", endpoint_url=url, **kwargs)
            return await self._stack.enter_async_context(made)

        self.client = await client(endpoints.url)
        self._key = typed_key(GET_KEY)
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one client is all it uses
        self.slow_client = await client(endpoints.latency_url)
        self.page_client = await client(endpoints.page_url)
        self._parser = AioResponseParserFactory().create_parser("json")
        self._query_shape = self.client.meta.service_model.operation_model("Query").output_shape

    async def close(self) -> None:
        await self._stack.aclose()

    # Each hook turns the client's typed output into this contender's result type, or the
    # contender's object into botocore's typed input.
    def item(self, typed: dict[str, Any]) -> Any:
        return typed

    def items(self, typed: list[dict[str, Any]]) -> list[Any]:
        return typed

    def build(self, item: dict[str, Any]) -> Any:
        return {name: to_wire(value, raw_bytes=True) for name, value in item.items()}

    def encode(self, obj: Any) -> dict[str, Any]:
        return obj  # type: ignore[no-any-return]

    async def get_one(self) -> Any:
        response = await self.client.get_item(TableName=TABLE, Key=self._key)
        return self.item(response["Item"])

    async def put_one(self, obj: Any) -> None:
        await self.client.put_item(TableName=TABLE, Item=self.encode(obj))

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

    async def batch_write(self, objs: list[Any]) -> None:
        # What a service writes on the plain client: chunks of 25, unprocessed items resent.
        for start in range(0, len(objs), BATCH_SIZE):
            requests = [
                {"PutRequest": {"Item": self.encode(obj)}}
                for obj in objs[start : start + BATCH_SIZE]
            ]
            pending: dict[str, Any] = {TABLE: requests}
            while pending:
                response = await self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    async def transaction_25(self, objs: list[Any]) -> None:
        actions = [{"Put": {"TableName": TABLE, "Item": self.encode(obj)}} for obj in objs]
        await self.client.transact_write_items(TransactItems=actions)

    async def _scan(self, client: Any, **config: Any) -> int:
        count = 0
        paginator = client.get_paginator("scan")
        async for page in paginator.paginate(TableName=TABLE, PaginationConfig=config):
            count += len(self.items(page["Items"]))
        return count

    async def scan_1mb(self) -> int:
        return await self._scan(self.client)

    async def scan_paged(self) -> int:
        return await self._scan(self.page_client, PageSize=PAGED_SIZE)

    async def concurrent_get(self) -> Any:
        response = await self.slow_client.get_item(TableName=TABLE, Key=self._key)
        return self.item(response["Item"])


class AiobotocorePool64(AiobotocoreTyped):
    """The same client with a 64-connection pool, to separate the pool limit from CPU cost."""

    key = "aiobotocore_pool64"
    label = "raw aiobotocore (max_pool_connections=64)"
    config = AioConfig(max_pool_connections=64)
    unsupported = {
        case.key: "only differs from the default in the concurrent cases"
        for case in CASES
        if case.tasks(quick=False) == 1
    }


class AiobotocoreDicts(AiobotocoreTyped):
    """Raw aiobotocore plus boto3's TypeDeserializer/TypeSerializer: plain dicts in and out."""

    key = "aiobotocore_dicts"
    label = "aiobotocore + TypeDeserializer (plain dicts)"
    unsupported = {
        "scan_1mb": "the parser of raw aiobotocore plus TypeDeserializer: see the 1,000-item cases",
        "cold_start": "raw aiobotocore plus an import of boto3",
    }

    def __init__(self) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._deserializer = TypeDeserializer()
        self._serializer = TypeSerializer()

    def item(self, typed: dict[str, Any]) -> Any:
        deserialize = self._deserializer.deserialize
        return {name: deserialize(value) for name, value in typed.items()}

    def items(self, typed: list[dict[str, Any]]) -> list[Any]:
        return [self.item(one) for one in typed]

    def build(self, item: dict[str, Any]) -> Any:
        return item

    def encode(self, obj: Any) -> dict[str, Any]:
        serialize = self._serializer.serialize
        return {name: serialize(value) for name, value in obj.items()}
