"""The benchmark's data: one 20-attribute item shape, its canned pages and its table.

Every contender reads and writes the same items. Each item holds 20 attributes of mixed DynamoDB
types (S, N, BOOL, L, M, SS, B) and is about 800 bytes of DynamoDB JSON, so a 1,000-item Query
page is about 800 KB, like the page the issue measures.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, field_validator

TABLE = "bench"
GET_KEY = {"pk": "bench", "sk": "item-000000"}
PAGE_KEYS = {100: "items-100", 1000: "items-1000"}

Wire = dict[str, Any]

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]
_CITIES = ("Lisbon", "Oslo", "Kyoto", "Quito", "Perth", "Accra", "Lima", "Turin")


def plain_item(pk: str, i: int) -> dict[str, Any]:
    """Item number `i` of partition `pk` as Python values (numbers as Decimal, as boto3 wants)."""
    words = [_WORDS[(i + k) % len(_WORDS)] for k in range(30)]
    city = _CITIES[i % len(_CITIES)]
    return {
        "pk": pk,
        "sk": f"item-{i:06d}",
        "name": f"{words[0].title()} {words[1].title()}",
        "email": f"{words[2]}.{words[3]}{i}@example.com",
        "city": city,
        "country": "PT" if i % 2 else "NO",
        "status": ("active", "pending", "closed")[i % 3],
        "description": " ".join(words[:8]),
        "count": Decimal(i * 7 % 1000),
        "rank": Decimal(i),
        "price": Decimal(f"{i % 500}.{i % 100:02d}"),
        "active": i % 2 == 0,
        "verified": i % 3 == 0,
        "tags": {words[4], words[5], words[6]},
        "scores": [Decimal(i % 97 + k) for k in range(5)],
        "address": {"street": f"{i} {words[7].title()} Street", "city": city, "zip": f"{i:05d}"},
        "attrs": {"colour": words[8], "size": words[9], "shape": words[10], "mood": words[11]},
        "blob": bytes((i + k) % 256 for k in range(32)),
        "created": (
            dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i * 3607, microseconds=i)
        ).isoformat(timespec="microseconds"),
        "note": " ".join(words[12:16]),
    }


def _wire_value(value: Any) -> Wire:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Decimal | int):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set):
        return {"SS": sorted(value)}
    if isinstance(value, list):
        return {"L": [_wire_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _wire_value(v) for k, v in value.items()}}
    raise TypeError(type(value))


def wire_item(pk: str, i: int) -> Wire:
    """Item number `i` of partition `pk` as DynamoDB JSON (binary as base64 text)."""
    return {name: _wire_value(value) for name, value in plain_item(pk, i).items()}


def page(size: int) -> Wire:
    """The Query response of `size` items whose partition is `PAGE_KEYS[size]`."""
    key = PAGE_KEYS[size]
    items = [wire_item(key, i) for i in range(size)]
    return {"Items": items, "Count": size, "ScannedCount": size}


def table_description(name: str = TABLE) -> Wire:
    """What DescribeTable answers: the benchmark model's keys, on-demand, ACTIVE, no indexes."""
    return {
        "TableName": name,
        "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}",
        "TableId": "00000000-0000-0000-0000-000000000000",
        "TableStatus": "ACTIVE",
        "CreationDateTime": 1704067200.0,
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingModeSummary": {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": 1704067200.0,
        },
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": 0,
            "WriteCapacityUnits": 0,
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "DeletionProtectionEnabled": False,
    }


class Address(BaseModel):
    """The nested map of the benchmark item."""

    street: str
    city: str
    zip: str


class PlainBench(BaseModel):
    """The benchmark item as a plain pydantic model (for the aiobotocore + pydantic contender)."""

    pk: str
    sk: str
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

    @field_validator("blob", mode="before")
    @classmethod
    def _unwrap_binary(cls, value: Any) -> Any:
        # boto3's TypeDeserializer wraps B values in boto3.dynamodb.types.Binary.
        return getattr(value, "value", value)
