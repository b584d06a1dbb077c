"""adyn through its public API: what a service using adyn writes."""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Annotated, Any

import orjson

from adyn import Engine, HashKey, Model, RangeKey

from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE, table_description
from ..models import Address
from .base import Contender, Endpoints


class Bench(Model):
    """The benchmark item as an adyn model."""

    class Meta:
        table_name = TABLE

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    name: str
    email: str
    city: str
    country: str
    status: str
    description: str
    count: int
    rank: int
    price: Decimal
    active: bool
    verified: bool
    tags: set[str]
    scores: list[int]
    address: Address
    attrs: dict[str, str]
    blob: bytes
    created: dt.datetime
    note: str


def _partition(size: int) -> Any:
    # `Bench.pk == value` builds an adyn condition; to a type checker it reads as a bool.
    return Bench.pk == PAGE_KEYS[size]


class BodyTransport:
    """A user-written `adyn.Transport` that answers every Query with one response body.

    The decode case times adyn's work on a body already in memory through the public API: the
    body is parsed with `orjson.loads` (what a transport does with it) and the engine turns the
    page into models. DescribeTable answers so that `bind` can verify the table.
    """

    def __init__(self) -> None:
        self.body = b'{"Items": []}'

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        if operation == "DescribeTable":
            return {"Table": table_description(request["TableName"])}
        if operation != "Query":
            raise NotImplementedError(operation)
        answer: dict[str, Any] = orjson.loads(self.body)
        return answer


class Adyn(Contender):
    """`engine.get`, `engine.save` (UpdateItem), `engine.query(...).all()`, `engine.batch()`,
    `engine.transaction()`, `async for` over `engine.scan(...)`."""

    key = "adyn"
    label = "adyn"

    async def open(self, endpoints: Endpoints) -> None:
        self._stack = AsyncExitStack()
        self.engine = await self._engine(endpoint_url=endpoints.url)
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one engine is all it uses
        self.slow_engine = await self._engine(endpoint_url=endpoints.latency_url)
        self.page_engine = await self._engine(endpoint_url=endpoints.page_url)
        self._body = BodyTransport()
        self.body_engine = await self._engine(transport=self._body)

    async def _engine(self, **kwargs: Any) -> Engine:
        engine = await self._stack.enter_async_context(Engine(**kwargs))
        await engine.bind(Bench, create=False)
        return engine

    async def close(self) -> None:
        await self._stack.aclose()

    def build(self, item: dict[str, Any]) -> Any:
        return Bench(**item)  # a new object: `save` writes every field

    async def get_one(self) -> Any:
        return await self.engine.get(Bench, pk=GET_KEY["pk"], sk=GET_KEY["sk"])

    async def put_one(self, obj: Any) -> None:
        await self.engine.save(obj)

    async def query_100(self) -> list[Any]:
        return await self.engine.query(Bench, key=_partition(100)).all()

    async def query_1000(self) -> list[Any]:
        return await self.engine.query(Bench, key=_partition(1000)).all()

    async def decode_1000(self, body: bytes) -> list[Any]:
        self._body.body = body
        return await self.body_engine.query(Bench, key=_partition(1000)).all()

    async def batch_write(self, objs: list[Any]) -> None:
        async with self.engine.batch() as batch:
            for obj in objs:
                batch.save(obj)

    async def transaction_25(self, objs: list[Any]) -> None:
        async with self.engine.transaction() as tx:
            for obj in objs:
                tx.save(obj)

    async def scan_1mb(self) -> int:
        count = 0
        async for _ in self.engine.scan(Bench):
            count += 1
        return count

    async def scan_paged(self) -> int:
        count = 0
        async for _ in self.page_engine.scan(Bench, page_size=PAGED_SIZE):
            count += 1
        return count

    async def concurrent_get(self) -> Any:
        return await self.slow_engine.get(Bench, pk=GET_KEY["pk"], sk=GET_KEY["sk"])
