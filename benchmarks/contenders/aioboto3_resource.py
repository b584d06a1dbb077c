"""aioboto3's resource API (boto3's `Table` made async): plain dicts in and out.

aioboto3 pins its own aiobotocore and botocore releases, older than the ones adyn is measured
with, so this contender runs in a virtualenv of its own (`benchmarks/requirements-aioboto3.txt`,
built by `benchmarks/envs.py`) and never changes the main environment.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer

from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE
from .base import REGION, STATIC_CREDENTIALS, Contender, Endpoints


class Aioboto3(Contender):
    """`table.get_item`, `put_item`, `query` and `scan` (following `LastEvaluatedKey`),
    `table.batch_writer()`; transactions on the resource's client with `TypeSerializer`, since
    the resource API has none."""

    key = "aioboto3"
    label = "aioboto3 (resource API, plain dicts)"
    unsupported = {
        "decode_1000": "the resource API decodes with botocore's parser and TypeDeserializer: "
        "the aiobotocore + TypeDeserializer row"
    }

    async def open(self, endpoints: Endpoints) -> None:
        self._stack = AsyncExitStack()
        session = aioboto3.Session()

        async def table(url: str) -> Any:
            resource = session.resource(
                "dynamodb", endpoint_url=url, region_name=REGION, **STATIC_CREDENTIALS
            )
            dynamo = await self._stack.enter_async_context(resource)
            return await dynamo.Table(TABLE)

        self.table = await table(endpoints.url)
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one resource is all it uses
        self.slow_table = await table(endpoints.latency_url)
        self.page_table = await table(endpoints.page_url)
        self._serialize = TypeSerializer().serialize

    async def close(self) -> None:
        await self._stack.aclose()

    def build(self, item: dict[str, Any]) -> Any:
        return item

    async def get_one(self) -> Any:
        return (await self.table.get_item(Key=GET_KEY))["Item"]

    async def put_one(self, obj: Any) -> None:
        await self.table.put_item(Item=obj)

    async def _pages(self, call: Any, **kwargs: Any) -> list[Any]:
        items: list[Any] = []
        while True:
            response = await call(**kwargs)
            items += response["Items"]
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def _query(self, size: int) -> list[Any]:
        condition = Key("pk").eq(PAGE_KEYS[size])
        return await self._pages(self.table.query, KeyConditionExpression=condition)

    async def query_100(self) -> list[Any]:
        return await self._query(100)

    async def query_1000(self) -> list[Any]:
        return await self._query(1000)

    async def batch_write(self, objs: list[Any]) -> None:
        async with self.table.batch_writer() as batch:
            for obj in objs:
                await batch.put_item(Item=obj)

    async def transaction_25(self, objs: list[Any]) -> None:
        serialize = self._serialize
        actions = [
            {"Put": {"TableName": TABLE, "Item": {k: serialize(v) for k, v in obj.items()}}}
            for obj in objs
        ]
        await self.table.meta.client.transact_write_items(TransactItems=actions)

    async def _scan(self, table: Any, **kwargs: Any) -> int:
        count = 0
        while True:
            response = await table.scan(**kwargs)
            count += len(response["Items"])
            if "LastEvaluatedKey" not in response:
                return count
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def scan_1mb(self) -> int:
        return await self._scan(self.table)

    async def scan_paged(self) -> int:
        return await self._scan(self.page_table, Limit=PAGED_SIZE)

    async def concurrent_get(self) -> Any:
        return (await self.slow_table.get_item(Key=GET_KEY))["Item"]
