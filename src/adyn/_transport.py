"""The one seam that talks to aiobotocore.

Everything above this module deals in DynamoDB request and response dictionaries (wire JSON;
binary values may be `bytes` or base64 `str`, numbers are strings). This module owns:

- the aiobotocore clients (one `dynamodb` client per engine, a `dynamodbstreams` client created on
  first use), with a connection pool sized for the engine's concurrency;
- the *fast path*: data-plane calls are written as JSON by us, signed by aiobotocore's signer, sent
  through aiobotocore's HTTP session, and their body is read once and parsed with orjson. The
  CRC32 that DynamoDB sends is verified. botocore's request serialisation, parameter validation
  and response parsing (the largest client-side cost of a call) are skipped;
- the *slow path*: the plain aiobotocore client method, used for the control plane and whenever
  the fast path is switched off;
- retries with exponential backoff and full jitter (botocore's own retries are off so that adyn
  can tell a safe retry from an unsafe one), and the mapping of every failure to an adyn error.
"""

from __future__ import annotations

import base64
import gc
import ipaddress
import logging
import random
import socket
import zlib
from collections.abc import Awaitable, Callable
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
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from .errors import DynamoError, EngineClosed, OutcomeUnknown, Throttled
from .retry import RetryPolicy

__all__ = ["RetryPolicy", "Transport"]

log = logging.getLogger("adyn.transport")

Wire = dict[str, Any]

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "TooManyRequestsException",
    }
)
# Rejected before anything happened: always safe to send again.
TRANSIENT_REJECTIONS = THROTTLING_CODES | {"TransactionInProgressException"}
# The server failed while handling the request: safe to resend only if the call is idempotent.
SERVER_FAULT_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "InternalFailure"})

DATA_PLANE = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
        "DescribeStream",
        "GetShardIterator",
        "GetRecords",
        "ListStreams",
    }
)

_TARGETS = {"dynamodb": "DynamoDB_20120810", "dynamodbstreams": "DynamoDBStreams_20120810"}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class _Fault(Exception):
    """One failed attempt, classified: may it be sent again, and was it throttling?"""

    def __init__(self, error: DynamoError, *, rejected: bool, throttled: bool) -> None:
        self.error = error
        self.rejected = rejected  # True: the server did nothing (safe to resend any call)
        self.throttled = throttled


def _b64_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as DynamoDB JSON")


def dumps(request: Wire) -> bytes:
    """Serialise a wire request to DynamoDB JSON (bytes become base64 exactly once)."""
    return orjson.dumps(request, default=_b64_default)


_LARGE_BODY = 64 * 1024


def parse_body(body: bytes) -> Wire:
    """Parse a response body; large ones with the garbage collector paused.

    A 1,000-item page is ~20,000 new dicts that all survive: the collector would walk them
    repeatedly while they are built (about as long as the parse itself, measured).
    """
    if len(body) < _LARGE_BODY or not gc.isenabled():
        result: Wire = orjson.loads(body)
        return result
    gc.disable()
    try:
        result = orjson.loads(body)
    finally:
        gc.enable()
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


def _error_from_body(status: int, body: bytes, operation: str) -> tuple[DynamoError, Wire]:
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
    message = str(data.get("message") or data.get("Message") or "")
    return DynamoError(code, message, operation), data


class Transport:
    """Owns aiobotocore clients and sends one DynamoDB call at a time, with retries.

    Thread through `call` (DynamoDB) and `streams` (DynamoDB Streams). Both return the
    response as a dict and raise `DynamoError` (or a subclass) for every failure.
    """

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        session: AioSession | None = None,
        retry: RetryPolicy | None = None,
        fast_path: bool = True,
        max_connections: int = 64,
        credentials: dict[str, str] | None = None,
        config: AioConfig | None = None,
    ) -> None:
        self._session = session or get_session()
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._credentials = dict(credentials or {})
        self.retry = retry or RetryPolicy()
        self.fast_path = fast_path
        self._max_connections = max_connections
        self._user_config = config
        self._stack: AsyncExitStack | None = None
        self._clients: dict[str, Any] = {}
        self._kwargs: dict[str, Any] | None = None
        self._client_lock = anyio.Lock()
        self._closed = False
        self._rng = random.Random()
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    def __repr__(self) -> str:  # never show credentials
        return f"<Transport endpoint={self._endpoint_url!r} fast_path={self.fast_path}>"

    # ------------------------------------------------------------------ lifecycle

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

    @property
    def closed(self) -> bool:
        return self._closed

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
        if self._closed:
            raise EngineClosed("the engine is closed; open a new one with `async with Engine(...)`")
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._client_lock:
            client = self._clients.get(service)
            if client is None:
                if self._stack is None:
                    raise EngineClosed(
                        "the engine is not open; use `async with Engine(...) as engine`"
                    )
                await anyio.to_thread.run_sync(self._warm_caches, service)
                kwargs = await self._client_kwargs()
                session: Any = self._session
                client = await self._stack.enter_async_context(
                    session.create_client(service, **kwargs)
                )
                self._clients[service] = client
        return client

    # ------------------------------------------------------------------ calls

    async def call(self, operation: str, request: Wire, *, idempotent: bool = True) -> Wire:
        """Send one DynamoDB call (retrying what is safe to retry) and return the response."""
        return await self._with_retries("dynamodb", operation, request, idempotent)

    async def streams(self, operation: str, request: Wire) -> Wire:
        """Send one DynamoDB Streams call (every Streams call is a read: always retried)."""
        return await self._with_retries("dynamodbstreams", operation, request, True)

    async def _with_retries(
        self, service: str, operation: str, request: Wire, idempotent: bool
    ) -> Wire:
        client = await self._client(service)
        policy = self.retry
        attempt = 0
        while True:
            try:
                if self.fast_path and operation in DATA_PLANE:
                    return await self._send_fast(client, service, operation, request)
                return await self._send_slow(client, operation, request)
            except _Fault as fault:
                attempt += 1
                if not (fault.rejected or idempotent):
                    raise OutcomeUnknown(
                        fault.error.code,
                        f"{fault.error.message} (the write was sent and may have been applied;"
                        " adyn did not resend it because a second try could apply it twice)",
                        operation,
                    ) from fault.error
                if policy.max_attempts is not None and attempt >= policy.max_attempts:
                    raise Throttled(
                        fault.error.code,
                        f"{fault.error.message} (gave up after {attempt} attempts)",
                        operation,
                    ) from fault.error
                delay = policy.delay(attempt, self._rng)
                log.debug(
                    "%s failed with %s; retry %d in %.3fs",
                    operation,
                    fault.error.code,
                    attempt,
                    delay,
                )
                await self.sleep(delay)

    async def _send_fast(self, client: Any, service: str, operation: str, request: Wire) -> Wire:
        url = client.meta.endpoint_url
        aws_request = AWSRequest(
            method="POST",
            url=url,
            data=dumps(request),
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
            raise _Fault(
                _connection_error(exc, operation), rejected=_never_sent(exc), throttled=False
            ) from exc
        except (ConnectionClosedError, ReadTimeoutError, HTTPClientError) as exc:
            raise _Fault(
                _connection_error(exc, operation), rejected=False, throttled=False
            ) from exc
        status = response.status_code
        expected_crc = response.headers.get("x-amz-crc32")
        if expected_crc is not None and zlib.crc32(body) != int(expected_crc):
            error = DynamoError(
                "CRC32CheckFailed", "response body failed its CRC32 check", operation
            )
            raise _Fault(error, rejected=False, throttled=False)
        if status < 300:
            return parse_body(body)
        error, data = _error_from_body(status, body, operation)
        error.response = data
        return self._classify(error, status)

    async def _send_slow(self, client: Any, operation: str, request: Wire) -> Wire:
        method = getattr(client, _snake(operation))
        try:
            result: Wire = await method(**request)
        except ClientError as exc:
            info = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            error = DynamoError(
                str(info.get("Code", "Unknown")), str(info.get("Message", "")), operation
            )
            data = dict(exc.response)
            data.pop("ResponseMetadata", None)
            error.response = data
            return self._classify(error, int(status))
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise _Fault(
                _connection_error(exc, operation), rejected=_never_sent(exc), throttled=False
            ) from exc
        except (ConnectionClosedError, ReadTimeoutError, HTTPClientError) as exc:
            raise _Fault(
                _connection_error(exc, operation), rejected=False, throttled=False
            ) from exc
        result.pop("ResponseMetadata", None)
        return result

    @staticmethod
    def _classify(error: DynamoError, status: int) -> Wire:
        if error.code in TRANSIENT_REJECTIONS:
            raise _Fault(error, rejected=True, throttled=True)
        if error.code in SERVER_FAULT_CODES or status >= 500:
            raise _Fault(error, rejected=False, throttled=False)
        raise error


def _never_sent(exc: Exception) -> bool:
    """Did this connection failure happen before any byte of the request left?

    aiobotocore raises EndpointConnectionError for a refused connection, but also for a
    connection reset while the request was being sent or the response awaited.
    """
    if isinstance(exc, ConnectTimeoutError):
        return True
    cause = getattr(exc, "kwargs", {}).get("error")
    return isinstance(cause, aiohttp.ClientConnectorError | socket.gaierror)


def _connection_error(exc: Exception, operation: str) -> DynamoError:
    # str(exc) of botocore's connection errors names the endpoint, never credentials.
    return DynamoError(type(exc).__name__, str(exc), operation)


_SNAKE_CACHE: dict[str, str] = {}


def _snake(operation: str) -> str:
    name = _SNAKE_CACHE.get(operation)
    if name is None:
        name = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
        _SNAKE_CACHE[operation] = name
    return name
