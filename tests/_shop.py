"""Models of shared tables (single-table design) used by the entity and template tests.

- `Shop`: the table model of API.md section 10 (attribute discriminator "type"), with its
  entities `Customer`, `Order` (sparse by status) and `LineItem`, and an overloaded GSI;
- `Ledger`: an attribute discriminator whose unknown entities are skipped;
- `Legacy`: a callable discriminator reading the entity from the sort key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from adyn import GlobalIndex, HashKey, Model, RangeKey


class Shop(Model):
    class Meta:
        table_name = "shop"
        discriminator = "type"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    gsi1pk: str | None = None
    gsi1sk: str | None = None

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", range_key="gsi1sk", projection="all")
    inverted = GlobalIndex(hash_key="sk", range_key="pk", projection="keys")


class Customer(Shop):
    class Meta:
        entity = "customer"
        keys = {
            "pk": "CUSTOMER#{id}",
            "sk": "PROFILE",
            "gsi1pk": "EMAIL#{email}",
            "gsi1sk": "CUSTOMER",
        }

    id: UUID
    email: str
    name: str


class Order(Shop):
    class Meta:
        entity = "order"
        keys = {
            "pk": "CUSTOMER#{customer_id}",
            "sk": "ORDER#{placed_at}#{id}",
            "gsi1pk": "STATUS#{status}",
            "gsi1sk": "{placed_at}",
        }

    id: UUID
    customer_id: UUID
    placed_at: datetime
    status: Literal["open", "paid", "shipped"] | None = "open"
    total: Decimal = Decimal(0)
    name: int = 0  # the same name as Customer.name, of another type


class LineItem(Shop):
    class Meta:
        entity = "line"
        keys = {"pk": "ORDER#{order_id}", "sk": "LINE#{n:04d}"}

    order_id: UUID
    n: int
    sku: str
    quantity: int = 1


class Ledger(Model):
    class Meta:
        table_name = "ledger"
        discriminator = "kind"
        unknown_entities = "skip"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]


class Credit(Ledger):
    amount: int = 0


class Debit(Ledger):
    amount: int = 0
    reason: str = ""


def entity_of_key(key: dict[str, Any]) -> str:
    """The legacy table's rule: the entity is the sort key's first part."""
    return str(key["sk"]).split("#", 1)[0]


class Legacy(Model):
    class Meta:
        table_name = "legacy"
        discriminator = entity_of_key

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]


class User(Legacy):
    class Meta:
        entity = "USER"
        keys = {"pk": "ORG#{org}", "sk": "USER#{name}"}

    org: str
    name: str


class Team(Legacy):
    class Meta:
        entity = "TEAM"
        keys = {"pk": "ORG#{org}", "sk": "TEAM#{name}"}

    org: str
    name: str
    size: int = 0
