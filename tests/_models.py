"""Models shared by the integration tests (the Post model is the one of API.md)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from adyn import GlobalIndex, HashKey, LocalIndex, Model, RangeKey, Timestamp, Version


class Address(BaseModel):
    city: str
    zip: str | None = None


class Post(Model):
    class Meta:
        table_name = "posts"

    forum: Annotated[str, HashKey()]
    id: Annotated[UUID, RangeKey()]
    user: UUID
    date: datetime
    views: int = 0
    score: Decimal = Decimal("0")
    content: str = ""
    tags: set[str] = set()
    address: Address | None = None
    history: list[dict[str, int]] = []
    email: str | None = Field(default=None, alias="em")

    by_user = GlobalIndex(hash_key="user", range_key="date", projection="all")
    by_views = LocalIndex(range_key="views", projection=["content"])
    by_score = GlobalIndex(hash_key="forum", range_key="score", projection="keys")


class Expiring(Model):
    class Meta:
        table_name = "expiring"
        ttl = "expires"

    id: Annotated[str, HashKey()]
    expires: Annotated[datetime, Timestamp()] | None = None


class Account(Model):
    class Meta:
        table_name = "accounts"

    id: Annotated[str, HashKey()]
    balance: int = 0
    version: Annotated[int, Version()] = 0


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Everything(Model):
    """One field of every row of the type table."""

    class Meta:
        table_name = "everything"

    pk: Annotated[str, HashKey()]
    sk: Annotated[int, RangeKey()] = 0
    s: str | None = None
    i: int | None = None
    f: float | None = None
    d: Decimal | None = None
    b: bool | None = None
    raw: bytes | None = None
    u: UUID | None = None
    when: datetime | None = None
    stamp: Annotated[datetime, Timestamp()] | None = None
    day: date | None = None
    color: Color | None = None
    level: Level | None = None
    mode: Literal["a", "b"] | None = None
    ss: set[str] = set()
    ns: set[Decimal] = set()
    bs: set[bytes] = set()
    items: list[int] = []
    pair: tuple[str, ...] = ()
    mapping: dict[str, int] = {}
    address: Address | None = None
    anything: dict[str, object] | None = None


class Shared1(Model):
    """Two models on one table."""

    class Meta:
        table_name = "shared"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    name: str = ""


class Shared2(Model):
    class Meta:
        table_name = "shared"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    size: int = 0
