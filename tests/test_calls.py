"""The engine's calls: retries by error class, listeners, consumed capacity, logging, tracing,
fair queueing, and bad arguments, through real servers and through a user-written transport."""

from __future__ import annotations

import logging
import statistics
import time
import zlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import orjson
import pytest
from aiohttp import web

from adyn import (
    AdynError,
    CallEvent,
    ConsumedCapacity,
    DynamoError,
    Engine,
    HashKey,
    InvalidArgument,
    InvalidQuery,
    Model,
    OutcomeUnknown,
    RetryPolicy,
    Throttled,
    Transport,
)
from adyn.errors import ConditionalCheckFailedError, ResourceNotFoundError
from adyn.testing.plugin import unique_table_template

QUICK = RetryPolicy(max_attempts=3, base=0.001, cap=0.002)


class Counter(Model):
    id: Annotated[str, HashKey()]
    n: int = 0


class Scripted:
    """A user-written transport: passes calls on, failing the ones its script names.

    `script[operation]` is a list of steps, one per attempt: "pass", "fail:<code>" (answer with
    that error, nothing applied) or "lost:<code>" (apply, then fail as if the answer was lost).
    It raises plain `DynamoError`s, as a user's transport would; the engine maps them.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.script: dict[str, list[str]] = {}
        self.sent: list[str] = []

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        steps = self.script.get(operation)
        step = steps.pop(0) if steps else "pass"
        kind, _, code = step.partition(":")
        if kind == "fail":
            raise DynamoError(code, "scripted", operation, status=400, request_id="scripted")
        self.sent.append(operation)
        response = await self.inner.call(service, operation, request, idempotent=idempotent)
        if kind == "lost":
            raise DynamoError(code, "scripted: the answer was lost", operation)
        return response


@pytest.fixture
async def scripted(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    template = unique_table_template(request.node.name)
    async with Engine(endpoint_url=backend) as plain:
        transport = Scripted(plain.transport)
        async with Engine(transport=transport, table_name_template=template, retry=QUICK) as e:
            await e.bind(Counter)
            yield e


def script(engine: Engine) -> Scripted:
    transport = engine.transport
    assert isinstance(transport, Scripted)
    return transport


# ---------------------------------------------------------------------- retry classes


async def test_a_user_transport_plugs_in_and_its_errors_are_mapped_by_code(
    scripted: Engine,
) -> None:
    await scripted.save(Counter(id="a", n=1))
    with pytest.raises(ConditionalCheckFailedError):  # mapped from a plain DynamoError
        await scripted.transport.call(
            "dynamodb",
            "PutItem",
            {
                "TableName": scripted.table_name(Counter),
                "Item": {"id": {"S": "a"}},
                "ConditionExpression": "attribute_not_exists(id)",
            },
            idempotent=False,
        )
    script(scripted).script["GetItem"] = ["fail:ResourceNotFoundException"]
    with pytest.raises(ResourceNotFoundError) as raised:
        await scripted.get(Counter, id="a")
    assert raised.value.request_id == "scripted" and raised.value.status == 400


async def test_rejections_are_resent_until_they_succeed(scripted: Engine) -> None:
    script(scripted).script["UpdateItem"] = ["fail:ThrottlingException", "fail:ConnectionFailed"]
    await scripted.save(Counter(id="b", n=1), condition=Counter.n.not_exists())
    assert script(scripted).sent.count("UpdateItem") == 1  # nothing happened twice
    assert (await scripted.get(Counter, id="b", consistent=True)) == Counter(id="b", n=1)


async def test_an_unknown_outcome_is_resent_only_when_resending_is_harmless(
    scripted: Engine,
) -> None:
    transport = script(scripted)
    transport.script["UpdateItem"] = ["lost:InternalServerError"]
    await scripted.save(Counter(id="c", n=1))  # a plain SET: resent, applied (twice: harmless)
    assert transport.sent.count("UpdateItem") == 2
    transport.script["UpdateItem"] = ["lost:ConnectionLost"]
    with pytest.raises(OutcomeUnknown) as raised:
        await scripted.update(Counter, key={"id": "c"}, actions=[Counter.n.add(1)])
    assert transport.sent.count("UpdateItem") == 3  # sent once: a resend would add twice
    assert raised.value.code == "ConnectionLost"
    stored = await scripted.get(Counter, id="c", consistent=True)
    assert stored is not None and stored.n == 2  # it was applied: unknown, not "not done"


async def test_a_write_applied_then_throttled_to_the_end_is_outcome_unknown(
    scripted: Engine,
) -> None:
    script(scripted).script["UpdateItem"] = [
        "lost:ReadTimeout",
        "fail:ProvisionedThroughputExceededException",
        "fail:ProvisionedThroughputExceededException",
    ]
    with pytest.raises(OutcomeUnknown) as raised:
        await scripted.save(Counter(id="d", n=5))
    assert raised.value.code == "ProvisionedThroughputExceededException"
    assert isinstance(raised.value.__cause__, DynamoError)
    assert await scripted.get(Counter, id="d", consistent=True) == Counter(id="d", n=5)


async def test_a_read_throttled_to_the_end_is_throttled(scripted: Engine) -> None:
    script(scripted).script["GetItem"] = ["fail:ThrottlingException"] * 3
    with pytest.raises(Throttled) as raised:
        await scripted.get(Counter, id="x")
    assert raised.value.request_id == "scripted"


async def test_a_transport_bug_is_reported_as_it_is_and_never_resent(backend: str) -> None:
    class Broken:
        calls = 0

        async def call(
            self, service: str, operation: str, request: Any, *, idempotent: bool
        ) -> dict[str, Any]:
            Broken.calls += 1
            raise KeyError("oops")

    async with Engine(transport=Broken(), retry=QUICK) as engine:
        with pytest.raises(DynamoError, match="the transport raised KeyError") as raised:
            await engine.bind(Counter)
    assert isinstance(raised.value.__cause__, KeyError)
    assert Broken.calls == 1


# ---------------------------------------------------------------------- listeners, capacity


async def test_listeners_see_every_call_and_a_failing_listener_breaks_nothing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[CallEvent] = []

    def broken(event: CallEvent) -> None:
        raise RuntimeError("listener bug")

    engine.listeners.extend([events.append, broken])
    await engine.bind(Counter)
    table = engine.table_name(Counter)
    await engine.save(Counter(id="e", n=1))
    await engine.get(Counter, id="e")
    await engine.query(Counter, key=Counter.id == "e").all()
    with pytest.raises(AdynError):
        await engine.save(Counter(id="e", n=2), condition=Counter.n == 7)
    by_op = {e.operation: e for e in events}
    assert {"DescribeTable", "UpdateItem", "GetItem", "Query"} <= set(by_op)
    get = by_op["GetItem"]
    assert (get.service, get.table, get.model, get.attempts, get.items) == (
        "dynamodb",
        table,
        Counter,
        1,
        1,
    )
    assert get.error is None and get.duration > 0
    assert by_op["Query"].items == 1
    failed = events[-1]
    assert failed.operation == "UpdateItem" and isinstance(
        failed.error, ConditionalCheckFailedError
    )
    assert "listener bug" in caplog.text  # logged, with the listener named


async def test_consumed_capacity_reaches_events_pages_and_the_engine_total(
    backend: str, request: pytest.FixtureRequest
) -> None:
    events: list[CallEvent] = []
    template = unique_table_template(request.node.name)
    async with Engine(
        endpoint_url=backend,
        table_name_template=template,
        consumed_capacity=True,
        listeners=[events.append],
    ) as engine:
        await engine.bind(Counter)
        table = engine.table_name(Counter)
        await engine.save(Counter(id="f", n=1))
        await engine.get(Counter, id="f", consistent=True)
        pages = [p async for p in engine.query(Counter, key=Counter.id == "f").pages()]
        reported = [e.consumed for e in events if e.consumed is not None]
        totals = engine.consumed()
    assert reported, "the server reported no consumed capacity"
    assert set(totals) == {table}
    assert totals[table] == sum(reported, ConsumedCapacity())
    assert totals[table].read > 0
    assert pages[0].consumed is None or pages[0].consumed.read > 0


async def test_request_ids_reach_events_and_errors(engine: Engine) -> None:
    events: list[CallEvent] = []
    engine.listeners.append(events.append)
    await engine.bind(Counter)
    assert events[-1].request_id, "the server sent a request id"
    with pytest.raises(ResourceNotFoundError) as raised:
        await engine.transport.call(
            "dynamodb", "DescribeTable", {"TableName": "no-such-table"}, idempotent=True
        )
    assert raised.value.status == 400 and raised.value.request_id


async def test_debug_logs_one_line_per_call_without_credentials(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret, key_id, token = "s3cr3t-SECRET-value", "AKIDTESTKEYID0001", "TOKEN-sess-42"
    with caplog.at_level(logging.DEBUG):
        async with Engine(
            endpoint_url=backend,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            table_name_template="{table_name}-debuglog",
        ) as engine:
            await engine.bind(Counter)
            await engine.get(Counter, id="nobody")
    lines = [r.getMessage() for r in caplog.records if r.name == "adyn.calls"]
    assert any("GetItem" in line and "request_id=" in line for line in lines)
    everything = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    for credential in (secret, key_id, token):
        assert credential not in everything


# ---------------------------------------------------------------------- telemetry


async def test_telemetry_emits_a_client_span_per_call_and_the_duration_metric(
    engine: Engine,
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from adyn import telemetry

    exporter = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry.instrument(engine, tracer_provider=tracing, meter_provider=MeterProvider([reader]))
    parent_tracer = tracing.get_tracer("app")
    with parent_tracer.start_as_current_span("handler") as parent:
        await engine.bind(Counter)
        await engine.save(Counter(id="g", n=1))
        await engine.query(Counter, key=Counter.id == "g", limit=1).all()
        with pytest.raises(AdynError):
            await engine.save(Counter(id="g"), condition=Counter.n == 9)
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name.startswith("DynamoDB.")}
    assert {"DynamoDB.DescribeTable", "DynamoDB.UpdateItem", "DynamoDB.Query"} <= set(spans)
    query = spans["DynamoDB.Query"]
    assert query.kind is trace.SpanKind.CLIENT
    assert query.parent is not None and query.parent.span_id == parent.get_span_context().span_id
    attrs = query.attributes or {}
    assert attrs["db.system.name"] == "aws.dynamodb"
    assert attrs["db.operation.name"] == "Query"
    assert attrs["rpc.system"] == "aws-api" and attrs["rpc.method"] == "Query"
    assert attrs["aws.dynamodb.table_names"] == (engine.table_name(Counter),)
    assert attrs["aws.dynamodb.count"] == 1
    failed = [s for s in exporter.get_finished_spans() if s.name == "DynamoDB.UpdateItem"][-1]
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "ConditionalCheckFailedException"
    data = reader.get_metrics_data()
    assert data is not None
    metrics = {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    points = metrics["db.client.operation.duration"].data.data_points
    by_op = {dict(p.attributes or {})["db.operation.name"]: p for p in points}
    assert by_op["Query"].count == 1 and by_op["Query"].sum > 0
    telemetry.uninstrument(engine)
    before = len(exporter.get_finished_spans())
    await engine.get(Counter, id="g")
    assert len(exporter.get_finished_spans()) == before


# ---------------------------------------------------------------------- fair queueing


class InFlight:
    """How many GetItems the stand-in server held at once, at most. With `gather` set, the
    server holds the first requests until that many are in (or a second has passed), so that a
    slow machine sending them still shows how many the client lets out at once."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.gather: int | None = None
        self.gathered = anyio.Event()


@pytest.fixture
def in_flight() -> InFlight:
    return InFlight()


@pytest.fixture
async def slow_stub(in_flight: InFlight) -> AsyncIterator[str]:
    """A DynamoDB stand-in that answers every GetItem with one item after 2 ms."""
    body = orjson.dumps({"Item": {"id": {"S": "k"}, "n": {"N": "1"}}})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amz-crc32": str(zlib.crc32(body))}

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("X-Amz-Target", "").endswith("DescribeTable"):
            table = {"Table": _table_description()}
            data = orjson.dumps(table)
            return web.Response(
                body=data,
                headers={**headers, "x-amz-crc32": str(zlib.crc32(data))},
            )
        in_flight.now += 1
        in_flight.peak = max(in_flight.peak, in_flight.now)
        try:
            if in_flight.gather is not None and not in_flight.gathered.is_set():
                if in_flight.now >= in_flight.gather:
                    in_flight.gathered.set()
                with anyio.move_on_after(1.0):
                    await in_flight.gathered.wait()
            await anyio.sleep(0.002)
        finally:
            in_flight.now -= 1
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _table_description() -> dict[str, Any]:
    return {
        "TableName": "Counter",
        "TableStatus": "ACTIVE",
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    }


async def test_a_thousand_tasks_sharing_an_engine_are_served_fairly(slow_stub: str) -> None:
    latencies: list[float] = []
    async with Engine(endpoint_url=slow_stub, max_connections=32) as engine:
        await engine.bind(Counter, create=False)

        async def one() -> None:
            start = time.perf_counter()
            await engine.get(Counter, id="k")
            latencies.append(time.perf_counter() - start)

        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(one)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert len(latencies) == 1000
    assert p99 <= 20 * p50, (p50, p99)


async def test_by_default_an_engine_has_128_calls_in_flight_and_queues_the_rest(
    slow_stub: str, in_flight: InFlight
) -> None:
    found: list[Counter | None] = []
    in_flight.gather = 128  # the server holds the first ones until 128 are in, or for 1 s
    async with Engine(endpoint_url=slow_stub) as engine:
        await engine.bind(Counter, create=False)

        async def one() -> None:
            found.append(await engine.get(Counter, id="k"))

        async with anyio.create_task_group() as tg:
            for _ in range(400):
                tg.start_soon(one)
    assert len(found) == 400 and all(obj is not None for obj in found)
    assert in_flight.peak == 128  # more would show above 128 (400 were waiting), fewer below


# ---------------------------------------------------------------------- bad arguments


async def test_every_bad_argument_is_an_adyn_error_before_anything_is_sent(engine: Engine) -> None:
    sent: list[CallEvent] = []
    bad_engines: list[dict[str, Any]] = [
        {"max_connections": 0},
        {"max_connections": "many"},
        {"retry": {"max_attempts": 3}},
        {"table_name_template": 42},
        {"table_name_template": "{nope}-x"},
        {"listeners": ["not callable"]},
        {"listeners": None},
        {"transport": object()},
        {"read_timeout": 0},
        {"connect_timeout": "soon"},
    ]
    for kwargs in bad_engines:
        with pytest.raises(InvalidArgument):
            Engine(**kwargs)
    with pytest.raises(InvalidArgument):
        RetryPolicy(max_attempts=0)
    with pytest.raises(InvalidArgument):
        RetryPolicy(base=-1)
    await engine.bind(Counter)
    engine.listeners.append(sent.append)
    cases = [
        lambda: engine.bind(),
        lambda: engine.bind(int),  # type: ignore[arg-type]
        lambda: engine.save("not a model"),  # type: ignore[arg-type]
        lambda: engine.delete(42),  # type: ignore[arg-type]
        lambda: engine.get(dict, id="x"),  # type: ignore[type-var]
        lambda: engine.load(object()),  # type: ignore[arg-type]
    ]
    for case in cases:
        with pytest.raises(InvalidArgument):
            await case()
    with pytest.raises(InvalidArgument):
        engine.transaction(mode="x")  # type: ignore[call-overload]
    with pytest.raises(InvalidArgument):
        engine.transaction(mode="r", token="t")  # type: ignore[call-overload]
    with pytest.raises(InvalidArgument):
        engine.transaction(token="x" * 37)
    with pytest.raises(InvalidArgument):
        engine.stream()
    for wrong in ({"actions": Counter.id.set("x")}, {"actions": None}):
        with pytest.raises(InvalidArgument):
            await engine.update(Counter, {"id": "x"}, **wrong)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        await engine.update(Counter, "x", [Counter.id.set("x")])  # type: ignore[call-overload]
    with pytest.raises(InvalidArgument):
        await engine.backfill(Counter, lambda c: c, checkpoint=3)  # type: ignore[arg-type]
    for interval in ({"failover": "soon"}, {"commit_interval": None}, {"failover": True}):
        with pytest.raises(InvalidArgument):
            async with engine.stream(Counter, group="g", **interval):  # type: ignore[arg-type]
                pass
    with pytest.raises(InvalidArgument):
        engine.query(str, key=Counter.id == "x")  # type: ignore[arg-type]
    for bad in ({"limit": 0}, {"page_size": -1}, {"start": "{}"}, {"start": "not json"}):
        with pytest.raises(InvalidQuery):
            engine.query(Counter, key=Counter.id == "x", **bad)
    with pytest.raises(InvalidQuery):
        engine.scan(Counter, segments=0)
    assert sent == []  # nothing reached the server
    assert issubclass(InvalidArgument, ValueError)
