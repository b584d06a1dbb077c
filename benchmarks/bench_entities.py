"""What an entity of a shared table costs against a plain model with the same fields.

Decoding: a 1,000-item page of orders decoded by a plain model, by the entity itself (a query
through the entity: the server filtered the page, so this is the model's own decoder), and by
the table model (each item's entity looked up from its discriminator, then decoded); and one
item read as `get` reads it (the entity's check of the discriminator included).
Encoding: a full item and its size (what `batch.save` does), a save request (`engine.save`) of
a new object, and one of a loaded object with one field changed (the diffing save); the plain
model's keys set by hand, the entity's computed from its key templates.

The figure of each case is the best of many rounds (plain and entity in turns, CPU time), in
microseconds per item; the ratio is entity / plain (the goal: at most 1.10).

    python benchmarks/bench_entities.py [--quick]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from adyn import GlobalIndex, HashKey, Model, RangeKey
from adyn._encoder import encode_checked
from adyn._entities import decode_pairs
from adyn._writes import plan_save
from adyn.schema import schema_of

PAGE = 1_000
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class PlainOrder(Model):
    class Meta:
        table_name = "bench_plain"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    gsi1pk: str | None = None
    gsi1sk: str | None = None
    id: UUID
    customer_id: UUID
    placed_at: datetime
    status: Literal["open", "paid", "shipped"] = "open"
    total: Decimal
    lines: int = 0
    note: str = ""

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", range_key="gsi1sk", projection="all")


class Shop(Model):
    class Meta:
        table_name = "bench_shop"
        discriminator = "type"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    gsi1pk: str | None = None
    gsi1sk: str | None = None

    by_gsi1 = GlobalIndex(hash_key="gsi1pk", range_key="gsi1sk", projection="all")


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
    status: Literal["open", "paid", "shipped"] = "open"
    total: Decimal
    lines: int = 0
    note: str = ""


class Customer(Shop):
    class Meta:
        entity = "customer"
        keys = {"pk": "CUSTOMER#{id}", "sk": "PROFILE"}

    id: UUID
    name: str


PLAIN, ENTITY, TABLE = schema_of(PlainOrder), schema_of(Order), schema_of(Shop)
assert TABLE.family is not None


def orders(n: int) -> list[dict[str, Any]]:
    """A page of stored orders, as the entity writes them (the plain model ignores `type`)."""
    customer = uuid4()
    return [
        ENTITY.encode_item(
            Order(
                id=uuid4(),
                customer_id=customer,
                placed_at=T0 + timedelta(seconds=i),
                status="paid" if i % 3 else "open",
                total=Decimal(f"{i}.50"),
                lines=i % 7,
                note="gift" if i % 5 == 0 else "",
            )
        )
        for i in range(n)
    ]


def plain_objects(n: int) -> list[PlainOrder]:
    out = []
    customer = uuid4()
    for i in range(n):
        placed, oid = T0 + timedelta(seconds=i), uuid4()
        text = placed.isoformat(timespec="microseconds")
        out.append(
            PlainOrder(
                pk=f"CUSTOMER#{customer}",
                sk=f"ORDER#{text}#{oid}",
                gsi1pk="STATUS#open",
                gsi1sk=text,
                id=oid,
                customer_id=customer,
                placed_at=placed,
                total=Decimal("9.50"),
            )
        )
    return out


def entity_objects(n: int) -> list[Order]:
    customer = uuid4()
    return [
        Order(
            id=uuid4(),
            customer_id=customer,
            placed_at=T0 + timedelta(seconds=i),
            total=Decimal("9.50"),
        )
        for i in range(n)
    ]


def interleaved(
    rounds: int, plain: Callable[[], object], entity: Callable[[], object]
) -> tuple[float, float]:
    """Microseconds per item of the fastest round of each, in CPU time of this process.

    The two run in turns, so a busy machine slows both alike; CPU time leaves out the time
    the process waits for a core.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for run, out in ((plain, times[0]), (entity, times[1])):
            start = time.process_time()
            run()
            out.append(time.process_time() - start)
    return min(times[0]) / PAGE * 1e6, min(times[1]) / PAGE * 1e6


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    rounds = 5 if quick else 40
    page = orders(PAGE)
    assert type(TABLE.family.classify(TABLE, page[:1], "t")[0][1].model) is type(Order)

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = []

    cases.append(
        (
            "decode a page, through the entity",
            lambda: PLAIN.decode_page(page),
            lambda: ENTITY.decode_page(page),
        )
    )
    family = TABLE.family
    cases.append(
        (
            "decode a page, through the table model",
            lambda: PLAIN.decode_page(page),
            lambda: decode_pairs(family.classify(TABLE, page, "t"), None),
        )
    )
    cases.append(
        (
            "read one item (get), through the entity",
            lambda: [PLAIN.read(item, "t") for item in page],
            lambda: [ENTITY.read(item, "t") for item in page],
        )
    )
    plains, entities = plain_objects(PAGE), entity_objects(PAGE)
    cases.append(
        (
            "encode a full item (batch put)",
            lambda: [encode_checked(PLAIN, o) for o in plains],
            lambda: [encode_checked(ENTITY, o) for o in entities],
        )
    )
    cases.append(
        (
            "plan a save of a new object",
            lambda: [plan_save(PLAIN, "t", o) for o in plains],
            lambda: [plan_save(ENTITY, "t", o) for o in entities],
        )
    )
    loaded_plain = [PLAIN.read(item, "t") for item in page]
    loaded_entities = [ENTITY.read(item, "t") for item in page]
    for objs in (loaded_plain, loaded_entities):
        for o in objs:
            o.note = "changed"  # one field changed: the save diffs, and recomputes no key
    cases.append(
        (
            "plan a save of a change (loaded object)",
            lambda: [plan_save(PLAIN, "t", o) for o in loaded_plain],
            lambda: [plan_save(ENTITY, "t", o) for o in loaded_entities],
        )
    )

    print(f"{'case':<42} {'plain µs':>9} {'entity µs':>10} {'ratio':>6}")
    worst = 0.0
    for name, plain, entity in cases:
        plain(), entity()  # warm up: caches, lazily built decoders
        p, e = interleaved(rounds, plain, entity)
        worst = max(worst, e / p)
        print(f"{name:<42} {p:>9.2f} {e:>10.2f} {e / p:>6.2f}")
    print(f"worst ratio {worst:.2f} (goal: at most 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
