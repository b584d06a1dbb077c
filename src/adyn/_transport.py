"""The interim default transport: aiobotocore's signer and HTTP session, one attempt a call.

It implements `adyn.Transport` (see transport.py): DynamoDB's JSON in and out, written and read
with orjson, the CRC32 DynamoDB sends verified, every failure raised as a `DynamoError` whose code
the error map of errors.py classifies. Retries, limits and events are the engine's (`_calls.py`).
"""

from __future__ import annotations

import gc
import ipaddress
import socket
import zlib
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import orjson
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from .errors import (
    CONNECT_TIMEOUT,
    CONNECTION_FAILED,
    CONNECTION_LOST,
    CRC32_CHECK_FAILED,
    MALFORMED_RESPONSE,
    READ_TIMEOUT,
    DynamoError,
    EngineClosed,
    service_error,
)

__all__ = ["AioTransport", "is_loopback", "parse_body"]

Wire = dict[str, Any]

_TARGETS = {"dynamodb": "DynamoDB_20120810", "dynamodbstreams": "DynamoDBStreams_20120810"}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_LARGE_BODY = 64 * 1024


def parse_body(body: bytes) -> Wire:
    """Parse a response body; large ones with the garbage collector paused.

    A 1,000-item page is ~20,000 new dicts that all survive: the collector would walk them
    repeatedly while they are built (about as long as the parse itself, measured).
    """
    if len(body) < _LARGE_BODY or not gc.isenabled():
        result = orjson.loads(body)
    else:
        gc.disable()
        try:
            result = orjson.loads(body)
        finally:
            gc.enable()
    if not isinstance(result, dict):
        raise ValueError(f"a JSON {type(result).__name__}, not an object")
    return result


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_from_body(
    status: int, body: bytes, operation: str, request_id: str | None
) -> DynamoError:
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
    message = str(data.get("message") or data.get("Message") or "")
    return service_error(code, message, operation, data, status=status, request_id=request_id)


class AioTransport:
    """Sends one attempt of a call through aiobotocore's signer and HTTP session."""

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        session: AioSession | None = None,
        max_connections: int = 64,
        credentials: dict[str, str] | None = None,
        config: AioConfig | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self._timeouts = (connect_timeout, read_timeout)
        self._session = session or get_session()
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._credentials = dict(credentials or {})
        self._max_connections = max_connections
        self._user_config = config
        self._stack: AsyncExitStack | None = None
        self._clients: dict[str, Any] = {}
        self._kwargs: dict[str, Any] | None = None
        self._client_lock = anyio.Lock()
        self._closed = False

    def __repr__(self) -> str:  # never show credentials
        return f"<AioTransport endpoint={self._endpoint_url!r}>"

    async def open(self) -> None:
        if self._stack is not None:
            return
        self._stack = AsyncExitStack()
        await self._client("dynamodb")

    async def close(self) -> None:
        self._closed = True
        stack, self._stack = self._stack, None
        self._clients.clear()
        if stack is not None:
            await stack.aclose()

    def _warm_caches(self, service: str) -> None:
        """Read what botocore loads from disk (models, endpoint rules, config files).

        Runs in a worker thread: botocore reads these files synchronously, which would stall
        every other task of the event loop. Its loader caches them for `create_client`.
        """
        session: Any = self._session
        loader = session.get_component("data_loader")
        session.get_scoped_config()
        # The same call shape as botocore's: its loader caches by the exact arguments.
        loader.load_service_model(service, "service-2", api_version=None)
        loader.load_service_model(service, "endpoint-rule-set-1", api_version=None)
        loader.load_data("partitions")
        loader.load_data("sdk-default-configuration")
        loader.load_data("_retry")

    async def _client_kwargs(self) -> dict[str, Any]:
        """Client options, worked out once: the credential chain may read files from disk."""
        if self._kwargs is None:
            self._kwargs = await self._resolve_client_kwargs()
        return self._kwargs

    async def _resolve_client_kwargs(self) -> dict[str, Any]:
        config = AioConfig(
            max_pool_connections=self._max_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=self._timeouts[0],
            read_timeout=self._timeouts[1],
        )
        if self._user_config is not None:
            config = config.merge(self._user_config)
        kwargs: dict[str, Any] = {"config": config}
        region = self._region_name or self._session.get_config_variable("region")
        local = is_loopback(self._endpoint_url)
        if region is None and local:
            region = "us-east-1"
        if region is not None:
            kwargs["region_name"] = region
        if self._endpoint_url is not None:
            kwargs["endpoint_url"] = self._endpoint_url
        if self._credentials:
            kwargs.update(self._credentials)
        elif local and await self._session.get_credentials() is None:
            # An embedded or local server accepts any signature; spare users fake credentials.
            kwargs["aws_access_key_id"] = "adyn-local"
            kwargs["aws_secret_access_key"] = "adyn-local"
        return kwargs

    async def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._client_lock:
            client = self._clients.get(service)
            if client is None:
                if self._stack is None:
                    raise EngineClosed("the transport is not open")
                await anyio.to_thread.run_sync(self._warm_caches, service)
                kwargs = await self._client_kwargs()
                session: Any = self._session
                client = await self._stack.enter_async_context(
                    session.create_client(service, **kwargs)
                )
                self._clients[service] = client
        return client

    async def call(self, service: str, operation: str, request: Wire, *, idempotent: bool) -> Wire:
        client = await self._client(service)
        aws_request = AWSRequest(
            method="POST",
            url=client.meta.endpoint_url,
            data=orjson.dumps(request),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{_TARGETS[service]}.{operation}",
            },
        )
        aws_request.context = {"client_region": client.meta.region_name}
        await client._request_signer.sign(operation, aws_request)
        prepared = aws_request.prepare()
        try:
            response = await client._endpoint.http_session.send(prepared)
            body: bytes = await response.content
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            code = CONNECT_TIMEOUT if isinstance(exc, ConnectTimeoutError) else CONNECTION_FAILED
            if not _never_sent(exc):
                code = CONNECTION_LOST
            raise service_error(code, str(exc), operation) from exc
        except ReadTimeoutError as exc:
            raise service_error(READ_TIMEOUT, str(exc), operation) from exc
        except (ConnectionClosedError, HTTPClientError) as exc:
            raise service_error(CONNECTION_LOST, str(exc), operation) from exc
        status = response.status_code
        request_id = response.headers.get("x-amzn-requestid")
        expected_crc = response.headers.get("x-amz-crc32")
        if expected_crc is not None and (
            not expected_crc.isdigit() or zlib.crc32(body) != int(expected_crc)
        ):
            raise service_error(
                CRC32_CHECK_FAILED,
                f"response body failed its CRC32 check (header {expected_crc[:20]!r})",
                operation,
                status=status,
                request_id=request_id,
            )
        if status >= 300:
            raise _error_from_body(status, body, operation, request_id)
        try:
            result = parse_body(body)
        except ValueError as exc:
            raise service_error(
                MALFORMED_RESPONSE,
                f"the answer is not DynamoDB's JSON: {exc}",
                operation,
                status=status,
                request_id=request_id,
            ) from None
        if request_id:
            result["ResponseMetadata"] = {"RequestId": request_id}
        return result


def _never_sent(exc: Exception) -> bool:
    """Did this connection failure happen before any byte of the request left?

    aiobotocore raises EndpointConnectionError for a refused connection, but also for a
    connection reset while the request was being sent or the response awaited.
    """
    if isinstance(exc, ConnectTimeoutError):
        return True
    cause = getattr(exc, "kwargs", {}).get("error")
    return isinstance(cause, aiohttp.ClientConnectorError | socket.gaierror)
