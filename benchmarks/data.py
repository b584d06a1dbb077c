"""The benchmark's data: one 20-attribute item shape, its canned pages and its table.

Every contender reads and writes the same items. Each item holds 20 attributes of mixed DynamoDB
types (S, N, BOOL, L, M, SS, B) and is about 800 bytes of DynamoDB JSON, so a 1,000-item Query
page is about 800 KB, like the page the issue measures.

Standard library only: contenders in other interpreters (and the cold-start programs) import it
without pulling in pydantic. The pydantic models live in `benchmarks.models`.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

TABLE = "bench"
GET_KEY = {"pk": "bench", "sk": "item-000000"}
PAGE_KEYS = {100: "items-100", 1000: "items-1000"}
SCAN_PK = "scan"  # the partition of the items a Scan returns
PAGE_BYTES = 1024 * 1024  # DynamoDB stops a Scan or Query page at 1 MB of items
# Items in the stub's two scanned tables, full run and --quick: read in 1 MB pages, and in pages
# of `Limit` items (benchmarks/stub_server.py).
SCAN_TOTAL = {False: 100_000, True: 2_500}
PAGED_TOTAL = {False: 20_000, True: 500}
PAGED_SIZE = 100

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


def to_wire(value: Any, raw_bytes: bool = False) -> Wire:
    """One Python value as DynamoDB JSON: binary as base64 text, or left as bytes for botocore's
    typed input (`raw_bytes`)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Decimal | int):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": value if raw_bytes else base64.b64encode(value).decode("ascii")}
    if isinstance(value, set):
        return {"SS": sorted(value)}
    if isinstance(value, list):
        return {"L": [to_wire(v, raw_bytes) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: to_wire(v, raw_bytes) for k, v in value.items()}}
    raise TypeError(type(value))


def wire_item(pk: str, i: int) -> Wire:
    """Item number `i` of partition `pk` as DynamoDB JSON (binary as base64 text)."""
    return {name: to_wire(value) for name, value in plain_item(pk, i).items()}


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


def item_size(item: Wire) -> int:
    """An item's size by DynamoDB's rules (names plus values), close enough to size pages."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Wire) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return (len(data.replace(".", "").replace("-", "").lstrip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in data.items())
    raise ValueError(kind)


def items_per_mb_page() -> int:
    """How many benchmark items DynamoDB puts in one 1 MB Scan page."""
    return PAGE_BYTES // item_size(wire_item(SCAN_PK, 0))
