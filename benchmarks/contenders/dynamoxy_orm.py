"""dynamoxy: a typed async ORM on a Rust core (signing, HTTP, JSON in Rust). Models out.

dynamoxy needs Python 3.12 or later: this contender runs in its own interpreter and virtualenv
(`benchmarks/requirements-py312.txt`, built by `benchmarks/envs.py`).
"""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

import dynamoxy
from dynamoxy import Attr, Document, field, partition_key, sort_key

from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE
from .base import NO_BODY_DECODE, REGION, STATIC_CREDENTIALS, Contender, Endpoints


class Address(Document):
    """The nested map of the benchmark item."""

    street: Attr[str]
    city: Attr[str]
    zip: Attr[str]


class DynamoxyBench(dynamoxy.Model, table=TABLE):
    """The benchmark item as a dynamoxy model (datetimes in its default ISO format, as stored)."""

    pk: Attr[str] = partition_key()
    sk: Attr[str] = sort_key()
    name: Attr[str]
    email: Attr[str]
    city: Attr[str]
    country: Attr[str]
    status: Attr[str]
    description: Attr[str]
    count_: Attr[int] = field(attribute_name="count")
    rank: Attr[int]
    price: Attr[Decimal]
    active: Attr[bool]
    verified: Attr[bool]
    tags: Attr[set[str]]
    scores: Attr[list[int]]
    address: Attr[Address]
    attrs: Attr[dict[str, str]]
    blob: Attr[bytes]
    created: Attr[dt.datetime]
    note: Attr[str]


class Dynamoxy(Contender):
    """`repository.get`, `repository.put` (PutItem), `repository.query(...).all()`,
    `repository.batch_put`, `client.transaction()`, `async for` over `repository.scan()`."""

    key = "dynamoxy"
    label = "dynamoxy (Rust core)"
    unsupported = {"decode_1000": NO_BODY_DECODE}

    async def open(self, endpoints: Endpoints) -> None:
        self._stack = AsyncExitStack()
        credentials = dynamoxy.Credentials(
            STATIC_CREDENTIALS["aws_access_key_id"], STATIC_CREDENTIALS["aws_secret_access_key"]
        )

        async def client(url: str) -> dynamoxy.Client:
            made = dynamoxy.Client(endpoint_url=url, region=REGION, credentials=credentials)
            return await self._stack.enter_async_context(made)

        self.client = await client(endpoints.url)
        self.repository = self.client.repository(DynamoxyBench)
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one client is all it uses
        self.slow_repository = (await client(endpoints.latency_url)).repository(DynamoxyBench)
        self.page_repository = (await client(endpoints.page_url)).repository(DynamoxyBench)

    async def close(self) -> None:
        await self._stack.aclose()

    def build(self, item: dict[str, Any]) -> Any:
        values = dict(item)
        values["count_"] = int(values.pop("count"))
        values["rank"] = int(values["rank"])
        values["scores"] = [int(v) for v in values["scores"]]
        values["address"] = Address(**values["address"])
        values["created"] = dt.datetime.fromisoformat(values["created"])
        return DynamoxyBench(**values)

    async def get_one(self) -> Any:
        return await self.repository.get(GET_KEY["pk"], GET_KEY["sk"])

    async def put_one(self, obj: Any) -> None:
        await self.repository.put(obj)

    async def _query(self, size: int) -> list[Any]:
        items: list[Any] = await self.repository.query(pk=PAGE_KEYS[size]).all()
        return items

    async def query_100(self) -> list[Any]:
        return await self._query(100)

    async def query_1000(self) -> list[Any]:
        return await self._query(1000)

    async def batch_write(self, objs: list[Any]) -> None:
        await self.repository.batch_put(objs)

    async def transaction_25(self, objs: list[Any]) -> None:
        async with self.client.transaction() as tx:
            for obj in objs:
                tx.put(obj)

    async def scan_1mb(self) -> int:
        return sum([1 async for _ in self.repository.scan()])

    async def scan_paged(self) -> int:
        return sum([1 async for _ in self.page_repository.scan().page_size(PAGED_SIZE)])

    async def concurrent_get(self) -> Any:
        return await self.slow_repository.get(GET_KEY["pk"], GET_KEY["sk"])
