"""The request head `HTTPTransport` writes itself: what the signer signed, and nothing HTTP
cannot carry (checked once per operation and per credentials, before anything is sent)."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest

from adyn import InvalidArgument
from adyn._http import HTTPTransport
from adyn._sigv4 import Credentials, Signer

GET = {"TableName": "t", "Key": {"pk": {"S": "a"}}}
BODY = orjson.dumps({"Item": {"pk": {"S": "a"}}})
ANSWER = (
    b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: R1\r\nx-amz-crc32: %d\r\nContent-Length: %d\r\n\r\n%s"
    % (zlib.crc32(BODY), len(BODY), BODY)
)


@asynccontextmanager
async def recording() -> AsyncIterator[tuple[list[tuple[bytes, bytes]], str]]:
    """A loopback server answering every request at once; it records (head, body) of each."""
    requests: list[tuple[bytes, bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.partition(b":")[2])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                requests.append((head, await reader.readexactly(length)))
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield requests, f"http://127.0.0.1:{port}"


def headers_of(head: bytes) -> tuple[str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
    pairs = [line.split(": ", 1) for line in lines]
    assert len({name.lower() for name, _ in pairs}) == len(pairs)  # no header twice
    return request_line, dict(pairs)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE token"])
async def test_the_head_sent_is_the_one_the_signer_signs(token: str | None) -> None:
    async with (
        recording() as (requests, url),
        HTTPTransport(
            endpoint_url=url,
            region_name="eu-west-1",
            aws_access_key_id="AKIDHEAD",
            aws_secret_access_key="secret",
            aws_session_token=token,
        ) as transport,
    ):
        for operation in ("GetItem", "Query", "GetItem"):
            answer = await transport.call("dynamodb", operation, GET, idempotent=True)
            assert answer["ResponseMetadata"] == {"RequestId": "R1"}
    assert len(requests) == 3
    host = url.removeprefix("http://")
    signer = Signer(
        host=host,
        region="eu-west-1",
        service="dynamodb",
        headers={"Content-Type": "application/x-amz-json-1.0"},
        target_prefix="DynamoDB_20120810",
    )
    credentials = Credentials("AKIDHEAD", "secret", token)
    for (head, body), operation in zip(requests, ("GetItem", "Query", "GetItem"), strict=True):
        request_line, sent = headers_of(head)
        assert request_line == "POST / HTTP/1.1"
        assert body == orjson.dumps(GET)
        assert sent["Content-Length"] == str(len(body))
        assert sent["X-Amz-Target"] == f"DynamoDB_20120810.{operation}"
        assert sent.get("X-Amz-Security-Token") == token
        moment = time.mktime(time.strptime(sent["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
        expected = signer.sign(credentials, body, operation, moment)
        assert sent["Authorization"] == expected["Authorization"]
        assert sent["Host"] == host


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ({"aws_session_token": "token\r\nX-Injected: 1"}, "line break"),
        ({"aws_session_token": "token\nmore"}, "line break"),
        ({"aws_access_key_id": "AKID\u20ac"}, "cannot carry"),
    ],
)
async def test_credentials_http_cannot_carry_are_refused_before_sending(
    keys: dict[str, str], why: str
) -> None:
    arguments = {"aws_access_key_id": "AKIDHEAD", "aws_secret_access_key": "secret", **keys}
    async with recording() as (requests, url):
        transport = HTTPTransport(endpoint_url=url, region_name="eu-west-1", **arguments)
        async with transport:
            for _ in range(2):  # refused every time, not only the first
                with pytest.raises(InvalidArgument, match=why):
                    await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert requests == []
