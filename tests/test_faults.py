"""Nothing lost, every failure named: the engine under injected faults (moto behind FaultProxy)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import pytest

from adyn import (
    BatchIncomplete,
    ConstraintViolation,
    Engine,
    HashKey,
    Model,
    OutcomeUnknown,
    RangeKey,
    RetryPolicy,
    Throttled,
)
from harness import DropAfter, DropBefore, FaultProxy, Rule, ServerError, Throttle, Unprocessed


class Item(Model):
    class Meta:
        table_name = "fault_items"

    pk: Annotated[str, HashKey()]
    sk: Annotated[int, RangeKey()]
    payload: str = ""


class Claim(Model):
    class Meta:
        table_name = "fault_claims"

    key: Annotated[str, HashKey()]
    writer: str = ""


FAST_RETRIES = RetryPolicy(max_attempts=40, base=0.001, cap=0.02)


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(moto_endpoint, seed=2024) as p:
        yield p


async def open_engine(proxy: FaultProxy, name: str, retry: RetryPolicy) -> Engine:
    engine = Engine(
        endpoint_url=proxy.url, table_name_template=f"{{table_name}}-{name}", retry=retry
    )
    await engine.open()
    return engine


async def scan_keys(engine: Engine) -> dict[tuple[str, int], str]:
    return {(i.pk, i.sk): i.payload async for i in engine.scan(Item, consistent=True)}


async def test_ten_thousand_items_arrive_exactly_once_despite_unprocessed_items_and_throttling(
    proxy: FaultProxy,
) -> None:
    engine = await open_engine(proxy, "bulk", FAST_RETRIES)
    try:
        await engine.bind(Item)
        proxy.add(Rule(Unprocessed(rate=0.3), operation="BatchWriteItem"))
        proxy.add(Rule(Throttle(), operation="BatchWriteItem", chance=0.1))
        items = [Item(pk=f"p{i % 50}", sk=i, payload=f"v{i}") for i in range(10_000)]
        async with engine.batch() as batch:
            batch.save(*items)
        proxy.clear()
        stored = await scan_keys(engine)
    finally:
        await engine.close()
    assert stored == {(i.pk, i.sk): i.payload for i in items}
    writes = [e for e in proxy.log if e.operation == "BatchWriteItem"]
    sent_upstream = sum(
        sum(len(v) for v in e.request["RequestItems"].values()) - e.unprocessed
        for e in writes
        if e.upstream
    )
    assert sent_upstream == 10_000  # each item reached the server once: none twice
    assert proxy.count(Unprocessed) > 50 and proxy.count(Throttle) > 10


async def test_a_batch_that_runs_out_of_retries_names_exactly_the_missing_objects(
    proxy: FaultProxy,
) -> None:
    engine = await open_engine(proxy, "exhausted", RetryPolicy(max_attempts=2, base=0.001))
    try:
        await engine.bind(Item)
        proxy.add(Rule(Unprocessed(rate=0.5, throttle_if_none=False), operation="BatchWriteItem"))
        items = [Item(pk="x", sk=i) for i in range(300)]
        with pytest.raises(BatchIncomplete) as info:
            async with engine.batch() as batch:
                batch.save(*items)
        proxy.clear()
        stored = await scan_keys(engine)
    finally:
        await engine.close()
    missing = {(o.pk, o.sk) for o in info.value.objects}
    assert missing and len(missing) == len(info.value.objects)
    assert missing == {(i.pk, i.sk) for i in items} - set(stored)


async def test_load_survives_unprocessed_keys_and_throttling(proxy: FaultProxy) -> None:
    engine = await open_engine(proxy, "reads", FAST_RETRIES)
    try:
        await engine.bind(Item)
        async with engine.batch() as batch:
            batch.save(*(Item(pk="r", sk=i, payload=str(i)) for i in range(1000)))
        proxy.add(Rule(Unprocessed(rate=0.3), operation="BatchGetItem"))
        proxy.add(Rule(Throttle("ThrottlingException"), operation="BatchGetItem", chance=0.1))
        blanks = [Item.model_construct(pk="r", sk=i) for i in range(1000)]
        await engine.load(*blanks)
    finally:
        await engine.close()
    assert [b.payload for b in blanks] == [str(i) for i in range(1000)]
    assert proxy.count(Unprocessed, operation="BatchGetItem") > 0


@pytest.fixture(params=["moto", "dynalite"])
async def race_proxy(servers: Any, request: pytest.FixtureRequest) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(servers.url(request.param), seed=7) as p:
        yield p


async def test_concurrent_conditional_saves_under_faults_leave_an_explained_table(
    race_proxy: FaultProxy,
) -> None:
    """Two writers race for each of 500 keys with atomic saves (only if no item exists).

    Runs on both servers: the embedded moto serves one request at a time, so a conditional
    write is atomic against a concurrent one there too (plain moto lets both writers win a few
    of 500 races; tests/conformance/test_conditions.py shows the rule on every backend).
    """
    proxy = race_proxy
    engine = await open_engine(proxy, "race", RetryPolicy(max_attempts=3, base=0.001, cap=0.01))
    outcomes: dict[tuple[str, str], str] = {}
    try:
        await engine.bind(Claim)
        proxy.add(Rule(Throttle(), operation="UpdateItem", chance=0.15))
        proxy.add(Rule(ServerError(after_upstream=True), operation="UpdateItem", chance=0.03))
        proxy.add(Rule(DropAfter(), operation="UpdateItem", chance=0.03))
        proxy.add(Rule(DropBefore(), operation="UpdateItem", chance=0.03))

        async def claim(key: str, writer: str) -> None:
            try:
                await engine.save(Claim(key=key, writer=writer), atomic=True)
                outcomes[key, writer] = "ok"
            except ConstraintViolation:
                outcomes[key, writer] = "refused"
            except OutcomeUnknown:
                outcomes[key, writer] = "unknown"
            except Throttled:
                outcomes[key, writer] = "throttled"

        async with anyio.create_task_group() as tg:
            for i in range(500):
                for writer in ("a", "b"):
                    tg.start_soon(claim, f"k{i}", writer)
        proxy.clear()
        stored = {c.key: c.writer async for c in engine.scan(Claim, consistent=True)}
    finally:
        await engine.close()

    assert len(outcomes) == 1000
    kinds = set(outcomes.values())
    assert {"ok", "refused", "unknown", "throttled"} <= kinds  # every path was exercised
    for i in range(500):
        key = f"k{i}"
        a, b = outcomes[key, "a"], outcomes[key, "b"]
        winner = stored.get(key)
        assert (a, b).count("ok") <= 1
        for writer, result in (("a", a), ("b", b)):
            if result == "ok":
                assert winner == writer  # a reported success is what is stored
            if result == "refused":
                assert winner is not None and winner != writer  # refused: the other one won
        if winner is not None:
            # whoever is stored either succeeded or was told the outcome is unknown
            assert outcomes[key, winner] in ("ok", "unknown")
        else:
            assert "ok" not in (a, b) and "refused" not in (a, b)


@pytest.mark.moto_only
async def test_a_resent_transaction_carries_the_same_idempotency_token(proxy: FaultProxy) -> None:
    engine = await open_engine(proxy, "tx", FAST_RETRIES)
    try:
        await engine.bind(Item)
        proxy.add(Rule(DropAfter(), operation="TransactWriteItems", times=1))
        async with engine.transaction() as tx:
            tx.update(Item, key={"pk": "t", "sk": 1}, actions=[Item.payload.set("done")])
        stored = await engine.get(Item, pk="t", sk=1, consistent=True)
    finally:
        await engine.close()
    sent: list[dict[str, Any]] = [
        e.request for e in proxy.log if e.operation == "TransactWriteItems"
    ]
    assert len(sent) == 2  # dropped once after reaching the server, then resent
    assert sent[0]["ClientRequestToken"] == sent[1]["ClientRequestToken"]
    assert stored is not None and stored.payload == "done"
