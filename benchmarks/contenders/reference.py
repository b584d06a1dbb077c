"""Reference points for the decode step: parsing the page's JSON and nothing else."""

from __future__ import annotations

import json
from typing import Any

import orjson

from .base import Contender

ONLY_DECODE = "a reference for the decode step only"
_CASES = (
    "query_1000",
    "put_one",
    "get_one",
    "query_100",
    "batch_write",
    "transaction_25",
    "scan_1mb",
    "scan_paged",
    "cold_start",
    "concurrent_get",
    "inflight_256",
    "fairness",
)


class JsonLoads(Contender):
    """`json.loads` of the body: DynamoDB-typed dicts, no conversion at all."""

    key = "json"
    label = "reference: json.loads only"
    unsupported = {case: ONLY_DECODE for case in (*_CASES, "memory")}

    def decode_1000(self, body: bytes) -> Any:
        return json.loads(body)["Items"]


class OrjsonLoads(Contender):
    """`orjson.loads` of the body: DynamoDB-typed dicts, no conversion at all. In the memory
    case: what the wire items themselves retain."""

    key = "orjson"
    label = "reference: orjson.loads only"
    unsupported = {case: ONLY_DECODE for case in _CASES}

    def decode_1000(self, body: bytes) -> Any:
        return orjson.loads(body)["Items"]
