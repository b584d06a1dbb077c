"""aiodynamo with its aiohttp adapter: skips botocore, plain dicts out (numbers as float)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiodynamo.client import Client
from aiodynamo.credentials import Key, StaticCredentials
from aiodynamo.expressions import HashKey
from aiodynamo.http.aiohttp import AIOHTTP
from aiodynamo.utils import dy2py
from yarl import URL

from ..data import GET_KEY, PAGE_KEYS, TABLE, plain_item
from .base import REGION, STATIC_CREDENTIALS, Contender, Endpoints


class Aiodynamo(Contender):
    """`table.get_item`, `table.put_item`, `table.query` with aiodynamo's defaults."""

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
        self.client = Client(http, credentials, REGION, endpoint=URL(endpoints.url))
        self.table = self.client.table(TABLE)
        slow = Client(http, credentials, REGION, endpoint=URL(endpoints.latency_url))
        self.slow_table = slow.table(TABLE)

    async def close(self) -> None:
        await self._http.close()

    async def get_one(self) -> Any:
        return await self.table.get_item(GET_KEY)

    def prepare_put(self, n: int) -> list[Any]:
        return [plain_item("bench", 1) for _ in range(n)]

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

    async def concurrent_get(self) -> Any:
        return await self.slow_table.get_item(GET_KEY)
