"""pydynox: a PynamoDB-style ORM on a Rust core (the AWS SDK for Rust, tokio). Models out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from pydynox import BatchWriter, DynamoDBClient, Model, ModelConfig, Transaction
from pydynox.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DatetimeAttribute,
    DecimalAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    StringAttribute,
    StringSetAttribute,
)

from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE
from .base import NO_BODY_DECODE, REGION, STATIC_CREDENTIALS, Contender, Endpoints


@dataclasses.dataclass
class Address:
    """The nested map, as pydynox's documentation types one (a dataclass in a MapAttribute)."""

    street: str
    city: str
    zip: str


def make_model(client: DynamoDBClient) -> type[Model]:
    """The benchmark model bound to one client (pydynox reads the client from the config)."""

    class PydynoxBench(Model):
        model_config = ModelConfig(table=TABLE, client=client)

        pk = StringAttribute(partition_key=True)
        sk = StringAttribute(sort_key=True)
        name = StringAttribute()
        email = StringAttribute()
        city = StringAttribute()
        country = StringAttribute()
        status = StringAttribute()
        description = StringAttribute()
        count = NumberAttribute()
        rank = NumberAttribute()
        price = DecimalAttribute()
        active = BooleanAttribute()
        verified = BooleanAttribute()
        tags = StringSetAttribute()
        scores = ListAttribute()
        address = MapAttribute(Address)
        attrs = MapAttribute()
        blob = BinaryAttribute()
        created = DatetimeAttribute()
        note = StringAttribute()

    return PydynoxBench


class Pydynox(Contender):
    """`await Model.get`, `await obj.save()` (PutItem), `async for` over `Model.query` and
    `Model.scan`, `BatchWriter`, `Transaction.save_model`."""

    key = "pydynox"
    label = "pydynox (Rust core)"
    unsupported = {"decode_1000": NO_BODY_DECODE}

    async def open(self, endpoints: Endpoints) -> None:
        def client(url: str) -> DynamoDBClient:
            return DynamoDBClient(
                region=REGION,
                access_key=STATIC_CREDENTIALS["aws_access_key_id"],
                secret_key=STATIC_CREDENTIALS["aws_secret_access_key"],
                endpoint_url=url,
            )

        self.client = client(endpoints.url)
        self.model = make_model(self.client)
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one client is all it uses
        self.slow_model = make_model(client(endpoints.latency_url))
        self.page_model = make_model(client(endpoints.page_url))

    def build(self, item: dict[str, Any]) -> Any:
        values = dict(item)
        values["count"] = int(values["count"])
        values["rank"] = int(values["rank"])
        values["price"] = Decimal(values["price"])
        values["scores"] = [int(v) for v in values["scores"]]
        values["address"] = Address(**values["address"])
        values["created"] = dt.datetime.fromisoformat(values["created"])
        return self.model(**values)

    async def get_one(self) -> Any:
        return await self.model.get(pk=GET_KEY["pk"], sk=GET_KEY["sk"])

    async def put_one(self, obj: Any) -> None:
        await obj.save()

    async def _query(self, size: int) -> list[Any]:
        return [item async for item in self.model.query(partition_key=PAGE_KEYS[size])]

    async def query_100(self) -> list[Any]:
        return await self._query(100)

    async def query_1000(self) -> list[Any]:
        return await self._query(1000)

    async def batch_write(self, objs: list[Any]) -> None:
        async with BatchWriter(self.client, TABLE) as batch:
            for obj in objs:
                batch.put(obj.to_dict())

    async def transaction_25(self, objs: list[Any]) -> None:
        async with Transaction(self.client) as tx:
            for obj in objs:
                tx.save_model(obj)

    async def scan_1mb(self) -> int:
        return sum([1 async for _ in self.model.scan()])

    async def scan_paged(self) -> int:
        return sum([1 async for _ in self.page_model.scan(page_size=PAGED_SIZE)])

    async def concurrent_get(self) -> Any:
        return await self.slow_model.get(pk=GET_KEY["pk"], sk=GET_KEY["sk"])
