"""A FastAPI shop on one DynamoDB table (single-table design): customers, orders, line items.

    AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 uvicorn examples.shop_service:app --port 8080

One table holds every entity. `Shop` is the table model: keys, one global index overloaded by
two entities, and the discriminator attribute "type" naming each item's entity. Key attributes
come from each entity's `Meta.keys` templates and are recomputed on every save:

    item        pk                 sk                          gsi1pk            gsi1sk
    customer    CUSTOMER#<id>      PROFILE                     EMAIL#<email>     CUSTOMER
    order       CUSTOMER#<cust>    ORDER#<placed_at>#<id>      STATUS#<status>   <placed_at>
    line item   ORDER#<order>      LINE#<nnn>

so a customer and their orders are one item collection (one query), an order's lines are
another, and the index finds a customer by email and the orders in a given status.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from adyn import Engine, GlobalIndex, HashKey, Model, RangeKey

Status = Literal["open", "paid", "shipped"]


class Shop(Model):
    """The table model. The key attributes default to "" only for type checkers that ask for
    every field (pyright); each entity computes them from its `Meta.keys`."""

    class Meta:
        table_name = "shop"
        discriminator = "type"

    pk: Annotated[str, HashKey()] = ""
    sk: Annotated[str, RangeKey()] = ""
    gsi1pk: str | None = None
    gsi1sk: str | None = None

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", range_key="gsi1sk", projection="all")


class Customer(Shop):
    class Meta(Shop.Meta):  # a subclass of the table model's Meta, as pyright wants
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
    class Meta(Shop.Meta):
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
    status: Status = "open"
    total: Decimal = Decimal(0)


class LineItem(Shop):
    class Meta(Shop.Meta):
        entity = "line"
        keys = {"pk": "ORDER#{order_id}", "sk": "LINE#{n:03d}"}

    order_id: UUID
    n: int
    sku: str
    quantity: int
    price: Decimal


# ------------------------------------------------------------------ the API's own shapes


class NewCustomer(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)


class NewLine(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=1000)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)


class NewOrder(BaseModel):
    lines: list[NewLine] = Field(min_length=1, max_length=99)


class CustomerOut(BaseModel):
    id: UUID
    email: str
    name: str


class OrderOut(BaseModel):
    id: UUID
    customer_id: UUID
    placed_at: datetime
    status: Status
    total: Decimal


class LineOut(BaseModel):
    n: int
    sku: str
    quantity: int
    price: Decimal


class Account(BaseModel):
    """A customer with their orders: one query of the customer's item collection."""

    customer: CustomerOut
    orders: list[OrderOut]


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut(id=customer.id, email=customer.email, name=customer.name)


def order_out(order: Order) -> OrderOut:
    return OrderOut(
        id=order.id,
        customer_id=order.customer_id,
        placed_at=order.placed_at,
        status=order.status,
        total=order.total,
    )


def get_engine(request: Request) -> Engine:
    """The app's engine (a FastAPI dependency)."""
    engine: Engine = request.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def find_order(engine: Engine, customer_id: UUID, order_id: UUID) -> Order:
    """An order by its id, within its customer's partition (404 when there is none)."""
    query = engine.query(Order, key={"customer_id": customer_id}, filter=Order.id == order_id)
    order = await query.first()
    if order is None:
        raise HTTPException(status_code=404, detail="no such order")
    return order


def create_app(**engine_options: Any) -> FastAPI:
    """The app; `engine_options` go to `Engine` (endpoint_url, table_name_template, ...)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[dict[str, Engine], None]:
        async with Engine(**engine_options) as engine:
            await engine.bind(Shop)  # the table model and every entity
            yield {"engine": engine}

    app = FastAPI(title="shop", lifespan=lifespan)

    @app.post("/customers", response_model=CustomerOut, status_code=201)
    async def add_customer(body: NewCustomer, engine: EngineDep) -> CustomerOut:
        taken = await engine.query(Customer.by_gsi1, key={"email": body.email}).first()
        if taken is not None:
            raise HTTPException(status_code=409, detail="email already registered")
        customer = Customer(id=uuid4(), email=body.email, name=body.name)
        await engine.save(customer)
        return customer_out(customer)

    @app.get("/customers/by-email/{email}", response_model=CustomerOut)
    async def customer_by_email(email: str, engine: EngineDep) -> CustomerOut:
        customer = await engine.query(Customer.by_gsi1, key={"email": email}).first()
        if customer is None:
            raise HTTPException(status_code=404, detail="no such customer")
        return customer_out(customer)

    @app.get("/customers/{customer_id}", response_model=Account)
    async def account(customer_id: UUID, engine: EngineDep) -> Account:
        # one query: the customer's profile and every order, each item as its own entity
        collection = await engine.query(Shop, key={"pk": f"CUSTOMER#{customer_id}"}).all()
        profiles = [item for item in collection if isinstance(item, Customer)]
        if not profiles:
            raise HTTPException(status_code=404, detail="no such customer")
        orders = [order_out(item) for item in collection if isinstance(item, Order)]
        return Account(customer=customer_out(profiles[0]), orders=orders)

    @app.post("/customers/{customer_id}/orders", response_model=OrderOut, status_code=201)
    async def place_order(customer_id: UUID, body: NewOrder, engine: EngineDep) -> OrderOut:
        if await engine.get(Customer, id=customer_id) is None:
            raise HTTPException(status_code=404, detail="no such customer")
        order = Order(id=uuid4(), customer_id=customer_id, placed_at=datetime.now(UTC))
        lines = [
            LineItem(order_id=order.id, n=n, sku=line.sku, quantity=line.quantity, price=line.price)
            for n, line in enumerate(body.lines, start=1)
        ]
        order.total = sum((line.price * line.quantity for line in lines), Decimal(0))
        async with engine.transaction() as tx:  # the order and its lines, all or nothing
            tx.save(order)
            for line in lines:
                tx.save(line)
        return order_out(order)

    @app.get("/customers/{customer_id}/orders", response_model=list[OrderOut])
    async def orders_of(customer_id: UUID, engine: EngineDep) -> list[OrderOut]:
        orders = await engine.query(Order, key={"customer_id": customer_id}).all()
        return [order_out(order) for order in orders]

    @app.get("/customers/{customer_id}/orders/{order_id}/lines", response_model=list[LineOut])
    async def lines_of(customer_id: UUID, order_id: UUID, engine: EngineDep) -> list[LineOut]:
        await find_order(engine, customer_id, order_id)
        lines = await engine.query(LineItem, key={"order_id": order_id}).all()
        return [LineOut(n=x.n, sku=x.sku, quantity=x.quantity, price=x.price) for x in lines]

    @app.post("/customers/{customer_id}/orders/{order_id}/pay", response_model=OrderOut)
    async def pay(customer_id: UUID, order_id: UUID, engine: EngineDep) -> OrderOut:
        order = await find_order(engine, customer_id, order_id)
        if order.status != "open":
            raise HTTPException(status_code=409, detail=f"the order is {order.status}")
        order.status = "paid"
        await engine.save(order, atomic=True)  # also moves it in the index: STATUS#paid
        return order_out(order)

    @app.get("/orders", response_model=list[OrderOut])
    async def orders_in(engine: EngineDep, status: Status = "open") -> list[OrderOut]:
        orders = await engine.query(Order.by_gsi1, key={"status": status}).all()
        return [order_out(order) for order in orders]

    return app


app = create_app()
