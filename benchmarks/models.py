"""The benchmark item as pydantic models (for adyn's nested map and the pydantic contender)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, field_validator


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
