"""aiopynamodb: PynamoDB's API made async on aiobotocore. Model instances out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiobotocore.parsers import AioResponseParserFactory
from aiobotocore.session import get_session
from aiopynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from aiopynamodb.connection import Connection
from aiopynamodb.constants import STRING
from aiopynamodb.models import Model
from aiopynamodb.transactions import TransactWrite

from ..data import GET_KEY, PAGE_KEYS, PAGED_SIZE, TABLE
from .base import REGION, STATIC_CREDENTIALS, Contender, Endpoints
from .pynamo_common import model_kwargs


class IsoDateTime(Attribute[dt.datetime]):
    """An ISO 8601 datetime (PynamoDB's own UTCDateTimeAttribute expects another format)."""

    attr_type = STRING

    def serialize(self, value: dt.datetime) -> str:
        return value.isoformat(timespec="microseconds")

    def deserialize(self, value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value)


class AddressMap(MapAttribute[str, Any]):
    street = UnicodeAttribute()
    city = UnicodeAttribute()
    zip = UnicodeAttribute()


def make_model(host: str) -> type[Model]:
    """The benchmark model bound to one stub address."""

    class AioPynamoBench(Model):
        class Meta:
            table_name = TABLE
            region = REGION
            aws_access_key_id = STATIC_CREDENTIALS["aws_access_key_id"]
            aws_secret_access_key = STATIC_CREDENTIALS["aws_secret_access_key"]

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        name = UnicodeAttribute()
        email = UnicodeAttribute()
        city = UnicodeAttribute()
        country = UnicodeAttribute()
        status = UnicodeAttribute()
        description = UnicodeAttribute()
        # `count` would shadow Model.count(); the stored name stays "count".
        count_ = NumberAttribute(attr_name="count")
        rank = NumberAttribute()
        price = NumberAttribute()
        active = BooleanAttribute()
        verified = BooleanAttribute()
        tags = UnicodeSetAttribute()
        scores = ListAttribute(of=NumberAttribute)
        address = AddressMap()  # type: ignore[no-untyped-call]
        attrs = MapAttribute()  # type: ignore[no-untyped-call,var-annotated]
        blob = BinaryAttribute(legacy_encoding=False)
        created = IsoDateTime()
        note = UnicodeAttribute()

    AioPynamoBench.Meta.host = host  # type: ignore[attr-defined]
    return AioPynamoBench


class AioPynamo(Contender):
    """`await Model.get`, `await obj.save()`, `async for` over `Model.query` and `Model.scan`,
    `Model.batch_write()`, `TransactWrite`."""

    key = "aiopynamodb"
    label = "aiopynamodb"

    async def open(self, endpoints: Endpoints) -> None:
        self.model = make_model(endpoints.url)
        self.models = [self.model]
        if endpoints.latency_url is None or endpoints.page_url is None:
            return  # a cold start: one model is all it uses
        self.slow_model = make_model(endpoints.latency_url)
        self.page_model = make_model(endpoints.page_url)
        self.models += [self.slow_model, self.page_model]
        self.connection = Connection(region=REGION, host=endpoints.url)
        service = await get_session().get_service_model("dynamodb")
        self._query_shape = service.operation_model("Query").output_shape
        self._parser = AioResponseParserFactory().create_parser("json")

    async def close(self) -> None:
        for model in self.models:
            await model.close_connection()
        if hasattr(self, "connection"):
            await self.connection.close()

    def build(self, item: dict[str, Any]) -> Any:
        return self.model(**model_kwargs(item))

    async def get_one(self) -> Any:
        return await self.model.get(GET_KEY["pk"], GET_KEY["sk"])

    async def put_one(self, obj: Any) -> None:
        await obj.save()

    async def _query(self, size: int) -> list[Any]:
        return [item async for item in self.model.query(PAGE_KEYS[size])]

    async def query_100(self) -> list[Any]:
        return await self._query(100)

    async def query_1000(self) -> list[Any]:
        return await self._query(1000)

    async def decode_1000(self, body: bytes) -> list[Any]:
        http = {"status_code": 200, "headers": {}, "body": body}
        parsed = await self._parser.parse(http, self._query_shape)  # type: ignore[arg-type]
        return [self.model.from_raw_data(item) for item in parsed["Items"]]

    async def batch_write(self, objs: list[Any]) -> None:
        async with self.model.batch_write() as batch:
            for obj in objs:
                await batch.save(obj)

    async def transaction_25(self, objs: list[Any]) -> None:
        async with TransactWrite(connection=self.connection) as tx:
            for obj in objs:
                tx.save(obj)

    async def scan_1mb(self) -> int:
        return sum([1 async for _ in self.model.scan()])

    async def scan_paged(self) -> int:
        return sum([1 async for _ in self.page_model.scan(page_size=PAGED_SIZE)])

    async def concurrent_get(self) -> Any:
        return await self.slow_model.get(GET_KEY["pk"], GET_KEY["sk"])
