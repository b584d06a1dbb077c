"""HTTPTransport: real servers, purpose-built misbehaving servers, credentials and resolution.

- Against the suite's servers (`backend`: moto and dynalite): the control plane and the data
  plane in DynamoDB's own JSON, and a service error mapped to its class with status and id.
- Against tiny servers written here: every connection-level failure maps to its adyn class and
  code, so the engine can tell "nothing was sent" from "may have been applied".
- Credentials: refreshed before they expire, reloaded after ExpiredTokenException, and never in
  any log record, error or repr.
- Region and endpoint resolution from arguments, the environment and the config files.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import logging
import socket
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from aiobotocore.credentials import AioCredentials, AioRefreshableCredentials
from aiobotocore.session import AioSession
from aiohttp import web
from anyio import wait_all_tasks_blocked
from botocore.credentials import CredentialProvider

from adyn import DynamoError, EngineClosed, InvalidArgument
from adyn import errors as adyn_errors
from adyn._aws import dns_suffix, is_loopback, resolve, validate_endpoint_url
from adyn._http import HTTPTransport
from adyn.errors import (
    CONNECT_TIMEOUT,
    CONNECTION_FAILED,
    CONNECTION_LOST,
    CRC32_CHECK_FAILED,
    MALFORMED_RESPONSE,
    READ_TIMEOUT,
    ExpiredTokenError,
    ResourceNotFoundError,
)

GET = {"TableName": "adyn-missing-table", "Key": {"pk": {"S": "a"}}}
KEYS = {"aws_access_key_id": "AKIDSTUBTEST", "aws_secret_access_key": "stub-secret"}


# ------------------------------------------------------------------ helpers


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment with no AWS settings at all: empty config files, no metadata service."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def new_table_request(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


async def create_table(transport: HTTPTransport, name: str) -> dict[str, Any]:
    """CreateTable, then wait until the table is ACTIVE (dynalite creates tables asynchronously)."""
    created = await transport.call(
        "dynamodb", "CreateTable", new_table_request(name), idempotent=False
    )
    with anyio.fail_after(30):
        while True:
            described = await transport.call(
                "dynamodb", "DescribeTable", {"TableName": name}, idempotent=True
            )
            if described["Table"]["TableStatus"] == "ACTIVE":
                return created
            await anyio.sleep(0.02)


def json_response(data: Any, *, status: int = 200, crc: str | None = None) -> web.Response:
    body = orjson.dumps(data)
    return web.Response(
        body=body,
        status=status,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": "STUBREQUEST1",
            "x-amz-crc32": crc if crc is not None else str(zlib.crc32(body)),
        },
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def stub_server(handler: Handler) -> AsyncIterator[str]:
    """A one-route aiohttp server on a free loopback port; yields its URL."""
    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_server(
    on_request: Callable[[asyncio.StreamWriter, int], Awaitable[None]],
) -> AsyncIterator[str]:
    """A server that reads whole HTTP requests and lets `on_request(writer, n)` answer (or not)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                count += 1
                await on_request(writer, count)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def failure_of(
    url: str, *, read_timeout: float = 5.0, connect_timeout: float = 5.0
) -> DynamoError:
    async with HTTPTransport(
        endpoint_url=url, read_timeout=read_timeout, connect_timeout=connect_timeout, **KEYS
    ) as transport:
        with pytest.raises(DynamoError) as caught:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    return caught.value


# ------------------------------------------------------------------ real servers


async def test_control_and_data_plane_on_a_real_server(backend: str) -> None:
    name = f"http-{uuid.uuid4().hex[:12]}"
    blob = b"\x00\xffbinary\n"
    async with HTTPTransport(endpoint_url=backend) as transport:
        created = await create_table(transport, name)
        assert created["TableDescription"]["TableName"] == name
        # Times are epoch numbers in DynamoDB's own JSON.
        assert isinstance(created["TableDescription"]["CreationDateTime"], int | float)
        item = {
            "pk": {"S": "k1"},
            "blob": {"B": base64.b64encode(blob).decode()},
            "blobs": {"BS": [base64.b64encode(b"a").decode(), base64.b64encode(b"b").decode()]},
            "n": {"N": "12345678901234567890.5"},
            "ns": {"NS": ["1", "-2.5"]},
        }
        put = await transport.call(
            "dynamodb", "PutItem", {"TableName": name, "Item": item}, idempotent=False
        )
        assert set(put) == {"ResponseMetadata"}
        got = await transport.call(
            "dynamodb",
            "GetItem",
            {"TableName": name, "Key": {"pk": {"S": "k1"}}, "ConsistentRead": True},
            idempotent=True,
        )
        assert got["Item"]["n"] == {"N": "12345678901234567890.5"}
        assert base64.b64decode(got["Item"]["blob"]["B"]) == blob
        assert sorted(base64.b64decode(v) for v in got["Item"]["blobs"]["BS"]) == [b"a", b"b"]
        assert sorted(got["Item"]["ns"]["NS"], key=float) == ["-2.5", "1"]
        assert got["ResponseMetadata"]["RequestId"]
        await transport.call("dynamodb", "DeleteTable", {"TableName": name}, idempotent=True)


async def test_a_service_error_is_mapped_with_status_and_request_id(backend: str) -> None:
    async with HTTPTransport(endpoint_url=backend) as transport:
        with pytest.raises(ResourceNotFoundError) as caught:
            await transport.call(
                "dynamodb",
                "GetItem",
                {"TableName": f"missing-{uuid.uuid4().hex[:8]}", "Key": {"pk": {"S": "a"}}},
                idempotent=True,
            )
    error = caught.value
    assert error.code == "ResourceNotFoundException"
    assert error.status == 400
    assert error.request_id
    assert error.operation == "GetItem"
    assert error.response["__type"].endswith("ResourceNotFoundException")


async def test_streams_calls_go_to_the_streams_service(moto_endpoint: str) -> None:
    async with HTTPTransport(endpoint_url=moto_endpoint) as transport:
        answer = await transport.call("dynamodbstreams", "ListStreams", {}, idempotent=True)
    assert "Streams" in answer


async def test_opening_does_not_block_the_event_loop(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    from blockbuster import blockbuster_ctx

    (aws_env / "config").write_text("[default]\nregion = eu-west-1\n")
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n"
    )
    transport = HTTPTransport(endpoint_url=moto_endpoint)
    with blockbuster_ctx("adyn") as blockbuster:
        # botocore's credential chain reads files: adyn runs it on a private event loop in a
        # worker thread, which blockbuster cannot tell from the application's loop.
        for function in blockbuster.functions.values():
            function.can_block_in("adyn/_aws.py", "_load_chain_in_thread")
        await transport.open()
        answer = await transport.call("dynamodb", "ListTables", {}, idempotent=True)
        await transport.close()
    assert "TableNames" in answer
    assert transport.region == "eu-west-1"


# ------------------------------------------------------------------ misbehaving servers


async def test_a_200_body_that_is_not_json_is_a_malformed_response() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>proxy says hi</html>", headers={"x-amzn-RequestId": "R1"})

    async with stub_server(handler) as url:
        error = await failure_of(url)
    assert type(error) is DynamoError
    assert error.code == MALFORMED_RESPONSE
    assert error.status == 200
    assert error.request_id == "R1"


async def test_a_200_body_that_is_json_but_not_an_object_is_a_malformed_response() -> None:
    async def handler(request: web.Request) -> web.Response:
        return json_response(["Item", 1])

    async with stub_server(handler) as url:
        error = await failure_of(url)
    assert type(error) is DynamoError
    assert error.code == MALFORMED_RESPONSE


@pytest.mark.parametrize("crc", ["12345", "not-a-number", ""])
async def test_a_bad_crc32_header_is_a_crc_failure(crc: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return json_response({"Item": {"pk": {"S": "a"}}}, crc=crc)

    async with stub_server(handler) as url:
        error = await failure_of(url)
    assert type(error) is DynamoError
    assert error.code == CRC32_CHECK_FAILED


async def test_a_server_that_stalls_beyond_the_read_timeout() -> None:
    release = anyio.Event()

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        with anyio.move_on_after(10):
            await release.wait()
        return json_response({})

    async with stub_server(handler) as url:
        error = await failure_of(url, read_timeout=0.2)
        release.set()
    assert type(error) is DynamoError
    assert error.code == READ_TIMEOUT
    assert error.status is None


async def test_a_refused_connection_is_a_connection_failure() -> None:
    error = await failure_of(f"http://127.0.0.1:{free_port()}")
    assert type(error) is DynamoError
    assert error.code == CONNECTION_FAILED
    assert adyn_errors.retry_of(error) is adyn_errors.Retry.REJECTED


async def test_a_connection_that_is_never_accepted_is_a_connect_timeout() -> None:
    # A listening socket whose accept queue is full: the kernel drops further SYNs, so
    # connecting hangs (the queue is filled by one connection nobody accepts).
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        extra = [socket.socket() for _ in range(2)]
        for sock in extra:
            sock.setblocking(False)
            sock.connect_ex(listener.getsockname())
        try:
            host, port = listener.getsockname()
            error = await failure_of(f"http://{host}:{port}", connect_timeout=0.3)
        finally:
            for sock in extra:
                sock.close()
    assert type(error) is DynamoError
    assert error.code == CONNECT_TIMEOUT
    assert adyn_errors.retry_of(error) is adyn_errors.Retry.REJECTED


async def test_a_connection_dropped_after_the_request_was_read_is_lost() -> None:
    seen: list[int] = []

    async def drop(writer: asyncio.StreamWriter, count: int) -> None:
        seen.append(count)
        writer.transport.abort()

    async with raw_server(drop) as url:
        error = await failure_of(url)
    assert seen == [1]  # the server had the whole request: it may have applied it
    assert type(error) is DynamoError
    assert error.code == CONNECTION_LOST
    assert adyn_errors.retry_of(error) is adyn_errors.Retry.UNKNOWN


async def test_a_reused_keep_alive_connection_that_breaks_is_lost() -> None:
    body = orjson.dumps({})
    ok = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )

    async def first_then_drop(writer: asyncio.StreamWriter, count: int) -> None:
        if count == 1:
            writer.write(ok)
            await writer.drain()
        else:
            writer.close()

    async with (
        raw_server(first_then_drop) as url,
        HTTPTransport(endpoint_url=url, **KEYS) as transport,
    ):
        await transport.call("dynamodb", "GetItem", GET, idempotent=True)
        with pytest.raises(DynamoError) as caught:
            await transport.call("dynamodb", "PutItem", GET, idempotent=False)
    assert type(caught.value) is DynamoError
    assert caught.value.code == CONNECTION_LOST


async def test_an_answer_that_is_not_http_is_malformed() -> None:
    async def garbage(writer: asyncio.StreamWriter, count: int) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(garbage) as url:
        error = await failure_of(url)
    assert type(error) is DynamoError
    assert error.code == MALFORMED_RESPONSE


async def test_error_answers_without_dynamodb_json() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.headers["X-Amz-Target"].endswith("GetItem"):
            return web.Response(status=503, body=b"<html>Service Unavailable</html>")
        return web.Response(
            status=400,
            body=b"",
            headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/"},
        )

    async with stub_server(handler) as url, HTTPTransport(endpoint_url=url, **KEYS) as transport:
        with pytest.raises(DynamoError) as unavailable:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
        with pytest.raises(DynamoError) as invalid:
            await transport.call("dynamodb", "PutItem", GET, idempotent=False)
    assert unavailable.value.code == "HTTP503"
    assert unavailable.value.status == 503
    assert adyn_errors.retry_of(unavailable.value) is adyn_errors.Retry.UNKNOWN
    assert invalid.value.code == "ValidationException"


async def test_a_compressed_answer_is_checked_then_decompressed() -> None:
    async def handler(request: web.Request) -> web.Response:
        assert request.headers["Accept-Encoding"] == "identity"
        body = gzip.compress(orjson.dumps({"Item": {"pk": {"S": "zipped"}}}))
        return web.Response(
            body=body,
            headers={"Content-Encoding": "gzip", "x-amz-crc32": str(zlib.crc32(body))},
        )

    async with stub_server(handler) as url, HTTPTransport(endpoint_url=url, **KEYS) as transport:
        answer = await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert answer["Item"] == {"pk": {"S": "zipped"}}


async def test_a_request_that_is_not_json_is_refused_before_sending() -> None:
    calls: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(await request.read())
        return json_response({})

    async with stub_server(handler) as url, HTTPTransport(endpoint_url=url, **KEYS) as transport:
        with pytest.raises(InvalidArgument, match="PutItem"):
            await transport.call(
                "dynamodb", "PutItem", {"Item": {"b": {"B": b"raw"}}}, idempotent=False
            )
        with pytest.raises(InvalidArgument, match="unknown service"):
            await transport.call("s3", "GetObject", {}, idempotent=True)
    assert calls == []


async def test_calls_outside_open_and_close_raise_engine_closed() -> None:
    transport = HTTPTransport(endpoint_url="http://127.0.0.1:1", **KEYS)
    with pytest.raises(EngineClosed, match="not open"):
        await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    await transport.open()
    await transport.close()
    with pytest.raises(EngineClosed, match="closed"):
        await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    with pytest.raises(EngineClosed):
        await transport.open()


async def test_waiting_for_a_pooled_connection_is_not_a_connect_timeout() -> None:
    # One connection, a server slower than the connect timeout: the calls queued behind the
    # first wait longer than connect_timeout for the pool, and that is not a failure.
    async def slow(request: web.Request) -> web.Response:
        await anyio.sleep(0.3)
        return json_response({"Item": {"pk": {"S": "a"}}})

    answers: list[dict[str, Any]] = []
    async with (
        stub_server(slow) as url,
        HTTPTransport(endpoint_url=url, max_connections=1, connect_timeout=0.05, **KEYS) as t,
    ):

        async def get() -> None:
            answers.append(await t.call("dynamodb", "GetItem", GET, idempotent=True))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(get)
    assert [answer["Item"] for answer in answers] == [{"pk": {"S": "a"}}] * 4


async def test_closing_under_calls_gives_each_a_true_adyn_error() -> None:
    release = anyio.Event()
    received = anyio.Event()

    async def stall(request: web.Request) -> web.Response:
        await request.read()
        received.set()
        with anyio.move_on_after(10):
            await release.wait()
        return json_response({})

    failures: dict[str, DynamoError] = {}
    async with stub_server(stall) as url:
        transport = HTTPTransport(endpoint_url=url, max_connections=1, **KEYS)
        await transport.open()

        async def put(name: str) -> None:
            with pytest.raises(DynamoError) as caught:
                await transport.call("dynamodb", "PutItem", GET, idempotent=False)
            failures[name] = caught.value

        async with anyio.create_task_group() as group:
            group.start_soon(put, "sent")
            await received.wait()
            group.start_soon(put, "queued")  # waits for the one pooled connection
            await wait_all_tasks_blocked()
            await transport.close()
        release.set()
    assert failures["sent"].code == CONNECTION_LOST  # the server had it: may have been applied
    assert failures["queued"].code == CONNECTION_FAILED  # never sent
    with pytest.raises(EngineClosed):
        await transport.call("dynamodb", "PutItem", GET, idempotent=False)


# ------------------------------------------------------------------ credentials


class KeyRecorder:
    """A stub DynamoDB that records the access key id and signing time of every call."""

    def __init__(self, expired_first: int = 0) -> None:
        self.calls: list[tuple[str, str, str | None]] = []  # (key id, X-Amz-Date, token)
        self.expired_first = expired_first

    async def handler(self, request: web.Request) -> web.Response:
        credential = request.headers["Authorization"].split("Credential=")[1]
        self.calls.append(
            (
                credential.split("/")[0],
                request.headers["X-Amz-Date"],
                request.headers.get("X-Amz-Security-Token"),
            )
        )
        if len(self.calls) <= self.expired_first:
            return json_response(
                {
                    "__type": "com.amazon.coral.service#ExpiredTokenException",
                    "message": "The security token included in the request is expired",
                },
                status=400,
            )
        return json_response({"Item": {"pk": {"S": "a"}}})


class CountingProvider(CredentialProvider):  # type: ignore[misc]
    """Hands out new static credentials each time the chain runs (as a rotated file would)."""

    METHOD = "adyn-test-counting"

    def __init__(self) -> None:
        self.loads = 0

    async def load(self) -> AioCredentials:
        self.loads += 1
        return AioCredentials(
            f"AKIDFRESH{self.loads}",
            f"secret-{self.loads}",
            f"token-{self.loads}",
            method=self.METHOD,
        )


class ShortLivedProvider(CredentialProvider):  # type: ignore[misc]
    """Refreshable credentials that live `lifetime` seconds; every refresh gives a new key."""

    METHOD = "adyn-test-short-lived"

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.issued: dict[str, float] = {}  # key id -> expiry (epoch seconds)

    def _metadata(self) -> dict[str, str]:
        key = f"AKIDSHORT{len(self.issued) + 1}"
        expiry = time.time() + self.lifetime
        self.issued[key] = expiry
        when = datetime.datetime.fromtimestamp(expiry, datetime.UTC)
        return {
            "access_key": key,
            "secret_key": f"secret-{key}",
            "token": f"token-{key}",
            "expiry_time": when.isoformat(),
        }

    async def _refresh(self) -> dict[str, str]:
        return self._metadata()

    async def load(self) -> AioRefreshableCredentials:
        return AioRefreshableCredentials.create_from_metadata(
            self._metadata(), refresh_using=self._refresh, method=self.METHOD
        )


def session_with(provider: CredentialProvider) -> AioSession:
    session = AioSession()
    session.get_component("credential_provider").insert_before("env", provider)
    return session


async def test_expired_token_reloads_credentials_before_raising(aws_env: Path) -> None:
    recorder = KeyRecorder(expired_first=1)
    provider = CountingProvider()
    async with (
        stub_server(recorder.handler) as url,
        HTTPTransport(endpoint_url=url, session=session_with(provider)) as transport,
    ):
        with pytest.raises(ExpiredTokenError) as caught:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
        assert caught.value.status == 400
        assert adyn_errors.retry_of(caught.value) is adyn_errors.Retry.REJECTED
        # What the engine does next: send the call again.
        answer = await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert answer["Item"] == {"pk": {"S": "a"}}
    assert recorder.calls == [
        ("AKIDFRESH1", recorder.calls[0][1], "token-1"),
        ("AKIDFRESH2", recorder.calls[1][1], "token-2"),
    ]


async def test_many_calls_failing_with_one_expired_token_reload_once(aws_env: Path) -> None:
    recorder = KeyRecorder(expired_first=8)
    provider = CountingProvider()
    async with (
        stub_server(recorder.handler) as url,
        HTTPTransport(endpoint_url=url, session=session_with(provider)) as transport,
    ):

        async def expect_expired() -> None:
            with pytest.raises(ExpiredTokenError):
                await transport.call("dynamodb", "GetItem", GET, idempotent=True)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(expect_expired)
        await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert provider.loads == 2  # once at open, once for the eight expired answers
    assert recorder.calls[-1][0] == "AKIDFRESH2"


async def test_credentials_expiring_mid_run_are_refreshed_before_they_expire(
    aws_env: Path,
) -> None:
    recorder = KeyRecorder()
    provider = ShortLivedProvider(lifetime=3.0)
    async with (
        stub_server(recorder.handler) as url,
        HTTPTransport(endpoint_url=url, session=session_with(provider)) as transport,
    ):
        with anyio.fail_after(60, shield=False):
            while len({key for key, _, _ in recorder.calls}) < 3:
                await transport.call("dynamodb", "GetItem", GET, idempotent=True)
                await anyio.sleep(0.05)
    keys_in_order = list(dict.fromkeys(key for key, _, _ in recorder.calls))
    # Each refresh brings the next key, and no older key comes back once a newer one is in use.
    issued = list(provider.issued)
    assert keys_in_order == sorted(keys_in_order, key=issued.index)
    assert [key for key, _, _ in recorder.calls] == sorted(
        (key for key, _, _ in recorder.calls), key=issued.index
    )
    for key, signed_at, token in recorder.calls:
        assert token == f"token-{key}"
        moment = datetime.datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ")
        signed = moment.replace(tzinfo=datetime.UTC).timestamp()
        assert signed < provider.issued[key], f"{key} was used after it expired"


class SyncShortLivedProvider(ShortLivedProvider):
    """The same credentials from botocore's own (synchronous) chain: the default session's."""

    METHOD = "adyn-test-short-lived-sync"

    def load(self) -> Any:  # type: ignore[override]
        from botocore.credentials import RefreshableCredentials

        return RefreshableCredentials.create_from_metadata(
            self._metadata(), refresh_using=self._metadata, method=self.METHOD
        )


async def test_botocore_session_credentials_are_refreshed_in_a_worker_thread(
    aws_env: Path,
) -> None:
    import botocore.session

    provider = SyncShortLivedProvider(lifetime=2.0)
    session = botocore.session.get_session()
    session.get_component("credential_provider").insert_before("env", provider)
    recorder = KeyRecorder()
    async with (
        stub_server(recorder.handler) as url,
        HTTPTransport(endpoint_url=url, session=session) as transport,  # type: ignore[arg-type]
    ):
        with anyio.fail_after(60, shield=False):
            while len({key for key, _, _ in recorder.calls}) < 2:
                await transport.call("dynamodb", "GetItem", GET, idempotent=True)
                await anyio.sleep(0.05)
    for key, _, token in recorder.calls:
        assert token == f"token-{key}"


def test_partial_static_keys_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="both"):
        HTTPTransport(endpoint_url="http://localhost:8000", aws_access_key_id="AKID")
    with pytest.raises(InvalidArgument, match="aws_session_token"):
        HTTPTransport(endpoint_url="http://localhost:8000", aws_session_token="token")


async def test_explicit_keys_win_over_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    recorder = KeyRecorder()
    async with stub_server(recorder.handler) as url:
        for keys in ({}, KEYS):
            async with HTTPTransport(endpoint_url=url, **keys) as transport:
                await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert [key for key, _, _ in recorder.calls] == ["AKIDFROMENV", "AKIDSTUBTEST"]


def test_reprs_never_show_credentials() -> None:
    transport = HTTPTransport(
        endpoint_url="http://localhost:8000",
        aws_access_key_id="AKIAREPRCHECK",
        aws_secret_access_key="repr-secret-check",
        aws_session_token="repr-token-check",
    )
    shown = repr(transport) + str(transport)
    assert "localhost:8000" in shown
    for secret in ("AKIAREPRCHECK", "repr-secret-check", "repr-token-check"):
        assert secret not in shown


# ------------------------------------------------------------------ logging


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record) + repr(record.args) + repr(record.__dict__))


@pytest.fixture
def every_log_record() -> Iterator[Capture]:
    """Every logger at DEBUG, every record captured by a handler on the root logger."""
    capture = Capture()
    root = logging.getLogger()
    saved = {
        name: (logger.level, logger.propagate, logger.disabled)
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    logging.disable(logging.NOTSET)

    def open_up() -> None:
        for logger in logging.root.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.setLevel(logging.DEBUG)
                logger.propagate = True
                logger.disabled = False

    open_up()
    capture.open_up = open_up  # type: ignore[attr-defined]
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(root_level)
        for name, (level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


def assert_nowhere(texts: list[str], secrets: list[str]) -> None:
    assert texts, "nothing was logged: the capture is broken"
    for secret in secrets:
        leaks = [text for text in texts if secret in text]
        assert not leaks, f"{secret!r} reached a log record: {leaks[0][:300]}"


async def test_no_credential_reaches_any_log_record(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, backend: str, every_log_record: Capture
) -> None:
    secrets = ["AKIALOGCHECK7", "log-secret-check-7", "log-token-check-7"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", secrets[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets[1])
    monkeypatch.setenv("AWS_SESSION_TOKEN", secrets[2])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    recorder = KeyRecorder(expired_first=1)
    name = f"logs-{uuid.uuid4().hex[:10]}"
    async with HTTPTransport(endpoint_url=backend) as transport:
        every_log_record.open_up()  # type: ignore[attr-defined]
        await create_table(transport, name)
        await transport.call(
            "dynamodb", "PutItem", {"TableName": name, "Item": {"pk": {"S": "a"}}}, idempotent=False
        )
        await transport.call(
            "dynamodb", "GetItem", {"TableName": name, "Key": {"pk": {"S": "a"}}}, idempotent=True
        )
        with pytest.raises(ResourceNotFoundError) as missing:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
        logging.getLogger("adyn.test").exception("a user logs the error", exc_info=missing.value)
    async with stub_server(recorder.handler) as url, HTTPTransport(endpoint_url=url) as transport:
        with pytest.raises(ExpiredTokenError) as expired:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
        logging.getLogger("adyn.test").error("expired: %r", expired.value, exc_info=expired.value)
    with pytest.raises(DynamoError) as refused:
        async with HTTPTransport(endpoint_url=f"http://127.0.0.1:{free_port()}") as transport:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    logging.getLogger("adyn.test").error("refused: %r", refused.value, exc_info=refused.value)
    texts = [*every_log_record.texts, str(missing.value), str(expired.value), str(refused.value)]
    assert_nowhere(texts, secrets)
    assert recorder.calls[0][0] == secrets[0]  # those credentials were the ones in use


async def test_no_assumed_role_credential_reaches_any_log_record(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, every_log_record: Capture
) -> None:
    # A profile that assumes a role through STS (moto's): botocore logs signed STS requests and
    # STS's answer, the new credentials included, at DEBUG.
    source = ["AKIASOURCE0ROLE", "source-secret-check"]
    (aws_env / "credentials").write_text(
        f"[source]\naws_access_key_id = {source[0]}\naws_secret_access_key = {source[1]}\n"
    )
    (aws_env / "config").write_text(
        "[profile assumer]\nregion = us-east-1\n"
        "role_arn = arn:aws:iam::123456789012:role/adyn-log-check\nsource_profile = source\n"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_endpoint)
    session = AioSession(profile="assumer")
    async with HTTPTransport(endpoint_url=moto_endpoint, session=session) as transport:
        await transport.call("dynamodb", "ListTables", {}, idempotent=True)
        assumed = transport.credentials
    assert assumed is not None
    assert assumed.access_key != source[0]  # the role's credentials, from STS
    assert assumed.token
    assert_nowhere(
        every_log_record.texts,
        [*source, assumed.access_key, assumed.secret_key, assumed.token],
    )


# ------------------------------------------------------------------ endpoints and regions


async def resolved(**kwargs: Any) -> Any:
    return await resolve(AioSession(), **kwargs)


async def test_an_explicit_endpoint_serves_both_services_with_local_defaults(
    aws_env: Path,
) -> None:
    resolution = await resolved(endpoint_url="http://localhost:8000")
    assert dict(resolution.endpoints) == {
        "dynamodb": "http://localhost:8000",
        "dynamodbstreams": "http://localhost:8000",
    }
    assert resolution.region == "us-east-1"
    assert resolution.credentials.method == "placeholder"


async def test_endpoints_from_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    resolution = await resolved()
    assert set(resolution.endpoints.values()) == {"http://127.0.0.1:4566"}
    assert resolution.region == "us-east-1"  # loopback and no region
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://127.0.0.1:8001")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    resolution = await resolved()
    assert dict(resolution.endpoints) == {
        "dynamodb": "http://127.0.0.1:8000",
        "dynamodbstreams": "http://127.0.0.1:8001",
    }
    assert resolution.region == "eu-central-1"
    # An explicit endpoint wins over the environment.
    resolution = await resolved(endpoint_url="http://localhost:9000")
    assert set(resolution.endpoints.values()) == {"http://localhost:9000"}


async def test_endpoints_from_the_config_files_services_section(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (aws_env / "config").write_text(
        "[profile dev]\nregion = ap-southeast-2\nservices = local-dynamo\n"
        "[services local-dynamo]\ndynamodb =\n  endpoint_url = http://localhost:8123\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "dev")
    resolution = await resolved()
    assert resolution.endpoints["dynamodb"] == "http://localhost:8123"
    assert resolution.endpoints["dynamodbstreams"] == (
        "https://streams.dynamodb.ap-southeast-2.amazonaws.com"
    )
    assert resolution.region == "ap-southeast-2"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDREMOTE")  # the endpoint is remote now
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "remote-secret")
    resolution = await resolved()
    assert resolution.endpoints["dynamodb"] == "https://dynamodb.ap-southeast-2.amazonaws.com"


@pytest.mark.parametrize(
    ("region", "dynamodb", "streams"),
    [
        (
            "eu-west-1",
            "https://dynamodb.eu-west-1.amazonaws.com",
            "https://streams.dynamodb.eu-west-1.amazonaws.com",
        ),
        (
            "cn-north-1",
            "https://dynamodb.cn-north-1.amazonaws.com.cn",
            "https://streams.dynamodb.cn-north-1.amazonaws.com.cn",
        ),
        (
            "us-gov-west-1",
            "https://dynamodb.us-gov-west-1.amazonaws.com",
            "https://streams.dynamodb.us-gov-west-1.amazonaws.com",
        ),
    ],
)
async def test_regional_endpoints_use_the_partitions_dns_suffix(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, region: str, dynamodb: str, streams: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDREGIONAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "regional-secret")
    resolution = await resolved(region_name=region)
    assert dict(resolution.endpoints) == {"dynamodb": dynamodb, "dynamodbstreams": streams}
    assert resolution.credentials.credentials.access_key == "AKIDREGIONAL"


def test_dns_suffix_of_a_region_no_partition_lists() -> None:
    from botocore.loaders import create_loader

    partitions = create_loader().load_data("partitions")
    assert dns_suffix("cn-southwest-9", partitions) == "amazonaws.com.cn"
    assert dns_suffix("eu-north-7", partitions) == "amazonaws.com"


async def test_no_region_for_a_remote_endpoint_says_how_to_set_one(aws_env: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"region_name=.*AWS_DEFAULT_REGION"):
        await resolved()
    with pytest.raises(InvalidArgument, match="region"):
        await resolved(endpoint_url="https://dynamodb.example.com")
    with pytest.raises(InvalidArgument, match="not an AWS region"):
        await resolved(region_name="eu west 1")


async def test_no_credentials_for_a_remote_endpoint_says_how_to_set_them(aws_env: Path) -> None:
    with pytest.raises(InvalidArgument, match="AWS_ACCESS_KEY_ID"):
        await resolved(region_name="eu-west-1")


@pytest.mark.parametrize(
    "url",
    [
        "localhost:8000",
        "ftp://localhost:8000",
        "http://",
        "http://:8000",
        "http://localhost:99999",
        "http://local host:8000",
        "http://localhost:8000/?debug=1",
        "//localhost:8000",
        "",
        42,
        None,
    ],
)
def test_bad_endpoint_urls_are_invalid_arguments(url: Any) -> None:
    with pytest.raises(InvalidArgument, match="endpoint_url"):
        validate_endpoint_url(url)
    if url is not None:  # None is the default: resolve the endpoint from the environment
        with pytest.raises(InvalidArgument, match="endpoint_url"):
            HTTPTransport(endpoint_url=url)


def test_an_endpoint_with_user_info_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_endpoint_url("http://user:hunter2@localhost:8000")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000",
        "https://dynamodb.eu-west-1.amazonaws.com",
        "http://[::1]:8000",
        "HTTP://LOCALHOST:8000/",
        "http://dynamodb_local:8000",
    ],
)
def test_good_endpoint_urls_pass(url: str) -> None:
    assert validate_endpoint_url(url) == url


async def test_a_bad_configured_endpoint_names_its_source(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "localhost:8000")
    with pytest.raises(InvalidArgument, match="configured dynamodb endpoint"):
        await resolved()


def test_loopback_detection() -> None:
    for url in ("http://localhost:1", "http://127.0.0.5:1", "http://[::1]:1", "http://a.localhost"):
        assert is_loopback(url), url
    for url in ("http://10.0.0.1", "https://dynamodb.us-east-1.amazonaws.com", None, ""):
        assert not is_loopback(url), url
