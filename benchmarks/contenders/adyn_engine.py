"""adyn through its public API, with the fast data path (default) or without it."""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Annotated, Any

from adyn import Engine, HashKey, Model, RangeKey

from ..data import GET_KEY, PAGE_KEYS, TABLE, Address, plain_item
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


class Adyn(Contender):
    """`engine.get`, `engine.save` (UpdateItem), `engine.query(...).all()`."""

    key = "adyn"
    label = "adyn (fast path, default)"

    async def open(self, endpoints: Endpoints) -> None:
        self._stack = AsyncExitStack()
        self.engine = await self._stack.enter_async_context(Engine(endpoint_url=endpoints.url))
        await self.engine.bind(Bench, create=False)
        self.slow_engine = await self._stack.enter_async_context(
            Engine(endpoint_url=endpoints.latency_url)
        )
        await self.slow_engine.bind(Bench, create=False)

    async def close(self) -> None:
        await self._stack.aclose()

    async def get_one(self) -> Any:
        return await self.engine.get(Bench, pk=GET_KEY["pk"], sk=GET_KEY["sk"])

    def prepare_put(self, n: int) -> list[Any]:
        # New objects: `save` writes every field (an UpdateItem that sets 18 attributes).
        return [Bench(**plain_item("bench", 1)) for _ in range(n)]

    async def put_one(self, obj: Any) -> None:
        await self.engine.save(obj)

    async def query_100(self) -> list[Any]:
        return await self.engine.query(Bench, key=_partition(100)).all()

    async def query_1000(self) -> list[Any]:
        return await self.engine.query(Bench, key=_partition(1000)).all()

    def decode_1000(self, body: bytes) -> list[Any]:
        # The decode step as the engine runs it: orjson, then the model's generated decoder
        # over the page. Both are internal to adyn; the benchmark times this step alone.
        from adyn._http import parse_body
        from adyn.schema import schema_of

        return schema_of(Bench).decode_page(parse_body(body)["Items"])

    async def concurrent_get(self) -> Any:
        return await self.slow_engine.get(Bench, pk=GET_KEY["pk"], sk=GET_KEY["sk"])
