"""PynamoDB (synchronous, botocore underneath): PynamoDB model instances out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.parsers import create_parser
from botocore.session import get_session
from pynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import STRING
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

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
    """The benchmark model bound to one stub address (PynamoDB reads the host from Meta)."""

    class PynamoBench(Model):
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

    PynamoBench.Meta.host = host  # type: ignore[attr-defined]
    return PynamoBench


class Pynamo(Contender):
    """`Model.get`, `Model.save` (PutItem), `Model.query`, `Model.batch_write()`,
    `TransactWrite`, `Model.scan`: all synchronous."""

    key = "pynamodb"
    label = "PynamoDB (sync)"
    unsupported = {
        case: "synchronous client (no asyncio concurrency)"
        for case in ("concurrent_get", "inflight_256", "fairness")
    }

    async def open(self, endpoints: Endpoints) -> None:
        self.model = make_model(endpoints.url)
        if endpoints.page_url is None:
            return  # a cold start: one model is all it uses
        self.page_model = make_model(endpoints.page_url)
        self.connection = Connection(region=REGION, host=endpoints.url)
        service = get_session().get_service_model("dynamodb")
        self._query_shape = service.operation_model("Query").output_shape
        self._parser = create_parser("json")

    def build(self, item: dict[str, Any]) -> Any:
        return self.model(**model_kwargs(item))

    def get_one(self) -> Any:
        return self.model.get(GET_KEY["pk"], GET_KEY["sk"])

    def put_one(self, obj: Any) -> None:
        obj.save()

    def query_100(self) -> list[Any]:
        return list(self.model.query(PAGE_KEYS[100]))

    def query_1000(self) -> list[Any]:
        return list(self.model.query(PAGE_KEYS[1000]))

    def decode_1000(self, body: bytes) -> list[Any]:
        # botocore's parser (what PynamoDB's client runs), then PynamoDB's model decoding.
        http = {"status_code": 200, "headers": {}, "body": body}
        parsed = self._parser.parse(http, self._query_shape)  # type: ignore[arg-type]
        return [self.model.from_raw_data(item) for item in parsed["Items"]]

    def batch_write(self, objs: list[Any]) -> None:
        with self.model.batch_write() as batch:
            for obj in objs:
                batch.save(obj)

    def transaction_25(self, objs: list[Any]) -> None:
        with TransactWrite(connection=self.connection) as tx:
            for obj in objs:
                tx.save(obj)

    def scan_1mb(self) -> int:
        return sum(1 for _ in self.model.scan())

    def scan_paged(self) -> int:
        return sum(1 for _ in self.page_model.scan(page_size=PAGED_SIZE))
