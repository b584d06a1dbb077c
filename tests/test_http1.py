"""adyn's own keep-alive HTTP/1.1 client (`_http1`) as the transport uses it.

Through `HTTPTransport` against small servers written here: every way an answer can be framed
(Content-Length, chunked, to the end of the connection, interim 1xx), when a connection is kept
and when it is not, the pool's bound, TLS with a CA bundle, the proxy path, and refusals
before anything is sent. The parser itself is checked with hypothesis over every way the bytes
of an answer can be split into reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _loopback import always, serving
from adyn import DynamoError, InvalidArgument
from adyn import _http as http_module
from adyn._http import HTTPTransport
from adyn._http1 import Malformed, Response, _Connection
from adyn.errors import CONNECTION_FAILED, MALFORMED_RESPONSE

GET = {"TableName": "adyn-missing-table", "Key": {"pk": {"S": "a"}}}
KEYS = {"aws_access_key_id": "AKIDSTUBTEST", "aws_secret_access_key": "stub-secret"}
BODY = orjson.dumps({"Item": {"pk": {"S": "a"}}})


def answer(body: bytes = BODY, *, extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return (
        version + b" 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
        b"x-amzn-RequestId: R1\r\nx-amz-crc32: %d\r\nContent-Length: %d\r\n%s\r\n%s"
        % (zlib.crc32(body), len(body), extra, body)
    )


def chunked(body: bytes = BODY, pieces: int = 3) -> bytes:
    size = max(1, len(body) // pieces)
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-amzn-RequestId: R2\r\n"
        b"x-amz-crc32: %d\r\n\r\n%s0\r\nX-Trailer: t\r\n\r\n" % (zlib.crc32(body), framed)
    )


async def get_twice(url: str, **options: Any) -> list[dict[str, Any]]:
    async with HTTPTransport(endpoint_url=url, **KEYS, **options) as transport:
        return [await transport.call("dynamodb", "GetItem", GET, idempotent=True) for _ in "ab"]


# ------------------------------------------------------------------ framing and keep-alive


async def test_answers_by_content_length_share_one_connection() -> None:
    async with serving(always(answer())) as (server, port):
        answers = await get_twice(f"http://127.0.0.1:{port}")
    assert [a["Item"] for a in answers] == [{"pk": {"S": "a"}}] * 2
    assert answers[0]["ResponseMetadata"] == {"RequestId": "R1"}
    assert server.connections == 1


async def test_chunked_answers_with_extensions_and_trailers() -> None:
    async with serving(always(chunked())) as (server, port):
        answers = await get_twice(f"http://127.0.0.1:{port}")
    assert [a["Item"] for a in answers] == [{"pk": {"S": "a"}}] * 2
    assert answers[1]["ResponseMetadata"] == {"RequestId": "R2"}
    assert server.connections == 1


async def test_an_answer_read_to_the_end_of_the_connection_is_not_reused() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nx-amzn-RequestId: R3\r\n\r\n" + BODY)
        await writer.drain()
        writer.close()  # the end of the body

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = listener.sockets[0].getsockname()[1]
        answers = await get_twice(f"http://127.0.0.1:{port}")
    finally:
        listener.close()
    assert [a["Item"] for a in answers] == [{"pk": {"S": "a"}}] * 2
    assert connections == 2


@pytest.mark.parametrize(
    "data",
    [
        answer(extra=b"Connection: close\r\n"),
        answer(version=b"HTTP/1.0"),
        answer() + b"HTTP/1.1 200 OK\r\n",  # bytes nobody asked for
    ],
    ids=["connection-close", "http-1.0", "trailing-bytes"],
)
async def test_connections_that_cannot_be_kept_are_not_reused(data: bytes) -> None:
    async with serving(always(data)) as (server, port):
        answers = await get_twice(f"http://127.0.0.1:{port}")
    assert [a["Item"] for a in answers] == [{"pk": {"S": "a"}}] * 2
    assert server.connections == 2


async def test_an_interim_answer_is_skipped() -> None:
    async with serving(always(b"HTTP/1.1 100 Continue\r\n\r\n" + answer())) as (_server, port):
        answers = await get_twice(f"http://127.0.0.1:{port}")
    assert [a["Item"] for a in answers] == [{"pk": {"S": "a"}}] * 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    closing: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(len(orjson.dumps(GET)))
        writer.write(answer())
        await writer.drain()
        closing.append(writer)
        writer.close()  # after the answer, while the client holds the connection idle

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = listener.sockets[0].getsockname()[1]
        async with HTTPTransport(endpoint_url=f"http://127.0.0.1:{port}", **KEYS) as transport:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
            await asyncio.sleep(0.05)  # the close reaches the client
            second = await transport.call("dynamodb", "PutItem", GET, idempotent=False)
    finally:
        listener.close()
    assert second["Item"] == {"pk": {"S": "a"}}
    assert len(closing) == 2


async def test_an_idle_connection_older_than_the_keepalive_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_module, "KEEPALIVE_TIMEOUT", 0.05)
    async with serving(always(answer())) as (server, port):
        url = f"http://127.0.0.1:{port}"
        async with HTTPTransport(endpoint_url=url, **KEYS) as transport:
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
            await asyncio.sleep(0.1)
            await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert server.connections == 2


async def test_the_pool_opens_at_most_max_connections() -> None:
    async def slow(n: int) -> bytes | None:
        await asyncio.sleep(0.02)
        return answer()

    async with (
        serving(slow) as (server, port),
        HTTPTransport(
            endpoint_url=f"http://127.0.0.1:{port}", max_connections=3, **KEYS
        ) as transport,
    ):
        answers = await asyncio.gather(
            *(transport.call("dynamodb", "GetItem", GET, idempotent=True) for _ in range(20))
        )
    assert len(answers) == 20
    assert server.most_open <= 3
    assert server.connections == 3


# ------------------------------------------------------------------ refusals and bad answers


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
    ],
    ids=["huge-head", "bad-chunk", "unknown-coding", "bad-length", "folded", "http2"],
)
async def test_answers_that_are_not_http_1_are_malformed(data: bytes) -> None:
    async with serving(always(data)) as (_server, port):
        url = f"http://127.0.0.1:{port}"
        async with HTTPTransport(endpoint_url=url, **KEYS) as transport:
            with pytest.raises(DynamoError) as caught:
                await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert caught.value.code == MALFORMED_RESPONSE


@pytest.mark.parametrize(
    ("operation", "why"),
    [("GetItem\r\nX-Injected: 1", "line break"), ("Get\u20acItem", "cannot carry")],
)
async def test_a_header_http_cannot_carry_is_refused_before_sending(
    operation: str, why: str
) -> None:
    async with serving(always(answer())) as (server, port):
        url = f"http://127.0.0.1:{port}"
        async with HTTPTransport(endpoint_url=url, **KEYS) as transport:
            with pytest.raises(InvalidArgument, match=why):
                await transport.call("dynamodb", operation, GET, idempotent=True)
    assert server.requests == []


# ------------------------------------------------------------------ TLS and proxies


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_with_the_configured_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    async with serving(always(answer()), context) as (server, port):
        url = f"https://127.0.0.1:{port}"
        monkeypatch.setenv("AWS_CA_BUNDLE", str(cert_file))
        answers = await get_twice(url)
        assert [a["Item"] for a in answers] == [{"pk": {"S": "a"}}] * 2
        assert server.connections == 1
        monkeypatch.delenv("AWS_CA_BUNDLE")  # botocore's own bundle does not know this one
        async with HTTPTransport(endpoint_url=url, **KEYS) as transport:
            with pytest.raises(DynamoError) as caught:
                await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert caught.value.code == CONNECTION_FAILED  # nothing was sent
    assert len(server.requests) == 2


async def test_calls_go_through_a_configured_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(always(answer())) as (proxy, port):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with HTTPTransport(
            endpoint_url="http://dynamodb.adyn-test.invalid", region_name="eu-west-1", **KEYS
        ) as transport:
            found = await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert found["Item"] == {"pk": {"S": "a"}}
    assert proxy.requests[0][0].startswith(b"POST http://dynamodb.adyn-test.invalid")


# ------------------------------------------------------------------ the parser, any split


class _Sink(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def _splits(data: bytes) -> st.SearchStrategy[list[bytes]]:
    cuts = st.lists(st.integers(0, len(data)), max_size=12).map(sorted)
    # asyncio never hands a protocol an empty read
    return cuts.map(
        lambda c: [data[a:b] for a, b in zip([0, *c], [*c, len(data)], strict=True) if b > a]
    )


def _frames() -> st.SearchStrategy[tuple[bytes, bytes, bool]]:
    """(an answer's bytes, its body, whether the connection may be kept)."""
    bodies = st.binary(max_size=300)
    by_length = bodies.map(lambda b: (answer(b), b, True))
    by_chunks = st.tuples(bodies, st.integers(1, 5)).map(lambda t: (chunked(*t), t[0], True))
    closing = bodies.map(lambda b: (answer(b, extra=b"Connection: close\r\n"), b, False))
    return st.one_of(by_length, by_chunks, closing)


@settings(max_examples=150, deadline=None)
@given(frame=_frames(), data=st.data())
def test_any_split_of_an_answer_parses_to_the_same_response(
    frame: tuple[bytes, bytes, bool], data: st.DataObject
) -> None:
    raw, body, keep = frame
    pieces = data.draw(_splits(raw))

    async def run() -> Response:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, read_timeout=5.0)
        sink = _Sink()
        conn.connection_made(sink)
        pending = asyncio.ensure_future(conn.request(b"GET"))
        await asyncio.sleep(0)
        for piece in pieces:
            conn.data_received(piece)
        response = await pending
        assert sink.aborted is (not keep)
        return response

    response = asyncio.run(run())
    assert response.status == 200
    assert response.body == body
    assert response.headers["x-amz-crc32"] == str(zlib.crc32(body))


def test_a_malformed_head_is_reported_as_such() -> None:
    async def run() -> None:
        conn = _Connection(asyncio.get_running_loop(), read_timeout=5.0)
        conn.connection_made(_Sink())
        pending = asyncio.ensure_future(conn.request(b"GET"))
        await asyncio.sleep(0)
        conn.data_received(b"HTTP/1.1 abc\r\n\r\n")
        with pytest.raises(Malformed):
            await pending

    asyncio.run(run())
