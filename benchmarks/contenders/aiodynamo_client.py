"""aiodynamo with its aiohttp adapter: skips botocore, plain dicts out (numbers as float)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiodynamo.client import Client
from aiodynamo.credentials import Key, StaticCredentials
from aiodynamo.expressions import HashKey
from aiodynamo.http.aiohttp import AIOHTTP
from aiodynamo.models import BatchWriteRequest
from aiodynamo.operations import Put
from aiodynamo.utils import dy2py
from yarl import URL

from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE
from .base import REGION, STATIC_CREDENTIALS, Contender, Endpoints

BATCH_SIZE = 25  # BatchWriteItem's limit: aiodynamo sends what it is given in one request


class Aiodynamo(Contender):
    """`table.get_item`, `put_item`, `query`, `scan`, `client.batch_write`,
    `client.transact_write_items`, with aiodynamo's defaults."""

    key = "aiodynamo"
    label = "aiodynamo (plain dicts)"

    async def open(self, endpoints: Endpoints) -> None:
        self._http = aiohttp.ClientSession()
        credentials = StaticCredentials(
            Key(
                STATIC_CREDENTIALS["aws_access_key_id"], STATIC_CREDENTIALS["aws_secret_access_key"]
            )
        )
        http = AIOHTTP(self._http)

        def client(url: str) -> Client:
            return Client(http, credentials, REGION, endpoint=URL(url))

        self.client = client(endpoints.url)
        self.table = self.client.table(TABLE)
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one client is all it uses
        self.slow_table = client(endpoints.latency_url).table(TABLE)
        self.page_table = client(endpoints.page_url).table(TABLE)

    async def close(self) -> None:
        await self._http.close()

    def build(self, item: dict[str, Any]) -> Any:
        return item

    async def get_one(self) -> Any:
        return await self.table.get_item(GET_KEY)

    async def put_one(self, obj: Any) -> None:
        await self.table.put_item(obj)

    async def _query(self, size: int) -> list[Any]:
        return [item async for item in self.table.query(HashKey("pk", PAGE_KEYS[size]))]

    async def query_100(self) -> list[Any]:
        return await self._query(100)

    async def query_1000(self) -> list[Any]:
        return await self._query(1000)

    def decode_1000(self, body: bytes) -> list[Any]:
        # What aiodynamo's client does with a response body: json.loads, then dy2py per item.
        numeric_type = self.client.numeric_type
        return [dy2py(item, numeric_type) for item in json.loads(body)["Items"]]

    async def batch_write(self, objs: list[Any]) -> None:
        for start in range(0, len(objs), BATCH_SIZE):
            pending = objs[start : start + BATCH_SIZE]
            while pending:
                request = {TABLE: BatchWriteRequest(items_to_put=pending)}
                result = await self.client.batch_write(request)
                pending = result[TABLE].unput_items if TABLE in result else []

    async def transaction_25(self, objs: list[Any]) -> None:
        await self.client.transact_write_items([Put(table=TABLE, item=obj) for obj in objs])

    async def scan_1mb(self) -> int:
        return sum([1 async for _ in self.table.scan()])

    async def scan_paged(self) -> int:
        # `scan()` takes no page size; a page at a time is `scan_single_page(limit=...)`.
        count, start = 0, None
        while True:
            page = await self.page_table.scan_single_page(limit=PAGED_SIZE, start_key=start)
            count += len(page.items)
            if page.last_evaluated_key is None:
                return count
            start = page.last_evaluated_key

    async def concurrent_get(self) -> Any:
        return await self.slow_table.get_item(GET_KEY)
