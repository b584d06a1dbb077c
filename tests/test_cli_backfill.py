"""`adyn backfill` as a child process against moto: options, failures, shares across processes,
a crash (SIGKILL) and `--resume`, a concurrent writer, and injected throttling."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness import FaultProxy, Rule, Throttle
from harness.cli import Project, finish, kill_hard
from test_backfill_faults import Capacity


@pytest.fixture
def shop(
    tmp_path: Path, moto_endpoint: str, child_env: dict[str, str], request: pytest.FixtureRequest
) -> Project:
    return Project.create(tmp_path, moto_endpoint, child_env, request.node.name)


async def products(shop: Project, n: int) -> Any:
    """Bind the project's Product table and fill it with n products (version 0, no slug)."""
    models = shop.shop()
    async with shop.engine() as engine:
        await engine.bind(models.Product)
        async with engine.batch() as batch:
            batch.save(*(models.Product(sku=f"p{i:04d}", name=f"Mug {i}") for i in range(n)))
    return models.Product


async def stored(shop: Project, model: Any) -> list[Any]:
    async with shop.engine() as engine:
        await engine.bind(model, create=False)
        return await engine.scan(model, consistent=True).all()


def counts(err: str) -> dict[str, int]:
    """The numbers of the summary line `adyn: backfill of ...: N scanned, N changed, ...`."""
    line = next(x for x in err.splitlines() if x.startswith("adyn: backfill of"))
    return {name: int(n.replace(",", "")) for n, name in re.findall(r"(\d[\d,]*) (\w+)", line)}


async def test_every_item_is_transformed_with_segments_and_a_rate(shop: Project) -> None:
    product = await products(shop, 60)
    result = await shop.run_async(
        "backfill", "shop:Product", "shop:add_slug", "--segments", "3", "--rate", "500"
    )
    assert result.code == 0, result
    assert counts(result.err) == {
        "scanned": 60,
        "changed": 60,
        "conflicts": 0,
        "throttled": 0,
        "failed": 0,
    }
    after = await stored(shop, product)
    assert {(p.slug == p.name.lower().replace(" ", "-"), p.version) for p in after} == {(True, 1)}
    again = await shop.run_async("backfill", "shop:Product", "shop:add_slug_slowly")  # async fn
    assert again.code == 0 and counts(again.err)["changed"] == 0


async def test_failed_items_are_listed_with_keys_and_errors(shop: Project) -> None:
    await products(shop, 40)
    failures = shop.root / "failed.jsonl"
    result = await shop.run_async(
        "backfill", "shop:Product", "shop:refuse_odd", "--failures", str(failures)
    )
    assert result.code == 1, result
    assert counts(result.err)["failed"] == 20 and counts(result.err)["changed"] == 20
    assert "adyn: failed {'sku': 'p0001'}: ValueError: odd sku p0001" in result.err
    assert "... and 10 more (all in" in result.err
    listed = [json.loads(line) for line in failures.read_text().splitlines()]
    assert sorted(f["key"]["sku"] for f in listed) == [f"p{i:04d}" for i in range(1, 40, 2)]
    assert all(f["error"] == f"ValueError: odd sku {f['key']['sku']}" for f in listed)


async def test_shares_run_by_two_processes_at_once_cover_every_item_once(shop: Project) -> None:
    product = await products(shop, 80)
    results: list[Any] = [None, None]

    async def share(i: int) -> None:
        results[i] = await shop.run_async(
            "backfill", "shop:Product", "shop:add_slug", "--segments", "2", "--segment", f"{i}/2"
        )

    async with anyio.create_task_group() as tg:
        for i in (0, 1):
            tg.start_soon(share, i)
    assert [r.code for r in results] == [0, 0], results
    assert sum(counts(r.err)["scanned"] for r in results) == 80
    assert {(p.slug is not None, p.version) for p in await stored(shop, product)} == {(True, 1)}


async def test_a_killed_backfill_resumes_from_its_checkpoint_and_writes_each_item_once(
    shop: Project,
) -> None:
    n = 600
    product = await products(shop, n)
    checkpoint = shop.root / "slug.json"
    args = ("backfill", "shop:Product", "shop:add_slug_logged", "--segments", "2")
    process = await shop.start(*args, "--resume", str(checkpoint))
    with anyio.fail_after(120):
        while True:  # until at least a page of each segment is committed
            await anyio.sleep(0.05)
            try:
                state = json.loads(await anyio.Path(checkpoint).read_text())
            except (FileNotFoundError, ValueError):
                continue
            if all(p is not None for p in state["positions"].values()):
                break
    kill_hard(process)
    await process.wait()
    state = json.loads(checkpoint.read_text())
    assert state["complete"] is False and 0 < state["counts"]["scanned"] < n
    calls = shop.root / "calls.log"
    before = len(calls.read_text().split())

    resumed = await shop.run_async(*args, "--resume", str(checkpoint))
    assert resumed.code == 0, resumed
    assert counts(resumed.err)["scanned"] == n  # exact: committed pages plus the rest
    # the resumed run did not read again what the checkpoint had committed
    assert len(calls.read_text().split()) - before == n - state["counts"]["scanned"]
    after = await stored(shop, product)
    assert len(after) == n and {(p.slug is not None, p.version) for p in after} == {(True, 1)}
    assert json.loads(checkpoint.read_text())["complete"] is True

    done = await shop.run_async(*args, "--resume", str(checkpoint))
    assert done.code == 0 and counts(done.err)["scanned"] == n
    assert len(calls.read_text().split()) - before == n - state["counts"]["scanned"]


async def test_a_writer_changing_items_meanwhile_loses_nothing(shop: Project) -> None:
    n = 120
    product = await products(shop, n)
    updates = 0
    process = await shop.start("backfill", "shop:Product", "shop:add_slug_logged")
    async with shop.engine() as engine:
        await engine.bind(product, create=False)
        while process.returncode is None and updates < 400:
            sku = f"p{updates * 7 % n:04d}"
            await engine.update(product, key={"sku": sku}, actions=[product.price.add(1)])
            updates += 1
        code, err = await finish(process)
    assert code == 0, err
    after = await stored(shop, product)
    assert all(p.slug is not None for p in after)
    assert sum(p.price for p in after) == updates  # every concurrent change is still there
    summary = counts(err)
    assert summary["changed"] + summary["conflicts"] >= n and summary["failed"] == 0


async def test_throttling_slows_it_down_and_every_item_is_written_once(
    shop: Project, moto_endpoint: str
) -> None:
    product = await products(shop, 80)
    async with FaultProxy(moto_endpoint, seed=3) as proxy:
        proxy.add(Rule(Throttle(), operation="UpdateItem", when=Capacity(20)))
        result = await shop.run_async(
            "backfill", "shop:Product", "shop:add_slug", endpoint=proxy.url
        )
        assert proxy.count(Throttle) > 0
    assert result.code == 0, result
    summary = counts(result.err)
    assert summary["throttled"] > 0 and summary["failed"] == 0 and summary["changed"] == 80
    assert {(p.slug is not None, p.version) for p in await stored(shop, product)} == {(True, 1)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shop:Product", "shop"], "name a function as package.module:function"),
        (["shop:Product", "shop:Product"], "is the class Product, not a function"),
        (["shop:Product", "shop:nope"], "shop has no 'nope'"),
        (["shop:Product", "shop:add_slug"], "does not exist"),
    ],
)
async def test_backfill_refuses_in_one_line(shop: Project, args: list[str], message: str) -> None:
    result = await shop.run_async("backfill", *args)
    assert result.code == 2, result
    assert message in result.error_line
