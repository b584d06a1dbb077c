"""`FakeStreams.serve()`: DynamoDB's HTTP protocol in front of a fake, for other processes.

An aiohttp server on a free loopback port answers POSTs the way DynamoDB does (`X-Amz-Target:
DynamoDB_20120810.<Operation>` or `DynamoDBStreams_20120810.<Operation>`, JSON in and out,
errors as `{"__type": ..., "message": ...}` with status 400 or 500), so an engine in another
process (`Engine(endpoint_url=url)`) reads the fake's streams. Signatures are not checked.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ..errors import DynamoError

if TYPE_CHECKING:
    from .fakes import FakeStreams

__all__ = ["serve"]

_SERVICES = {"DynamoDB_20120810": "dynamodb", "DynamoDBStreams_20120810": "dynamodbstreams"}
_JSON = "application/x-amz-json-1.0"


@asynccontextmanager
async def serve(fake: FakeStreams, host: str = "127.0.0.1") -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        prefix, _, operation = target.partition(".")
        service = _SERVICES.get(prefix)
        if service is None or not operation:
            return _error(400, "UnknownOperationException", f"unknown target {target!r}", {})
        body = await request.read()
        try:
            payload: dict[str, Any] = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return _error(400, "SerializationException", "the body is not JSON", {})
        try:
            response = await fake.call(service, operation, payload, idempotent=False)
        except DynamoError as exc:
            status = exc.status or (500 if exc.code in ("InternalServerError",) else 400)
            return _error(status, exc.code, exc.message, exc.response)
        return web.Response(body=orjson.dumps(response), content_type=_JSON)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _error(status: int, code: str, message: str, extra: dict[str, Any]) -> web.Response:
    body = {**extra, "__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON)
