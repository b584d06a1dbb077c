"""The `adyn` command on a shared table (single-table design), as child processes against moto.

The project's `entities.py` is tests/_cli_entities.py: a table model `Shop` and its entities
`Customer` (a Unique email, a version), `Order` (templated keys) and `Note` (an index of its own).
"""

from __future__ import annotations

import json
import shutil
import signal
import textwrap
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from _cli_entities import Customer, Note, Order, Shop
from _shop import Legacy, Team, User
from _wire import raw_call
from adyn import Engine
from harness.cli import Lines, Project, stop

HERE = Path(__file__).resolve().parent

# The same table before `Note` (and its index `by_topic`) existed: for drift checks.
OLD_SHOP = textwrap.dedent(
    """
    from typing import Annotated

    from adyn import GlobalIndex, HashKey, Model, RangeKey


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
            keys = {"pk": "CUSTOMER#{id}", "sk": "PROFILE"}

        id: str
    """
)


@pytest.fixture
def project(
    tmp_path: Path, moto_endpoint: str, child_env: dict[str, str], request: pytest.FixtureRequest
) -> Project:
    made = Project.create(tmp_path / "project", moto_endpoint, child_env, request.node.name)
    shutil.copy(HERE / "_cli_entities.py", made.root / "entities.py")
    shutil.copy(HERE / "_shop.py", made.root / "single.py")  # Legacy: a callable discriminator
    (made.root / "old_shop.py").write_text(OLD_SHOP)
    return made


def customer(i: int, email: str | None = None) -> Customer:
    return Customer(id=UUID(int=i + 1), email=email or f"c{i}@example.com", name=f"Customer {i}")


def order(i: int, customers: int = 3) -> Order:
    return Order(
        id=UUID(int=1000 + i),
        customer_id=UUID(int=i % customers + 1),
        placed_at=datetime(2026, 1, 1 + i, 12, 30, tzinfo=UTC),
        status="open" if i % 2 else "shipped",
        total=Decimal(f"{i}.25"),
    )


async def fill(engine: Engine, customers: int = 3, orders: int = 5, notes: int = 2) -> None:
    await engine.bind(Shop)
    for i in range(customers):  # Unique fields: each save writes the item and its guard
        await engine.save(customer(i))
    async with engine.batch() as batch:
        batch.save(*(order(i, customers) for i in range(orders)))
        batch.save(*(Note(n=i, text=f"note {i}", topic=f"t{i}") for i in range(notes)))


async def raw_items(engine: Engine) -> list[dict[str, Any]]:
    """Every stored item of the shop table as DynamoDB holds it, guards included, in order."""
    table = engine.table_name(Shop)
    response = await raw_call(engine, "Scan", {"TableName": table, "ConsistentRead": True})
    return sorted(response["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def other(project: Project, suffix: str) -> Project:
    """The same project on other tables (to import into)."""
    return Project(project.root, project.endpoint, project.env, project.template + suffix)


# ---------------------------------------------------------------------- tables


async def test_tables_create_makes_one_table_with_every_entitys_indexes(project: Project) -> None:
    created = await project.run_async("tables", "create", "entities")
    assert created.code == 0, created
    table_lines = [line for line in created.out.splitlines() if not line.startswith(" ")]
    assert len(table_lines) == 1  # one table, not one per entity
    assert table_lines[0].split()[0] == "created"
    assert table_lines[0].endswith("(Shop: Customer, Note, Order)")
    async with project.engine() as engine:
        table = engine.table_name(Shop)
        described = await raw_call(engine, "DescribeTable", {"TableName": table})
        indexes = {i["IndexName"] for i in described["Table"]["GlobalSecondaryIndexes"]}
        assert indexes == {"by_gsi1", "by_topic"}  # the union: Note's own index too
    for spec in ("entities", "entities:Shop", "entities:Note", "entities:Customer"):
        checked = await project.run_async("tables", "check", spec)
        assert checked.code == 0, checked
        assert checked.out.startswith(f"ok       {table}  (Shop: Customer, Note, Order)")


async def test_an_entity_alone_checks_its_whole_table_and_drift_names_the_entity(
    project: Project,
) -> None:
    old = await project.run_async("tables", "create", "old_shop")
    assert old.code == 0, old
    for spec in ("entities:Customer", "entities"):
        drift = await project.run_async("tables", "check", spec)
        assert drift.code == 1, drift
        lines = drift.out.splitlines()
        assert lines[0].startswith("DRIFT") and lines[0].endswith("(Shop: Customer, Note, Order)")
        # the index every model shares is there; the one only Note declares is missing
        assert lines[1:] == ["         - Note: global index 'by_topic' is missing"]
        assert "1 of 1 table(s) is missing or differs" in drift.err
    missing = await other(project, "-none").run_async("tables", "check", "entities:Order")
    assert missing.code == 1 and missing.out.startswith("missing")


# ---------------------------------------------------------------------- export and import


async def test_export_through_the_table_model_then_import_reproduces_every_item(
    project: Project,
) -> None:
    async with project.engine() as engine:
        await fill(engine)
        before = await raw_items(engine)
    out = project.root / "shop.jsonl"
    exported = await project.run_async("export", "entities", "-o", str(out), "--segments", "2")
    assert exported.code == 0, exported
    assert f"exported 10 Shop item(s) to {out} (3 Customer, 2 Note, 5 Order)" in exported.err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter(line["type"] for line in lines) == {"customer": 3, "order": 5, "note": 2}
    assert all(not str(line["pk"]).startswith("adyn#unique") for line in lines)  # no guards
    assert all(next(iter(line)) == "type" for line in lines)
    a_customer = next(line for line in lines if line["type"] == "customer")
    assert a_customer["version"] == 1 and a_customer["sk"] == "PROFILE"
    assert Customer.model_validate(a_customer).pk == a_customer["pk"]
    state = json.loads((project.root / "shop.jsonl.adyn-state").read_text())
    assert state["entities"] == {"Customer": 3, "Note": 2, "Order": 5}

    copy = other(project, "-copy")
    async with copy.engine() as engine:
        await engine.bind(Shop)
        imported = await copy.run_async("import", "entities:Shop", str(out))
        assert imported.code == 0, imported
        assert f"imported 10 Shop item(s) from 10 line(s) of {out}" in imported.err
        after = await raw_items(engine)
    # identical items: templated keys, discriminators, versions, and the customers' guards
    assert after == before
    assert sum("adyn:unique" in item for item in after) == 3

    customers = project.root / "customers.jsonl"
    only = await project.run_async("export", "entities:Customer", "-o", str(customers))
    assert only.code == 0, only
    assert only.err.splitlines()[-1] == f"adyn: exported 3 Customer item(s) to {customers}"
    assert {json.loads(line)["type"] for line in customers.read_text().splitlines()} == {"customer"}


async def test_import_through_an_entity_refuses_other_entities_lines(project: Project) -> None:
    lines = [
        json.loads(Customer.model_validate(customer(0).model_dump()).model_dump_json()),
        {"type": "order", **json.loads(order(1).model_dump_json())},
        {"type": "customer", **json.loads(customer(1).model_dump_json())},
        {"type": "nobody", "pk": "X", "sk": "Y"},
        {"type": "note", **json.loads(Note(n=3, text="hi").model_dump_json())},
    ]
    source = project.root / "mixed.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    async with project.engine() as engine:
        await engine.bind(Shop)
        result = await project.run_async("import", "entities:Customer", str(source))
        assert result.code == 1, result
        assert f"imported 2 Customer item(s) from 5 line(s) of {source}" in result.err
        failures = [
            json.loads(line)
            for line in (project.root / "mixed.jsonl.failures.jsonl").read_text().splitlines()
        ]
        assert [(f["line"], f["error"]) for f in failures] == [
            (
                2,
                "is an item of Order (entity 'order'), not of Customer: import it through "
                "Order or Shop",
            ),
            (
                4,
                "names entity 'nobody', which is none of ['customer', 'note', 'order'] "
                "(entities of Shop)",
            ),
            (
                5,
                "is an item of Note (entity 'note'), not of Customer: import it through "
                "Note or Shop",
            ),
        ]
        assert "adyn: line 2: is an item of Order" in result.err
        stored = await engine.scan(Shop, consistent=True).all()
        assert sorted(type(s).__name__ for s in stored) == ["Customer", "Customer"]

        through_table = await project.run_async("import", "entities:Shop", str(source))
        assert through_table.code == 1, through_table
        assert "imported 3 Shop item(s) from 5 line(s)" in through_table.err
        assert "line 1: names no entity: it has no 'type'" in through_table.err
        assert "line 4: names entity 'nobody'" in through_table.err


async def test_import_enforces_unique_values_line_by_line(project: Project) -> None:
    async with project.engine() as engine:
        await engine.bind(Shop)
        await engine.save(customer(9, email="taken@example.com"))
        await engine.save(customer(8, email="old@example.com"))

    def line(i: int, email: str) -> str:
        return json.dumps({"type": "customer", **json.loads(customer(i, email).model_dump_json())})

    source = project.root / "customers.jsonl"
    source.write_text(
        "\n".join(
            [
                line(0, "a@example.com"),
                line(1, "a@example.com"),  # the value line 1 took
                line(2, "b@example.com"),
                line(3, "taken@example.com"),  # customer 9's
                line(0, "a@example.com"),  # line 1 again: the same item, its own guard
                line(8, "new@example.com"),  # the stored customer 8 holds another email
                line(4, "a@example.com"),
            ]
        )
        + "\n"
    )
    for attempt in range(2):  # a second run writes the same items again, refuses the same lines
        result = await project.run_async("import", "entities:Customer", str(source))
        assert result.code == 1, result
        assert "imported 3 Customer item(s) from 7 line(s)" in result.err, attempt
        report = project.root / "customers.jsonl.failures.jsonl"
        failures = [json.loads(x) for x in report.read_text().splitlines()]
        assert [f["line"] for f in failures] == [2, 4, 6, 7]
        assert failures[0]["error"].startswith("UniqueViolation: ")
        assert "a@example.com" in failures[0]["error"] and "email" in failures[0]["error"]
        assert "taken@example.com" in failures[1]["error"]
        assert failures[2]["error"].startswith("ConstraintViolation: Customer: the stored item")
        assert "a@example.com" in failures[3]["error"]
    async with project.engine() as engine:
        await engine.bind(Shop)
        stored = {c.id.int - 1: c.email for c in await engine.scan(Customer).all()}
        assert stored == {
            0: "a@example.com",
            2: "b@example.com",
            9: "taken@example.com",
            8: "old@example.com",
        }
        held = sorted(
            i["pk"]["S"].rsplit("#", 1)[1] for i in await raw_items(engine) if "adyn:unique" in i
        )
        assert held == sorted(stored.values())  # one guard per stored value, none stray


async def test_export_names_the_items_no_entity_can_load_and_exports_the_rest(
    project: Project,
) -> None:
    async with project.engine() as engine:
        await fill(engine, customers=2, orders=2, notes=0)
        table = engine.table_name(Shop)
        for item in (
            {"pk": {"S": "WHAT"}, "sk": {"S": "X"}, "type": {"S": "nobody"}},
            {"pk": {"S": "CUSTOMER#bad"}, "sk": {"S": "PROFILE"}, "type": {"S": "customer"}},
        ):
            await raw_call(engine, "PutItem", {"TableName": table, "Item": item})
    out = project.root / "shop.jsonl"
    result = await project.run_async("export", "entities:Shop", "-o", str(out))
    assert result.code == 1, result
    assert "exported 4 Shop item(s)" in result.err and "2 could not be exported" in result.err
    failures = [json.loads(x) for x in (project.root / "shop.jsonl.failures.jsonl").open()]
    by_key = {f["key"]["pk"]: f["error"] for f in failures}
    assert sorted(by_key) == ["CUSTOMER#bad", "WHAT"]
    assert "names entity 'nobody'" in by_key["WHAT"]
    assert "Customer" in by_key["CUSTOMER#bad"] and "required" in by_key["CUSTOMER#bad"]
    only = await project.run_async("export", "entities:Customer")
    assert only.code == 1 and len(only.out.splitlines()) == 2
    assert "not exported: {'pk': 'CUSTOMER#bad', 'sk': 'PROFILE'}" in only.err
    assert "WHAT" not in only.err  # not a customer: not this export's business


async def test_a_callable_discriminator_round_trips_by_its_keys(project: Project) -> None:
    async with project.engine() as engine:
        await engine.bind(Legacy)
        async with engine.batch() as batch:
            batch.save(*(User(org="acme", name=f"u{i}") for i in range(3)))
            batch.save(Team(org="acme", name="ops", size=4))
        out = project.root / "legacy.jsonl"
        exported = await project.run_async("export", "single:Legacy", "-o", str(out))
        assert exported.code == 0, exported
        assert "(1 Team, 3 User)" in exported.err
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert {line["sk"].split("#")[0] for line in lines} == {"USER", "TEAM"}
        table = engine.table_name(Legacy)
        scan = {"TableName": table, "ConsistentRead": True}
        before = sorted((await raw_call(engine, "Scan", scan))["Items"], key=repr)

    copy = other(project, "-copy")
    async with copy.engine() as engine:
        await engine.bind(Legacy)
        imported = await copy.run_async("import", "single:Legacy", str(out))
        assert imported.code == 0, imported
        scan["TableName"] = engine.table_name(Legacy)
        assert sorted((await raw_call(engine, "Scan", scan))["Items"], key=repr) == before
        teams = await copy.run_async("import", "single:Team", str(out))
        assert teams.code == 1, teams
        assert "is an item of User (entity 'USER'), not of Team" in teams.err


# ---------------------------------------------------------------------- tail and backfill


async def test_tail_prints_every_entitys_records_or_one_entitys(project: Project) -> None:
    async with project.engine() as engine:
        await fill(engine, customers=2, orders=2, notes=1)
    process = await project.start("tail", "entities", "--from", "trim_horizon")
    records = [json.loads(line) for line in await Lines(process).next(5)]
    code, err = await stop(process, signal.SIGINT)
    assert code == 0, err
    assert "tailing Shop from trim_horizon" in err
    assert Counter((r["model"], r["entity"]) for r in records) == {
        ("Customer", "customer"): 2,
        ("Order", "order"): 2,
        ("Note", "note"): 1,
    }  # no guard item's record among them
    note = next(r for r in records if r["entity"] == "note")
    assert note["event"] == "insert" and note["new"]["text"] == "note 0"
    assert note["key"] == {"pk": "NOTE#0000", "sk": "NOTE"}

    only = await project.start("tail", "entities:Customer", "--from", "trim_horizon")
    reader = Lines(only)
    customers = [json.loads(line) for line in await reader.next(2)]
    assert [r["entity"] for r in customers] == ["customer", "customer"]
    assert await reader.quiet(2.0) == []
    code, err = await stop(only, signal.SIGINT)
    assert code == 0, err


async def test_backfill_through_the_table_model_and_through_an_entity(project: Project) -> None:
    async with project.engine() as engine:
        await fill(engine, customers=3, orders=4, notes=2)
    shouted = await project.run_async("backfill", "entities:Customer", "entities:shout")
    assert shouted.code == 0, shouted
    assert "backfill of Customer: 3 scanned, 3 changed" in shouted.err
    paid = await project.run_async("backfill", "entities", "entities:pay", "--segments", "2")
    assert paid.code == 0, paid
    # 9 entity items (no guard), 2 open orders paid, customers already shouted
    assert "backfill of Shop: 9 scanned, 2 changed, 0 conflicts" in paid.err
    async with project.engine() as engine:
        await engine.bind(Shop)
        orders = await engine.scan(Order, consistent=True).all()
        assert sorted(o.status or "" for o in orders) == ["paid", "paid", "shipped", "shipped"]
        assert {o.gsi1pk for o in orders} == {"STATUS#paid", "STATUS#shipped"}
        names = sorted(c.name for c in await engine.scan(Customer, consistent=True).all())
        assert names == ["CUSTOMER 0", "CUSTOMER 1", "CUSTOMER 2"]
