"""The request head `HTTPTransport` writes itself: what the signer signed, and nothing HTTP
cannot carry (checked once per operation and per credentials, before anything is sent)."""

from __future__ import annotations

import time
import zlib

import orjson
import pytest

from _loopback import always, serving
from adyn import InvalidArgument
from adyn._http import HTTPTransport
from adyn._sigv4 import Credentials, Signer

GET = {"TableName": "t", "Key": {"pk": {"S": "a"}}}
BODY = orjson.dumps({"Item": {"pk": {"S": "a"}}})
ANSWER = (
    b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: R1\r\nx-amz-crc32: %d\r\nContent-Length: %d\r\n\r\n%s"
    % (zlib.crc32(BODY), len(BODY), BODY)
)


def headers_of(head: bytes) -> tuple[str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
    pairs = [line.split(": ", 1) for line in lines]
    assert len({name.lower() for name, _ in pairs}) == len(pairs)  # no header twice
    return request_line, dict(pairs)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE token"])
async def test_the_head_sent_is_the_one_the_signer_signs(token: str | None) -> None:
    async with (
        serving(always(ANSWER)) as (server, port),
        HTTPTransport(
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="eu-west-1",
            aws_access_key_id="AKIDHEAD",
            aws_secret_access_key="secret",
            aws_session_token=token,
        ) as transport,
    ):
        for operation in ("GetItem", "Query", "GetItem"):
            answer = await transport.call("dynamodb", operation, GET, idempotent=True)
            assert answer["ResponseMetadata"] == {"RequestId": "R1"}
    requests = server.requests
    assert len(requests) == 3
    host = f"127.0.0.1:{port}"
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
    async with serving(always(ANSWER)) as (server, port):
        url = f"http://127.0.0.1:{port}"
        transport = HTTPTransport(endpoint_url=url, region_name="eu-west-1", **arguments)
        async with transport:
            for _ in range(2):  # refused every time, not only the first
                with pytest.raises(InvalidArgument, match=why):
                    await transport.call("dynamodb", "GetItem", GET, idempotent=True)
    assert server.requests == []
