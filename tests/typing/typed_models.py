"""Models with a field of every kind, for the typing tests (checked by mypy and pyright)."""

from __future__ import annotations

import datetime as dt
import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from adyn import GlobalIndex, HashKey, LocalIndex, Model, RangeKey, Timestamp, Version


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Geo(BaseModel):
    lat: float
    lon: float


class Address(BaseModel):
    city: str
    zip: str | None = None
    geo: Geo | None = None
    lines: list[str] = []
    size: int = 0  # a field named like a path method: reached as Post.address["size"]


class Post(Model):
    class Meta:
        table_name = "typed-posts"

    forum: Annotated[str, HashKey()]
    id: Annotated[UUID, RangeKey()]
    user: UUID
    date: datetime
    day: dt.date | None = None  # `date` is a field here: the class body shadows the type
    views: int = 0
    ratio: float = 0.0
    score: Decimal = Decimal("0")
    content: str = ""
    blob: bytes = b""
    flag: bool = False
    status: Literal["open", "closed"] = "open"
    color: Color = Color.RED
    level: Level = Level.LOW
    tags: set[str] = set()
    numbers: set[int] = set()
    frozen: frozenset[str] = frozenset()
    ranks: list[int] = []
    pairs: tuple[str, ...] = ()
    history: list[dict[str, int]] = []
    counters: dict[str, int] = {}
    address: Address | None = None
    places: list[Address] = []
    email: str | None = Field(default=None, alias="em")
    expires: Annotated[datetime, Timestamp()] | None = None
    version: Annotated[int, Version()] = 0

    by_user = GlobalIndex(hash_key="user", range_key="date", projection="all")
    by_views = LocalIndex(range_key="views", projection=["content"])


class Reply(Post):
    """A subclass: inherits fields and indexes, which then belong to it."""

    class Meta:
        table_name = "typed-replies"

    parent: UUID | None = None


class Shop(Model):
    """A table model; its entity's key attributes come from Meta.keys."""

    class Meta:
        table_name = "typed-shop"
        discriminator = "type"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]


class Customer(Shop):
    class Meta:
        entity = "customer"
        keys = {"pk": "CUSTOMER#{id}", "sk": "PROFILE"}

    id: str
    name: str
