"""Reference points for the decode step: parsing the page's JSON and nothing else."""

from __future__ import annotations

import json
from typing import Any

import orjson

from .base import Contender

_ONLY_DECODE = {
    case: "a reference for the decode step only"
    for case in ("query_1000", "put_one", "get_one", "query_100", "concurrent_get")
}


class JsonLoads(Contender):
    """`json.loads` of the body: DynamoDB-typed dicts, no conversion at all."""

    key = "json"
    label = "reference: json.loads only"
    unsupported = _ONLY_DECODE

    def decode_1000(self, body: bytes) -> Any:
        return json.loads(body)["Items"]


class OrjsonLoads(Contender):
    """`orjson.loads` of the body: DynamoDB-typed dicts, no conversion at all."""

    key = "orjson"
    label = "reference: orjson.loads only"
    unsupported = _ONLY_DECODE

    def decode_1000(self, body: bytes) -> Any:
        return orjson.loads(body)["Items"]
