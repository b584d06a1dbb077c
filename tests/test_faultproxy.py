"""The fault-injection proxy, driven through adyn's call path against a real moto server.

These tests pin down two things at once: that the harness injects exactly what it claims, and
how the engine's calls (the default transport under the engine's retries and error map) react
to each fault.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
from aiobotocore.session import AioSession, get_session

from adyn._calls import Caller
from adyn._http import HTTPTransport
from adyn.errors import DynamoError, OutcomeUnknown, Throttled
from adyn.retry import RetryPolicy
from harness import (
    DropAfter,
    DropBefore,
    FaultProxy,
    Latency,
    Rule,
    ServerError,
    Throttle,
    Unprocessed,
)

Wire = dict[str, Any]

FAST_RETRIES = RetryPolicy(max_attempts=4, base=0.001, cap=0.004)


class Transport:
    """The engine's call path on its own: the default transport under a `Caller`."""

    def __init__(
        self, *, endpoint_url: str, session: AioSession, retry: RetryPolicy | None = None
    ) -> None:
        self._transport = HTTPTransport(endpoint_url=endpoint_url, session=session)
        self._caller = Caller(self._transport, retry=retry or RetryPolicy(), limit=64, listeners=[])

    async def open(self) -> None:
        await self._transport.open()

    async def close(self) -> None:
        await self._caller.close()
        await self._transport.close()

    async def call(self, operation: str, request: Wire, *, idempotent: bool = True) -> Wire:
        return await self._caller.call(operation, request, idempotent=idempotent)


@pytest.fixture(scope="session")
def botocore_session() -> AioSession:
    """One session for every transport here, so botocore loads its service models once."""
    return get_session()


@pytest.fixture
async def direct(moto_endpoint: str, botocore_session: AioSession) -> AsyncIterator[Transport]:
    """A transport straight to moto, to set up tables and look at what really happened."""
    transport = Transport(endpoint_url=moto_endpoint, session=botocore_session)
    await transport.open()
    try:
        yield transport
    finally:
        await transport.close()


@pytest.fixture
async def table(request: pytest.FixtureRequest, direct: Transport) -> AsyncIterator[str]:
    # Named after the test, not at random: the proxy's dice depend on the request bodies, so a
    # stable name gives every run of a test the same faults.
    name = "faults-" + re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:200]
    await create_table(direct, name)
    try:
        yield name
    finally:
        await direct.call("DeleteTable", {"TableName": name})


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(moto_endpoint, seed=1234) as running:
        yield running


@pytest.fixture
async def transport(proxy: FaultProxy, botocore_session: AioSession) -> AsyncIterator[Transport]:
    """The engine's call path through the proxy."""
    through = Transport(endpoint_url=proxy.url, retry=FAST_RETRIES, session=botocore_session)
    await through.open()
    try:
        yield through
    finally:
        await through.close()


async def create_table(transport: Transport, name: str) -> None:
    await transport.call(
        "CreateTable",
        {
            "TableName": name,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def put(table: str, pk: str, **extra: str) -> Wire:
    item = {"pk": {"S": pk}} | {name: {"S": value} for name, value in extra.items()}
    return {"TableName": table, "Item": item}


async def stored(direct: Transport, table: str) -> dict[str, Wire]:
    """Every item of `table`, by partition key, as moto holds it."""
    items = (await direct.call("Scan", {"TableName": table, "ConsistentRead": True}))["Items"]
    return {item["pk"]["S"]: item for item in items}


# ---------------------------------------------------------------------- throttling


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"],
)
async def test_throttles_are_retried_and_the_call_succeeds(
    code: Any, proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(Throttle(code), operation="PutItem", times=2))

    await transport.call("PutItem", put(table, "a", v="1"), idempotent=False)

    assert proxy.count(Throttle) == 2
    assert proxy.forwarded("PutItem") == 1
    assert (await stored(direct, table))["a"]["v"] == {"S": "1"}


async def test_exhausted_retry_budget_raises_throttled(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(Throttle(), operation="PutItem"))

    with pytest.raises(Throttled) as raised:
        await transport.call("PutItem", put(table, "a"))

    assert raised.value.code == "ProvisionedThroughputExceededException"
    assert raised.value.operation == "PutItem"
    assert proxy.count(Throttle) == FAST_RETRIES.max_attempts
    assert proxy.forwarded() == 0
    assert await stored(direct, table) == {}


# ---------------------------------------------------------------------- server errors


async def test_server_error_on_an_idempotent_call_is_retried(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(ServerError(), operation="PutItem", times=1))

    await transport.call("PutItem", put(table, "a"))

    assert [(e.faults, e.status) for e in proxy.log] == [((ServerError(),), 500), ((), 200)]
    assert set(await stored(direct, table)) == {"a"}


async def test_server_error_after_the_write_leaves_a_non_idempotent_outcome_unknown(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(ServerError(after_upstream=True), operation="PutItem"))

    with pytest.raises(OutcomeUnknown) as raised:
        await transport.call("PutItem", put(table, "a"), idempotent=False)

    assert raised.value.code == "InternalServerError"
    assert proxy.forwarded("PutItem") == 1
    assert set(await stored(direct, table)) == {"a"}


# ---------------------------------------------------------------------- dropped connections


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
async def test_drop_before_an_idempotent_call_is_retried(
    reset: bool, proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(DropBefore(reset=reset), operation="PutItem", times=1))

    await transport.call("PutItem", put(table, "a"))

    assert [(e.upstream, e.status) for e in proxy.log] == [(False, None), (True, 200)]
    assert set(await stored(direct, table)) == {"a"}


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
async def test_drop_before_a_non_idempotent_call_is_not_resent(
    reset: bool, proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    # The server never saw the write, but a client cannot tell a connection closed before the
    # request was read from one closed after it was applied: resending is not safe.
    proxy.add(Rule(DropBefore(reset=reset), operation="PutItem"))

    with pytest.raises(OutcomeUnknown):
        await transport.call("PutItem", put(table, "a"), idempotent=False)

    assert proxy.count(DropBefore) == 1
    assert proxy.forwarded() == 0
    assert await stored(direct, table) == {}


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
async def test_drop_after_a_non_idempotent_call_raises_outcome_unknown(
    reset: bool, proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(DropAfter(reset=reset), operation="PutItem"))

    with pytest.raises(OutcomeUnknown):
        await transport.call("PutItem", put(table, "a", v="1"), idempotent=False)

    # The write happened, exactly once, and the transport did not send it again.
    assert proxy.forwarded("PutItem") == 1
    assert (await stored(direct, table))["a"]["v"] == {"S": "1"}


# ---------------------------------------------------------------------- rule selection


async def test_rules_select_by_operation_predicate_and_budget(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    rule = proxy.add(
        Rule(
            Throttle(),
            operation="PutItem",
            when=lambda body: body["Item"]["pk"]["S"] == "b",
            times=1,
        )
    )

    await transport.call("PutItem", put(table, "a"))
    await transport.call("PutItem", put(table, "b"))
    await transport.call("GetItem", {"TableName": table, "Key": {"pk": {"S": "b"}}})

    assert rule.applied == 1
    assert [(e.operation, e.request.get("Item", {}).get("pk"), e.faults) for e in proxy.log] == [
        ("PutItem", {"S": "a"}, ()),
        ("PutItem", {"S": "b"}, (Throttle(),)),
        ("PutItem", {"S": "b"}, ()),
        ("GetItem", None, ()),
    ]
    assert set(await stored(direct, table)) == {"a", "b"}


async def test_latency_delays_and_lets_later_rules_apply(
    proxy: FaultProxy, transport: Transport, table: str
) -> None:
    proxy.add(Rule(Latency(0.01), times=1))
    proxy.add(Rule(Throttle(), operation="PutItem", times=1))

    await transport.call("PutItem", put(table, "a"))

    assert [e.faults for e in proxy.log] == [(Latency(0.01), Throttle()), ()]


# ---------------------------------------------------------------------- unprocessed batches


async def test_unprocessed_items_are_exactly_the_unforwarded_writes(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    other = f"{table}-b"
    await create_table(direct, other)
    try:
        for pk in ("d0", "d1", "d2", "d3", "d4"):
            await direct.call("PutItem", put(table, pk))
        request: dict[str, list[Wire]] = {
            table: [{"PutRequest": put(table, f"p{i}")} for i in range(10)]
            + [{"DeleteRequest": {"Key": {"pk": {"S": f"d{i}"}}}} for i in range(5)],
            other: [{"PutRequest": put(other, f"q{i}", v=str(i))} for i in range(10)],
        }
        for entries in request.values():
            for entry in entries:
                entry.get("PutRequest", {}).pop("TableName", None)
        proxy.add(Rule(Unprocessed(rate=0.4), operation="BatchWriteItem"))

        response = await transport.call("BatchWriteItem", {"RequestItems": request})

        held = response["UnprocessedItems"]
        assert 0 < proxy.log[-1].unprocessed == sum(len(v) for v in held.values()) < 25
        for name, entries in request.items():
            items = await stored(direct, name)
            for entry in entries:
                if "PutRequest" in entry:
                    done = entry["PutRequest"]["Item"]["pk"]["S"] in items
                else:
                    done = entry["DeleteRequest"]["Key"]["pk"]["S"] not in items
                # Every write was either applied or handed back verbatim, never both.
                assert done != (entry in held.get(name, [])), entry
            # Unprocessed entries keep the request's order and appear once.
            assert held.get(name, []) == [e for e in entries if e in held.get(name, [])]
    finally:
        await direct.call("DeleteTable", {"TableName": other})


async def test_unprocessed_keys_are_exactly_the_unforwarded_reads(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    for i in range(20):
        await direct.call("PutItem", put(table, f"k{i}", v=str(i), hidden="x"))
    entry: Wire = {
        "Keys": [{"pk": {"S": f"k{i}"}} for i in range(20)],
        "ProjectionExpression": "#p, v",
        "ExpressionAttributeNames": {"#p": "pk"},
        "ConsistentRead": True,
    }
    proxy.add(Rule(Unprocessed(rate=0.5), operation="BatchGetItem"))

    response = await transport.call("BatchGetItem", {"RequestItems": {table: entry}})

    got = response["Responses"][table]
    back = response["UnprocessedKeys"][table]
    assert {k: v for k, v in back.items() if k != "Keys"} == {
        k: v for k, v in entry.items() if k != "Keys"
    }
    read = [{"pk": item["pk"]} for item in got]
    assert sorted(read + back["Keys"], key=str) == sorted(entry["Keys"], key=str)
    assert len(read) + len(back["Keys"]) == 20
    assert 0 < proxy.log[-1].unprocessed == len(back["Keys"]) < 20
    assert all(set(item) == {"pk", "v"} for item in got)


async def test_a_batch_with_nothing_processed_is_throttled_like_dynamodb(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    proxy.add(Rule(Unprocessed(rate=1.0), operation="BatchWriteItem"))
    request = {"RequestItems": {table: [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]}}

    with pytest.raises(Throttled) as raised:
        await transport.call("BatchWriteItem", request)

    assert raised.value.code == "ProvisionedThroughputExceededException"
    assert proxy.forwarded() == 0
    assert await stored(direct, table) == {}


async def test_a_batch_can_come_back_wholly_unprocessed(
    proxy: FaultProxy, transport: Transport, table: str
) -> None:
    proxy.add(Rule(Unprocessed(rate=1.0, throttle_if_none=False), operation="BatchGetItem"))
    entry = {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}], "ConsistentRead": False}

    response = await transport.call("BatchGetItem", {"RequestItems": {table: entry}})

    assert response["Responses"] == {table: []}
    assert response["UnprocessedKeys"] == {table: entry}
    assert proxy.forwarded() == 0


async def test_retrying_unprocessed_items_until_done_writes_each_item(
    proxy: FaultProxy, transport: Transport, direct: Transport, table: str
) -> None:
    # What adyn's batch writer does, reduced to its core.
    proxy.add(Rule(Unprocessed(rate=0.5, throttle_if_none=False), operation="BatchWriteItem"))
    pending = {table: [{"PutRequest": {"Item": {"pk": {"S": f"i{i}"}}}} for i in range(25)]}

    while pending:
        pending = (await transport.call("BatchWriteItem", {"RequestItems": pending}))[
            "UnprocessedItems"
        ]

    assert set(await stored(direct, table)) == {f"i{i}" for i in range(25)}
    assert proxy.count(Unprocessed) >= 1


# ---------------------------------------------------------------------- bodies and CRC32


async def test_passthrough_keeps_the_upstream_answer_and_rewrites_carry_a_fresh_crc32(
    moto_endpoint: str, proxy: FaultProxy, direct: Transport, table: str
) -> None:
    await direct.call("PutItem", put(table, "a", v="1"))
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=k/20240101/us-east-1/dynamodb/aws4_request,"
        " SignedHeaders=host, Signature=0",
    }

    async def post(url: str, operation: str, body: Wire) -> tuple[int, Any, bytes]:
        target = {"X-Amz-Target": f"DynamoDB_20120810.{operation}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, headers=headers | target) as response,
        ):
            return response.status, response.headers, await response.read()

    get = {"TableName": table, "Key": {"pk": {"S": "a"}}}
    _, upstream_headers, upstream_body = await post(moto_endpoint, "GetItem", get)
    status, proxied_headers, proxied_body = await post(proxy.url, "GetItem", get)
    assert status == 200
    assert proxied_body == upstream_body
    assert proxied_headers["x-amz-crc32"] == upstream_headers["x-amz-crc32"]

    proxy.add(Rule(Unprocessed(rate=0.5), operation="BatchGetItem"))
    keys = [{"pk": {"S": pk}} for pk in ("a", "b", "c", "d", "e", "f")]
    status, rewritten_headers, rewritten_body = await post(
        proxy.url, "BatchGetItem", {"RequestItems": {table: {"Keys": keys}}}
    )
    assert status == 200
    assert proxy.log[-1].unprocessed > 0
    assert int(rewritten_headers["x-amz-crc32"]) == zlib.crc32(rewritten_body)

    proxy.clear()
    proxy.add(Rule(Throttle()))
    status, error_headers, error_body = await post(proxy.url, "GetItem", get)
    assert status == 400
    assert int(error_headers["x-amz-crc32"]) == zlib.crc32(error_body)


# ---------------------------------------------------------------------- determinism


async def faults_seen(
    upstream: str, session: AioSession, table: str, seed: int, *, concurrent: bool
) -> list[Any]:
    async with FaultProxy(upstream, seed=seed) as proxy:
        proxy.add(Rule(Latency(0.001), chance=0.3))
        proxy.add(Rule(Throttle(), chance=0.3))
        proxy.add(Rule(DropBefore(), operation="GetItem", chance=0.2))
        transport = Transport(
            endpoint_url=proxy.url,
            retry=RetryPolicy(max_attempts=50, base=0.001, cap=0.002),
            session=session,
        )
        await transport.open()
        try:

            async def read(pk: str) -> None:
                await transport.call("GetItem", {"TableName": table, "Key": {"pk": {"S": pk}}})

            if concurrent:
                async with anyio.create_task_group() as group:
                    for i in range(12):
                        group.start_soon(read, f"k{i}")
            else:
                for i in range(12):
                    await read(f"k{i}")
        finally:
            await transport.close()
    return [(e.request["Key"], e.faults, e.upstream, e.status) for e in proxy.log]


async def test_the_same_seed_injects_the_same_faults(
    moto_endpoint: str, botocore_session: AioSession, table: str
) -> None:
    first = await faults_seen(moto_endpoint, botocore_session, table, 7, concurrent=False)
    again = await faults_seen(moto_endpoint, botocore_session, table, 7, concurrent=False)
    other = await faults_seen(moto_endpoint, botocore_session, table, 8, concurrent=False)

    assert first == again
    assert any(faults for _, faults, _, _ in first)
    assert other != first


async def test_the_same_seed_injects_the_same_faults_whatever_the_arrival_order(
    moto_endpoint: str, botocore_session: AioSession, table: str
) -> None:
    def run(concurrent: bool) -> Any:
        return faults_seen(moto_endpoint, botocore_session, table, 7, concurrent=concurrent)

    first = sorted(await run(True), key=repr)
    again = sorted(await run(True), key=repr)
    one_by_one = sorted(await run(False), key=repr)

    assert first == again == one_by_one


async def test_an_upstream_error_passes_through_untouched(
    proxy: FaultProxy, transport: Transport
) -> None:
    with pytest.raises(DynamoError) as raised:
        await transport.call("GetItem", {"TableName": "missing", "Key": {"pk": {"S": "a"}}})

    assert raised.value.code == "ResourceNotFoundException"
    assert [(e.faults, e.upstream, e.status) for e in proxy.log] == [((), True, 400)]
