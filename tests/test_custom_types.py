"""Custom types (`Codec`): stored as the DynamoDB type they name, as keys, in conditions, queries
and streams, on every backend; a codec that breaks its own contract is refused before sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _wire import raw_call
from adyn import (
    CallEvent,
    Codec,
    ConstraintViolation,
    Engine,
    HashKey,
    InvalidCondition,
    InvalidItem,
    InvalidModel,
    Model,
    RangeKey,
)
from adyn.schema import schema_of


class Money:
    """A type pydantic does not know: cents, shown as "12.50"."""

    __slots__ = ("cents",)

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents

    def __hash__(self) -> int:
        return hash(self.cents)

    def __repr__(self) -> str:
        return f"Money({self.cents})"

    @classmethod
    def parse(cls, text: str) -> Money:
        return cls(int(Decimal(text) * 100))

    def __str__(self) -> str:
        sign = "-" if self.cents < 0 else ""
        return f"{sign}{abs(self.cents) // 100}.{abs(self.cents) % 100:02d}"


MoneyText = Annotated[Money, Codec("S", encode=str, decode=Money.parse)]
MoneyCents = Annotated[Money, Codec("N", encode=lambda m: m.cents, decode=Money)]
Day = Annotated[date, Codec("N", encode=date.toordinal, decode=date.fromordinal)]


@dataclass(frozen=True)
class Point:
    x: int
    y: int


PointList = Annotated[Point, Codec("L", encode=lambda p: [p.x, p.y], decode=lambda v: Point(*v))]
Labels = Annotated[tuple[str, ...], Codec("SS", encode=set, decode=lambda s: tuple(sorted(s)))]
Blob = Annotated[str, Codec("B", encode=str.encode, decode=bytes.decode)]


class Ledger(Model):
    class Meta:
        table_name = "ledger"

    account: Annotated[Money, Codec("S", encode=str, decode=Money.parse), HashKey()]
    day: Annotated[date, Codec("N", encode=date.toordinal, decode=date.fromordinal), RangeKey()]
    balance: MoneyCents = Money(0)
    limit: MoneyText | None = None
    at: PointList | None = None
    labels: Labels = ()
    blob: Blob = ""
    history: list[MoneyText] = []


async def test_custom_types_are_stored_as_their_dynamodb_type_and_load_back(
    engine: Engine,
) -> None:
    await engine.bind(Ledger)
    entry = Ledger(
        account=Money(1250),
        day=date(2024, 6, 1),
        balance=Money(-5),
        limit=Money(100000),
        at=Point(3, 4),
        labels=("b", "a"),
        blob="é",
        history=[Money(1), Money(2)],
    )
    await engine.save(entry)
    key = {"account": {"S": "12.50"}, "day": {"N": str(date(2024, 6, 1).toordinal())}}
    response = await raw_call(
        engine, "GetItem", {"TableName": engine.table_name(Ledger), "Key": key}
    )
    stored = response["Item"]
    assert stored["balance"] == {"N": "-5"} and stored["limit"] == {"S": "1000.00"}
    assert stored["at"] == {"L": [{"N": "3"}, {"N": "4"}]}
    assert sorted(stored["labels"]["SS"]) == ["a", "b"]
    assert stored["history"] == {"L": [{"S": "0.01"}, {"S": "0.02"}]}

    loaded = await engine.get(Ledger, account=Money(1250), day=date(2024, 6, 1))
    assert loaded is not None
    assert loaded.balance == Money(-5) and loaded.at == Point(3, 4)
    assert loaded.labels == ("a", "b") and loaded.blob == "é"
    assert loaded.history == [Money(1), Money(2)]


async def test_codec_keys_queries_and_conditions(engine: Engine) -> None:
    await engine.bind(Ledger)
    account = Money(700)
    days = [date(2024, 1, d) for d in (1, 2, 3, 4)]
    for i, day in enumerate(days):
        await engine.save(Ledger(account=account, day=day, balance=Money(i * 100)))
    await engine.save(Ledger(account=Money(800), day=days[0]))

    later = engine.query(
        Ledger,
        key=(Ledger.account == account) & (Ledger.day > date(2024, 1, 2)),
        filter=Ledger.balance >= Money(300),
    )
    assert [e.day for e in await later.all()] == [days[3]]
    rich = await engine.scan(Ledger, filter=Ledger.balance.between(Money(100), Money(200))).all()
    assert sorted(e.day for e in rich) == days[1:3]

    entry = await engine.get(Ledger, account=account, day=days[0])
    assert entry is not None
    entry.balance = Money(50)
    with pytest.raises(ConstraintViolation):
        await engine.save(entry, condition=Ledger.balance == Money(1))
    await engine.save(entry, condition=Ledger.balance == Money(0))
    updated = await engine.update(
        Ledger,
        {"account": account, "day": days[0]},
        [Ledger.limit.set(Money(999)), Ledger.history.append([Money(5)])],
        condition=Ledger.balance == Money(50),
    )
    assert updated.limit == Money(999) and updated.history == [Money(5)]


async def test_a_codec_that_returns_the_wrong_form_is_refused_before_sending(
    engine: Engine,
) -> None:
    class Lying(Model):
        class Meta:
            table_name = "lying"

        id: Annotated[str, HashKey()]
        price: Annotated[Money, Codec("N", encode=lambda m: f"{m} EUR", decode=Money)] | None = None
        cents: Annotated[Money, Codec("S", encode=lambda m: m.cents, decode=Money.parse)] | None = (
            None
        )

    await engine.bind(Lying)
    sent: list[CallEvent] = []
    engine.listeners.append(sent.append)
    with pytest.raises(InvalidItem) as caught:
        await engine.save(Lying(id="a", price=Money(5)))
    assert caught.value.model == "Lying" and caught.value.field == "price"
    assert "'0.05 EUR' is not a number" in str(caught.value)
    with pytest.raises(InvalidItem) as caught:
        await engine.save(Lying(id="a", cents=Money(7)))
    assert caught.value.field == "cents"
    assert "encode returned int 7" in str(caught.value) and "needs a str" in str(caught.value)
    with pytest.raises(InvalidCondition, match="price"):
        await engine.scan(Lying, filter=Lying.price == Money(1)).all()
    assert sent == []


def test_unknown_dynamodb_types_and_mixed_markers_are_refused_at_class_creation() -> None:
    with pytest.raises(InvalidModel) as caught:

        class Wrong(Model):
            id: Annotated[str, HashKey()]
            price: Annotated[Money, Codec("STRING", encode=str, decode=Money.parse)]  # type: ignore[arg-type]

    assert caught.value.model == "Wrong" and caught.value.field == "price"
    assert "'STRING' is not a DynamoDB type" in str(caught.value)

    with pytest.raises(InvalidModel, match="a key must be stored as S, N or B"):

        class MapKey(Model):
            id: Annotated[Point, Codec("M", encode=vars, decode=lambda d: Point(**d)), HashKey()]

    with pytest.raises(InvalidModel, match="encode= and decode="):

        class NotCallable(Model):
            id: Annotated[str, HashKey()]
            price: Annotated[Money, Codec("S", encode="str", decode=Money.parse)]  # type: ignore[arg-type]


def test_codec_fields_validate_instances_and_stored_forms_and_dump_to_json() -> None:
    entry = Ledger(account="12.50", day=date(2024, 1, 1), balance=250)  # type: ignore[arg-type]
    assert entry.account == Money(1250) and entry.balance == Money(250)
    assert '"account":"12.50"' in entry.model_dump_json()
    with pytest.raises(ValueError, match="Money"):
        Ledger(account=12.5, day=date(2024, 1, 1))  # type: ignore[arg-type]
    # a type pydantic knows (a dataclass) validates as pydantic does
    assert Ledger(account=Money(1), day=date(2024, 1, 1), at={"x": 1, "y": 2}).at == Point(1, 2)


money = st.integers(-(10**12), 10**12).map(Money)


@settings(max_examples=200, deadline=None)
@given(
    account=money,
    day=st.dates(),
    balance=money,
    limit=st.none() | money,
    at=st.none() | st.builds(Point, st.integers(-1000, 1000), st.integers(-1000, 1000)),
    labels=st.lists(st.text(min_size=1, max_size=5), max_size=4).map(
        lambda v: tuple(sorted(set(v)))
    ),
    blob=st.text(max_size=10),
    history=st.lists(money, max_size=3),
)
def test_custom_types_round_trip_through_the_codec(**fields: Any) -> None:
    schema = schema_of(Ledger)
    entry = Ledger(**fields)
    item = schema.encode_item(entry)
    assert schema.decode_item(item) == entry
    assert schema.decode_key(schema.key_of(entry)) == {"account": entry.account, "day": entry.day}


# ---------------------------------------------------------------- streams


class StreamedLedger(Ledger):
    class Meta:
        table_name = "streamed_ledger"
        stream = "new_and_old"


@pytest.mark.moto_only
async def test_custom_types_arrive_in_stream_images(engine: Engine) -> None:
    await engine.bind(StreamedLedger)
    entry = StreamedLedger(account=Money(1), day=date(2024, 2, 2), balance=Money(3), at=Point(1, 2))
    await engine.save(entry)
    entry.balance = Money(4)
    await engine.save(entry)
    async with engine.stream(StreamedLedger, position="trim_horizon") as stream:
        insert = await stream.next(timeout=10)
        modify = await stream.next(timeout=10)
    assert insert is not None and modify is not None
    assert insert.key == {"account": Money(1), "day": date(2024, 2, 2)}
    assert insert.new == StreamedLedger(
        account=Money(1), day=date(2024, 2, 2), balance=Money(3), at=Point(1, 2)
    )
    assert (modify.old.balance, modify.new.balance) == (Money(3), Money(4))
