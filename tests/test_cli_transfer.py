"""`adyn export` and `adyn import` as child processes against moto: through the models, exact
failure reports, and `--resume` after a crash (SIGKILL) that loses and repeats nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest

from _wire import raw_call
from adyn import HashKey, Model
from adyn.schema import schema_of
from harness import FaultProxy, Latency, Rule
from harness.cli import Project, kill_hard


@pytest.fixture
def shop(
    tmp_path: Path, moto_endpoint: str, child_env: dict[str, str], request: pytest.FixtureRequest
) -> Project:
    return Project.create(tmp_path / "project", moto_endpoint, child_env, request.node.name)


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(moto_endpoint, seed=7) as p:
        yield p


def product_line(i: int) -> str:
    return json.dumps({"sku": f"p{i:05d}", "name": f"Product {i}", "price": i, "tags": ["t"]})


async def wait_for_state(path: Path, ready: Any) -> dict[str, Any]:
    """Poll a state file until `ready(state)` holds (two minutes at most)."""
    with anyio.fail_after(120):
        while True:
            try:
                state: dict[str, Any] = json.loads(await anyio.Path(path).read_text())
            except (FileNotFoundError, ValueError):
                state = {}
            if state and ready(state):
                return state
            await anyio.sleep(0.05)


async def test_import_validates_every_line_and_names_each_failure(shop: Project) -> None:
    models = shop.shop()
    lines = [product_line(i) for i in range(1, 41)]
    lines[4] = "{not json"  # line 5
    lines[9] = json.dumps({"sku": "p00010", "name": "Ten", "price": "ten"})  # line 10
    lines[14] = ""  # line 15: blank lines are skipped
    lines[19] = json.dumps({"sku": "p00020"})  # line 20: no name
    lines[24] = json.dumps({"sku": "", "name": "No key"})  # line 25: valid, not storable
    source = shop.root / "products.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = shop.root / "why.jsonl"
    async with shop.engine() as engine:
        await engine.bind(models.Product)
        result = await shop.run_async(
            "import", "shop:Product", str(source), "--failures", str(report)
        )
        assert result.code == 1, result
        assert "Traceback" not in result.err
        assert f"imported 35 Product item(s) from 40 line(s) of {source}" in result.err
        assert "4 line(s) failed" in result.err
        assert "line 10: invalid: price: Input should be a valid integer" in result.err
        failures = [json.loads(line) for line in report.read_text().splitlines()]
        assert [f["line"] for f in failures] == [5, 10, 20, 25]
        assert failures[0]["details"][0]["type"] == "json_invalid"
        assert failures[1]["details"] == [
            {
                "loc": ["price"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            }
        ]
        assert failures[2]["details"][0]["loc"] == ["name"]
        assert failures[3]["error"].startswith("InvalidItem: Product.sku: a key value cannot be")
        stored = {p.sku: p async for p in engine.scan(models.Product, consistent=True)}
        assert len(stored) == 35 and "p00010" not in stored and "p00020" not in stored
        assert stored["p00007"].price == 7 and stored["p00007"].tags == {"t"}
        state = json.loads((shop.root / "products.jsonl.adyn-state").read_text())
        assert (state["complete"], state["line"], state["written"], state["failed"]) == (
            True,
            40,
            35,
            4,
        )

        again = await shop.run_async(
            "import", "shop:Product", str(source), "--resume", "--failures", str(report)
        )
        assert again.code == 1 and "already complete" in again.err
        assert len(report.read_text().splitlines()) == 4  # nothing reported twice


async def test_export_then_import_round_trips_through_the_model(shop: Project) -> None:
    models = shop.shop()
    order = models.Order
    async with shop.engine() as engine:
        await engine.bind(order)
        async with engine.batch() as batch:
            for i in range(30):
                batch.save(order(customer=f"c{i % 7}", number=i, total=Decimal(f"{i}.25")))
        to_stdout = await shop.run_async("export", "shop:Order")
        assert to_stdout.code == 0, to_stdout
        lines = to_stdout.out.splitlines()
        assert len(lines) == 30
        assert {order.model_validate_json(line).number for line in lines} == set(range(30))
        assert json.loads(lines[0])["total"].endswith(".25")  # Decimal as JSON text, exact

        out = shop.root / "orders.jsonl"
        to_file = await shop.run_async("export", "shop:Order", "-o", str(out), "--segments", "3")
        assert to_file.code == 0, to_file
        assert f"exported 30 Order item(s) to {out}" in to_file.err
        assert sorted(out.read_text().splitlines()) == sorted(lines)
        state = json.loads((shop.root / "orders.jsonl.adyn-state").read_text())
        assert state["complete"] is True and state["segments"] == 3 and state["items"] == 30
        assert set(state["positions"].values()) == {"done"}
        again = await shop.run_async("export", "shop:Order", "-o", str(out), "--resume")
        assert again.code == 0 and "already complete" in again.err

    copy = Project(shop.root, shop.endpoint, shop.env, shop.template + "-copy")
    async with copy.engine() as engine:
        await engine.bind(order)
        imported = await copy.run_async("import", "shop:Order", str(out))
        assert imported.code == 0, imported
        copied = await engine.scan(order).all()
    assert sorted((o.customer, o.number, o.total) for o in copied) == sorted(
        (f"c{i % 7}", i, Decimal(f"{i}.25")) for i in range(30)
    )


class Mislabelled(Model):
    """Another writer of the products table, whose prices are text."""

    class Meta:
        table_name = "products"

    sku: Annotated[str, HashKey()]
    name: str
    price: str


async def test_export_names_the_items_the_model_cannot_load(shop: Project) -> None:
    models = shop.shop()
    async with shop.engine() as engine:
        await engine.bind(models.Product)
        async with engine.batch() as batch:
            batch.save(*(models.Product(sku=f"p{i}", name=f"P{i}") for i in range(10)))
        # another writer's item, put on the wire (one engine refuses two models on one table)
        bad = schema_of(Mislabelled).encode_item(Mislabelled(sku="bad", name="Bad", price="a lot"))
        table = engine.table_name(models.Product)
        await raw_call(engine, "PutItem", {"TableName": table, "Item": bad})
        out = shop.root / "products.jsonl"
        result = await shop.run_async("export", "shop:Product", "-o", str(out))
        assert result.code == 1, result
        assert (
            "exported 10 Product item(s)" in result.err and "1 could not be exported" in result.err
        )
        assert len(out.read_text().splitlines()) == 10
        (failure,) = [json.loads(x) for x in (shop.root / "products.jsonl.failures.jsonl").open()]
        assert failure["key"] == {"sku": "bad"}
        assert "InvalidItem" in failure["error"] and "price" in failure["error"]
        to_stdout = await shop.run_async("export", "shop:Product")
        assert to_stdout.code == 1 and "adyn: not exported: {'sku': 'bad'}" in to_stdout.err


async def test_an_export_killed_mid_way_resumes_with_nothing_lost_or_repeated(
    shop: Project, proxy: FaultProxy
) -> None:
    models = shop.shop()
    n = 2400
    async with shop.engine() as engine:
        await engine.bind(models.Product)
        async with engine.batch() as batch:
            batch.save(*(models.Product(sku=f"p{i:05d}", name=f"P {i}") for i in range(n)))
    out = shop.root / "all.jsonl"
    state_file = shop.root / "all.jsonl.adyn-state"
    proxy.add(Rule(Latency(1.0), operation="Scan"))  # slow pages: time to kill it mid-way
    process = await shop.start(
        "export", "shop:Product", "-o", str(out), "--segments", "2", endpoint=proxy.url
    )
    await wait_for_state(state_file, lambda s: s["items"] > 0)
    kill_hard(process)
    await process.wait()
    state = json.loads(state_file.read_text())
    assert state["complete"] is False and 0 < state["items"] < n
    kept = out.read_bytes()[: state["offset"]]
    assert kept.count(b"\n") == state["items"]

    mismatch = await shop.run_async(
        "export", "shop:Product", "-o", str(out), "--resume", "--segments", "3"
    )
    assert mismatch.code == 2 and "reads 2 segments" in mismatch.error_line  # its own segments
    resumed = await shop.run_async("export", "shop:Product", "-o", str(out), "--resume")
    assert resumed.code == 0, resumed
    data = out.read_bytes()
    assert data.startswith(kept)  # appended after the recorded position
    skus = [json.loads(line)["sku"] for line in data.splitlines()]
    assert len(skus) == n and sorted(skus) == [f"p{i:05d}" for i in range(n)]
    assert json.loads(state_file.read_text())["complete"] is True


async def test_an_import_killed_mid_way_resumes_after_the_lines_it_recorded(
    shop: Project, proxy: FaultProxy
) -> None:
    models = shop.shop()
    n = 4000
    lines = [product_line(i) for i in range(n)]
    lines[2] = "not json"  # a failure in the first chunk: reported once, before and after
    source = shop.root / "big.jsonl"
    source.write_text("\n".join(lines) + "\n")
    state_file = shop.root / "big.jsonl.adyn-state"
    async with shop.engine() as engine:
        await engine.bind(models.Product)
        proxy.add(Rule(Latency(0.3), operation="BatchWriteItem"))
        process = await shop.start("import", "shop:Product", str(source), endpoint=proxy.url)
        await wait_for_state(state_file, lambda s: s["line"] >= 1000)
        kill_hard(process)
        await process.wait()
        state = json.loads(state_file.read_text())
        assert state["complete"] is False and 1000 <= state["line"] < n

        # the killed process's requests still in the proxy complete there (they were sent):
        # count the resumed run's writes only once those are logged
        logged = -1
        while logged != len(proxy.log):
            logged = len(proxy.log)
            await anyio.sleep(1.0)
        proxy.clear()
        before = len(proxy.log)
        resumed = await shop.run_async(
            "import", "shop:Product", str(source), "--resume", endpoint=proxy.url
        )
        assert resumed.code == 1, resumed  # line 3 is still a failure
        puts = sum(
            len(entries)
            for exchange in proxy.log[before:]
            if exchange.operation == "BatchWriteItem"
            for entries in exchange.request["RequestItems"].values()
        )
        assert puts == n - state["line"]  # only the lines after the recorded ones were written
        assert await engine.scan(models.Product).count() == n - 1
        failures = (shop.root / "big.jsonl.failures.jsonl").read_text().splitlines()
        assert [json.loads(f)["line"] for f in failures] == [3]
        final = json.loads(state_file.read_text())
        assert (final["complete"], final["written"], final["failed"]) == (True, n - 1, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "shop:Product", "--resume"], "--resume needs -o FILE"),
        (["export", "shop:Product", "-o", "x.jsonl", "--resume"], "there is no state file"),
        (["export", "shop", "-o", "x.jsonl"], "holds several models (Order, Product)"),
        (["export", "shop:Product", "-o", "no/dir/x.jsonl"], "does not exist"),
        (["export", "shop:Product"], "does not exist; `adyn tables create` makes it"),
        (["import", "shop:Order", "shop.py", "--resume"], "there is no state file"),
    ],
)
async def test_export_and_import_refuse_in_one_line(
    shop: Project, args: list[str], message: str
) -> None:
    result = await shop.run_async(*args)
    assert result.code == 2, result
    assert message in result.error_line
