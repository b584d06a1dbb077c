"""A user's single-table module for the command-line tests (copied into the project folder as
`entities.py`, so the `adyn` child process imports it as the user's own code).

`Shop` is the table model (discriminator "type", a stream); `Customer` has a `Unique()` email
and a version, `Order` templated keys with a datetime and an overloaded index, `Note` an index
of its own (the table needs the union of every entity's indexes). The functions are backfill
functions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from adyn import GlobalIndex, HashKey, Model, RangeKey, Unique, Version


class Shop(Model):
    class Meta:
        table_name = "shop"
        discriminator = "type"
        stream = "new_and_old"

    pk: Annotated[str, HashKey()] = ""
    sk: Annotated[str, RangeKey()] = ""
    gsi1pk: str | None = None
    gsi1sk: str | None = None

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", range_key="gsi1sk", projection="all")


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
    email: Annotated[str, Unique()]
    name: str
    version: Annotated[int, Version()] = 0


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


class Note(Shop):
    class Meta:
        entity = "note"
        keys = {"pk": "NOTE#{n:04d}", "sk": "NOTE"}

    n: int
    text: str
    topic: str | None = None

    by_topic = GlobalIndex(hash_key="topic", projection="keys")


def shout(customer: Customer) -> Customer | None:
    """Upper-case a customer's name (once)."""
    if customer.name.isupper():
        return None
    customer.name = customer.name.upper()
    return customer


def pay(item: Shop) -> Shop | None:
    """Through the table model: pay open orders, shout customers' names, leave notes alone."""
    if isinstance(item, Order):
        if item.status != "open":
            return None
        item.status = "paid"  # gsi1pk follows: STATUS#paid
        return item
    if isinstance(item, Customer):
        return shout(item)
    return None
