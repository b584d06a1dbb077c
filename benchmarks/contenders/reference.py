"""Reference points for the decode step: parsing the page's JSON and nothing else."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..cases import CASES
from .base import Contender

ONLY_DECODE = "a reference for the decode step only"
_CASES = tuple(case.key for case in CASES if case.key not in ("decode_1000", "memory"))


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
