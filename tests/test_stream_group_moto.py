"""Consumer groups on real time with the lease table in moto, through HTTP.

- members in one event loop, reading moto's own stream through `engine.stream(group=...)`;
- the lease table throttled (the fault proxy between the members and moto);
- members in separate OS processes, reading the fake streams service served over HTTP
  (`FakeStreams.serve()`, with many shards and splits) while the lease table lives in moto:
  one member is killed mid-batch, others leave, and every record is delivered.

Intervals are small (failover 1.5-2 s) so that each test takes a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
import pytest

from adyn import Engine, HashKey, Model
from adyn._http import HTTPTransport
from adyn.stream import Record, SystemClock
from adyn.testing import FakeStreams
from adyn.testing.plugin import unique_table_template
from harness.faultproxy import FaultProxy, Rule, Throttle
from harness.member import PACING as FAST
from harness.member import Event

pytestmark = pytest.mark.moto_only

TESTS = Path(__file__).resolve().parent
MEMBER = TESTS / "harness" / "member.py"


class Ticket(Model):
    class Meta:
        table_name = "tickets"
        stream = "new_and_old"

    id: Annotated[str, HashKey()]
    n: int = 0


async def collect(stream: Any, into: list[Record[Any]], *, finish: bool = True) -> None:
    async for record in stream:
        into.append(record)
        if finish:
            record.done()


async def wait_until(condition: Any, seconds: float, what: str) -> None:
    """Poll `condition` (state other tasks and processes change) for up to `seconds`."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 (no event to wait on: other processes write it)
            await anyio.sleep(0.05)
    assert condition(), what


# ---------------------------------------------------------------- one event loop


async def test_members_share_moto_s_stream_through_the_engine(
    moto_endpoint: str, request: pytest.FixtureRequest
) -> None:
    template = unique_table_template(request.node.name)
    options: dict[str, Any] = {
        "group": "tickets",
        "lease_table": "leases",
        "failover": 1.5,
        "commit_interval": 0.2,
        "pacing": FAST,
        "position": "trim_horizon",
    }
    got: list[Record[Ticket]] = []
    async with (
        Engine(endpoint_url=moto_endpoint, table_name_template=template) as a,
        Engine(endpoint_url=moto_endpoint, table_name_template=template) as b,
    ):
        await a.bind(Ticket)
        await b.bind(Ticket)
        for i in range(5):
            await a.save(Ticket(id=f"t{i}", n=i))
        async with (
            a.stream(Ticket, **options) as first,
            b.stream(Ticket, **options) as second,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(collect, first, got)
            tg.start_soon(collect, second, got)
            await wait_until(lambda: len(got) == 5, 20, "the first five tickets")
            tg.cancel_scope.cancel()
        # The lease table exists under the engine's template, and says where the group is.
        leases = await a._caller.call(
            "Query",
            {
                "TableName": a.table_name(_lease_model()),
                "KeyConditionExpression": "#g = :g",
                "ExpressionAttributeNames": {"#g": "group"},
                "ExpressionAttributeValues": {":g": {"S": "tickets"}},
            },
        )
        keys = [item["key"]["S"] for item in leases["Items"]]
        assert any(k.startswith("L") for k in keys) and "#group" in keys
        assert not any(k.startswith("@") for k in keys)  # both members left
        checkpoints = [i["checkpoint"]["S"] for i in leases["Items"] if "checkpoint" in i]
        assert checkpoints and all(c.startswith("after:") for c in checkpoints)
        for i in range(5, 8):
            await a.save(Ticket(id=f"t{i}", n=i))
        later: list[Record[Ticket]] = []
        async with b.stream(Ticket, **options) as again, anyio.create_task_group() as tg:
            tg.start_soon(collect, again, later)
            await wait_until(lambda: len(later) == 3, 20, "the three tickets after the checkpoint")
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
    assert sorted(r.key["id"] for r in got) == [f"t{i}" for i in range(5)]
    assert sorted(r.key["id"] for r in later) == ["t5", "t6", "t7"]  # resumed, not repeated


def _lease_model() -> type[Model]:
    from adyn.stream._open import lease_model

    model: type[Model] = lease_model("leases")
    return model


async def test_a_throttled_lease_table_pauses_delivery_and_loses_nothing(
    moto_endpoint: str, request: pytest.FixtureRequest
) -> None:
    template = unique_table_template(request.node.name)
    lease_table = "leases" + template.removeprefix("{table_name}")

    def on_leases(body: dict[str, Any]) -> bool:
        return body.get("TableName") == lease_table

    got: list[tuple[float, Record[Ticket]]] = []
    async with FaultProxy(moto_endpoint, seed=12) as proxy:
        async with Engine(endpoint_url=proxy.url, table_name_template=template) as engine:
            await engine.bind(Ticket)
            async with (
                engine.stream(
                    Ticket,
                    group="tickets",
                    lease_table="leases",
                    failover=1.5,
                    commit_interval=0.2,
                    pacing=FAST,
                    position="trim_horizon",
                ) as stream,
                anyio.create_task_group() as tg,
            ):

                async def consume() -> None:
                    async for record in stream:
                        got.append((time.monotonic(), record))
                        record.done()

                tg.start_soon(consume)
                await engine.save(Ticket(id="before"))
                await wait_until(lambda: len(got) == 1, 20, "the first ticket")
                rule = proxy.add(Rule(Throttle(), when=on_leases))
                throttled_at = time.monotonic()
                await anyio.sleep(3)  # past failover: the member cannot prove its lease
                for i in range(3):
                    await engine.save(Ticket(id=f"during{i}"))
                await anyio.sleep(1)
                during = len(got)
                proxy.rules.remove(rule)
                released_at = time.monotonic()
                await wait_until(lambda: len(got) == 4, 30, "the tickets written meanwhile")
                tg.cancel_scope.cancel()
            assert stream.stats.leases_lost == 0
        assert proxy.count(Throttle) > 0
    assert during == 1  # nothing was handed out while the lease table could not be reached
    assert all(at >= released_at for at, r in got if r.key["id"].startswith("during"))
    assert throttled_at < released_at
    assert [r.key["id"] for _, r in got].count("before") == 1


# ---------------------------------------------------------------- separate processes


class Process:
    """A member process and the lines it printed."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.lines: list[dict[str, Any]] = []
        self.ready = False

    async def read(self) -> None:
        stdout = self.popen.stdout
        assert stdout is not None
        async with anyio.wrap_file(stdout) as lines:  # type: ignore[arg-type]
            async for raw in lines:
                line = orjson.loads(raw)
                if "ready" in line:
                    self.ready = True
                else:
                    self.lines.append(line)


@pytest.fixture
async def served_fake(moto_endpoint: str) -> AsyncIterator[tuple[FakeStreams, str]]:
    inner = HTTPTransport(endpoint_url=moto_endpoint)
    await inner.open()
    fake = FakeStreams(SystemClock(), inner=inner, shards=6, rate_limit=0)
    try:
        async with fake.serve() as url:
            yield fake, url
    finally:
        await inner.close()


def spawn(url: str, group: str, template: str, env: dict[str, str], work: float) -> Process:
    popen = subprocess.Popen(
        [sys.executable, str(MEMBER), url, group, template, str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={
            **env,
            "PYTHONPATH": os.pathsep.join([env.get("PYTHONPATH", ""), str(MEMBER.parents[1])]),
        },
    )
    return Process(popen)


async def test_members_in_separate_processes_share_a_splitting_stream(
    served_fake: tuple[FakeStreams, str], child_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    fake, url = served_fake
    template = unique_table_template(request.node.name)
    async with Engine(endpoint_url=url, table_name_template=template) as engine:
        await engine.bind(Event)  # the fake makes the table and its 6-shard stream
    table = template.format(table_name="events")
    (arn,) = fake.stream_arns(table)
    written: dict[str, list[int]] = defaultdict(list)
    counter = 0

    def write(n: int) -> None:
        nonlocal counter
        for _ in range(n):
            counter += 1
            name = f"e{(counter * 7) % 40}"
            written[name].append(counter)
            fake.put(arn, {"id": {"S": name}}, new={"id": {"S": name}, "n": {"N": str(counter)}})

    members = [spawn(url, "g", template, child_env, 0.005) for _ in range(3)]
    try:
        async with anyio.create_task_group() as tg:
            for member in members:
                tg.start_soon(member.read)
            await wait_until(lambda: all(m.ready for m in members), 30, "members joined")
            write(60)
            await anyio.sleep(1)
            for shard in fake.open_shards(arn)[:3]:
                fake.split(arn, shard.shard_id, children=2)  # a split storm while they read
            write(60)
            victim = members[0]
            await wait_until(lambda: len(victim.lines) > 5, 30, "the victim read some")
            victim.popen.send_signal(signal.SIGKILL)  # killed mid-batch
            write(60)
            fake.split(arn, fake.open_shards(arn)[0].shard_id, children=1)
            write(60)

            def everything() -> bool:
                seen = {(line["key"], line["n"]) for m in members for line in m.lines}
                return all((k, n) in seen for k, ns in written.items() for n in ns)

            await wait_until(everything, 60, "every record, despite the kill")
            for member in members[1:]:
                member.popen.send_signal(signal.SIGTERM)  # leave cleanly
            for member in members[1:]:
                await anyio.to_thread.run_sync(member.popen.wait, 20)
            tg.cancel_scope.cancel()
    finally:
        for member in members:
            if member.popen.poll() is None:
                member.popen.kill()
            member.popen.wait()
    assert [m.popen.returncode for m in members[1:]] == [0, 0]
    # Per item, each member saw the item's records in write order, and within one tenure (a
    # shard under one epoch) no record came twice: repeats happen only across owner changes.
    for member in members:
        by_key: dict[str, list[int]] = defaultdict(list)
        tenure: set[tuple[str, int, str]] = set()
        for line in member.lines:
            by_key[line["key"]].append(line["n"])
            seen = (line["shard"], line["epoch"], line["seq"])
            assert seen not in tenure, f"{line['seq']} came twice in one tenure"
            tenure.add(seen)
        for values in by_key.values():
            assert values == sorted(values)
    # After the clean exits, no lease has an owner: the group can be picked up at once.
    view = await _leases(fake, template)
    assert view and all("owner" not in item for item in view)


async def _leases(fake: FakeStreams, template: str) -> list[dict[str, Any]]:
    assert fake.inner is not None
    response = await fake.inner.call(
        "dynamodb",
        "Query",
        {
            "TableName": template.format(table_name="adyn-leases"),
            "KeyConditionExpression": "#g = :g AND begins_with(#k, :l)",
            "ExpressionAttributeNames": {"#g": "group", "#k": "key"},
            "ExpressionAttributeValues": {":g": {"S": "g"}, ":l": {"S": "L"}},
        },
        idempotent=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items
