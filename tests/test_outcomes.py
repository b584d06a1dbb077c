"""True outcomes under faults the first proxy suite missed, through the engine, on every server.

Each test puts the fault proxy between an engine and a real server and checks what the user is
told against what the server really holds: a write the server applied is never reported as "not
done" (Throttled, BatchIncomplete.objects, EngineClosed), however the retries that follow end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import pytest

from adyn import (
    BatchIncomplete,
    DynamoError,
    Engine,
    EngineClosed,
    HashKey,
    Model,
    OutcomeUnknown,
    RetryPolicy,
    Throttled,
)
from adyn.testing.plugin import unique_table_template
from harness import BadCrc, DropAfter, FaultProxy, Latency, Malformed, Rule, Stall, Throttle

QUICK = RetryPolicy(max_attempts=4, base=0.001, cap=0.004)


class Note(Model):
    id: Annotated[str, HashKey()]
    text: str = ""


@pytest.fixture
async def proxy(backend: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(backend, seed=7) as running:
        yield running


@pytest.fixture
async def engine(proxy: FaultProxy, request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """An engine through the proxy, with quick retries and a short read timeout (2 s)."""
    template = unique_table_template(request.node.name)
    async with Engine(
        endpoint_url=proxy.url, table_name_template=template, retry=QUICK, read_timeout=2.0
    ) as engine:
        await engine.bind(Note)
        yield engine


async def stored(engine: Engine, *ids: str) -> dict[str, str]:
    """What the server holds for these ids (read consistently, around any fault)."""
    found = {}
    for i in ids:
        note = await engine.get(Note, id=i, consistent=True)
        if note is not None:
            found[i] = note.text
    return found


# ---------------------------------------------------------------------- applied, then retries


async def test_an_applied_write_whose_retries_run_out_is_outcome_unknown(
    proxy: FaultProxy, engine: Engine
) -> None:
    proxy.add(Rule(DropAfter(), operation="UpdateItem", times=1))  # applied, answer lost
    proxy.add(Rule(Throttle(), operation="UpdateItem"))  # every resend throttled
    with pytest.raises(OutcomeUnknown) as raised:
        await engine.save(Note(id="a", text="x"))  # unconditional: resending is harmless
    assert "may have been applied" in str(raised.value)
    assert isinstance(raised.value.__cause__, DynamoError)
    assert proxy.forwarded("UpdateItem") == 1
    proxy.clear()
    assert await stored(engine, "a") == {"a": "x"}  # it was applied: unknown, not "not done"


async def test_a_read_whose_retries_run_out_is_throttled(proxy: FaultProxy, engine: Engine) -> None:
    proxy.add(Rule(DropAfter(), operation="GetItem", times=1))
    proxy.add(Rule(Throttle(), operation="GetItem"))
    with pytest.raises(Throttled) as raised:
        await engine.get(Note, id="a")
    assert raised.value.code == "ProvisionedThroughputExceededException"
    assert "gave up after 4 attempts" in str(raised.value)


async def test_a_write_that_never_reached_the_server_is_throttled_not_unknown(
    proxy: FaultProxy, engine: Engine
) -> None:
    proxy.add(Rule(Throttle(), operation="UpdateItem"))
    with pytest.raises(Throttled):
        await engine.save(Note(id="b", text="x"))
    assert proxy.forwarded("UpdateItem") == 0
    proxy.clear()
    assert await stored(engine, "b") == {}


async def test_a_batch_reports_applied_entries_as_unknown_and_unsent_ones_as_not_written(
    proxy: FaultProxy, engine: Engine
) -> None:
    first = [Note(id=f"u{i}", text="x") for i in range(25)]  # one request: applied, then lost
    second = [Note(id=f"n{i}", text="x") for i in range(25)]  # one request: never applied
    proxy.add(
        Rule(
            DropAfter(),
            operation="BatchWriteItem",
            when=lambda body: any("u0" in str(v) for v in body["RequestItems"].values()),
            times=1,
        )
    )
    proxy.add(Rule(Throttle(), operation="BatchWriteItem"))
    with pytest.raises(BatchIncomplete) as raised:
        async with engine.batch() as batch:
            batch.save(*first, *second)
    error = raised.value
    assert sorted(n.id for n in error.unknown) == sorted(n.id for n in first)
    assert sorted(n.id for n in error.objects) == sorted(n.id for n in second)
    proxy.clear()
    held = await stored(engine, *(n.id for n in first + second))
    assert set(held) == {n.id for n in first}  # "unknown" were written, "not written" were not


async def test_a_batch_chunk_refused_outright_is_accounted_entry_by_entry(
    proxy: FaultProxy, engine: Engine
) -> None:
    notes = [Note(id=f"m{i}", text="x") for i in range(60)]  # three requests
    proxy.add(
        Rule(
            Malformed(after_upstream=False),
            operation="BatchWriteItem",
            when=lambda body: any("m30" in str(v) for v in body["RequestItems"].values()),
        )
    )
    with pytest.raises(BatchIncomplete) as raised:
        async with engine.batch() as batch:
            batch.save(*notes)
    error = raised.value
    accounted = {n.id for n in error.objects} | {n.id for n in error.unknown}
    proxy.clear()
    held = set(await stored(engine, *(n.id for n in notes)))
    # every entry is in exactly one account, and the written ones are exactly the others
    assert accounted.isdisjoint(held)
    assert accounted | held == {n.id for n in notes}
    assert "m30" in accounted
    assert isinstance(error.__cause__, DynamoError)


# ---------------------------------------------------------------------- damaged answers


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"[]", b'"text"', b""])
async def test_a_malformed_answer_to_a_conditional_write_is_outcome_unknown(
    proxy: FaultProxy, engine: Engine, body: bytes
) -> None:
    proxy.add(Rule(Malformed(body=body), operation="UpdateItem"))
    with pytest.raises(OutcomeUnknown) as raised:
        await engine.save(Note(id="c", text="x"), condition=Note.text.not_exists())
    assert raised.value.code == "MalformedResponse"
    assert proxy.forwarded("UpdateItem") == 1  # never resent: a resend could fail the condition
    proxy.clear()
    assert await stored(engine, "c") == {"c": "x"}


async def test_a_malformed_answer_to_a_read_is_retried(proxy: FaultProxy, engine: Engine) -> None:
    await engine.save(Note(id="d", text="x"))
    proxy.add(Rule(Malformed(), operation="GetItem", times=2))
    note = await engine.get(Note, id="d", consistent=True)
    assert note is not None and note.text == "x"
    proxy.add(Rule(Malformed(body=b"{not json"), operation="GetItem"))
    with pytest.raises(Throttled) as raised:
        await engine.get(Note, id="d")
    assert raised.value.code == "MalformedResponse"


@pytest.mark.parametrize("header", [None, "abc", "-1", "99999999999999999999999"])
async def test_a_bad_crc_is_a_damaged_answer_never_a_value_error(
    proxy: FaultProxy, engine: Engine, header: str | None
) -> None:
    proxy.add(Rule(BadCrc(header=header), operation="UpdateItem", times=1))
    await engine.save(Note(id="e", text="x"))  # unconditional: resent, applied once either way
    assert proxy.forwarded("UpdateItem") == 2
    proxy.add(Rule(BadCrc(header=header), operation="UpdateItem"))
    with pytest.raises(OutcomeUnknown) as raised:
        await engine.save(Note(id="e", text="y"), condition=Note.text == "x")
    assert raised.value.code == "CRC32CheckFailed"


# ---------------------------------------------------------------------- stalls and close


async def test_a_stalled_server_beyond_the_read_timeout_is_read_timeout(
    proxy: FaultProxy, engine: Engine
) -> None:
    proxy.add(Rule(Stall(seconds=6.0), operation="UpdateItem"))
    with anyio.fail_after(10):
        with pytest.raises(OutcomeUnknown) as raised:
            await engine.save(Note(id="f", text="x"), condition=Note.text.not_exists())
    assert raised.value.code == "ReadTimeout"
    proxy.clear()
    assert await stored(engine, "f") == {"f": "x"}  # the stalled request was applied


async def test_close_gives_every_write_in_flight_its_true_outcome(
    proxy: FaultProxy, backend: str, request: pytest.FixtureRequest
) -> None:
    template = unique_table_template(request.node.name)
    async with Engine(endpoint_url=backend, table_name_template=template) as direct:
        await direct.bind(Note)
        engine = Engine(
            endpoint_url=proxy.url,
            table_name_template=template,
            retry=RetryPolicy(max_attempts=5, base=0.2, cap=0.4),
            max_connections=32,
        )
        await engine.open()
        await engine.bind(Note)
        proxy.add(Rule(Latency(0.3), operation="UpdateItem"))
        # w00-w15 go through; w16-w31 are throttled: close() finds them about to retry;
        # w32-w63 wait for a connection slot when close() comes
        proxy.add(
            Rule(Throttle(), operation="UpdateItem", when=lambda b: b["Key"]["id"]["S"] >= "w16")
        )
        outcomes: dict[str, str] = {}

        async def write(i: int) -> None:
            key = f"w{i:02d}"
            try:
                await engine.save(Note(id=key, text="x"))
                outcomes[key] = "done"
            except OutcomeUnknown:
                outcomes[key] = "unknown"
            except (EngineClosed, Throttled):
                outcomes[key] = "not done"

        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(write, i)
            await anyio.sleep(0.1)
            await engine.close()
        held = set(await stored(direct, *outcomes))
    assert len(outcomes) == 64
    for key, outcome in outcomes.items():
        if outcome == "done":
            assert key in held, key
        elif outcome == "not done":
            assert key not in held, key
    assert "done" in outcomes.values() and "not done" in outcomes.values()
