"""`HTTPTransport`: adyn's default transport, DynamoDB's JSON protocol over keep-alive HTTP/1.1.

One attempt per call, no retries (the engine's `RetryPolicy` decides): the request is written
with orjson, signed by adyn's own SigV4 signer (`_sigv4`), and POSTed through adyn's own
keep-alive client (`_http1`) whose pool holds `max_connections` connections; through an HTTP
proxy (configured for the service), through one `aiohttp.ClientSession` instead. The answer is
read once, its `x-amz-crc32` checked, and parsed with orjson. Region, endpoints and credentials
are worked out once, at `open()`, from a botocore session (`_aws`); botocore is never on the
call path.

What a call raises is always a `DynamoError` (or `InvalidArgument`, `EngineClosed`):

- the service's errors, by the code in the body's `__type` (`errors.service_error`), with the
  HTTP status and the request id;
- `ConnectionFailed`, `ConnectTimeout`: no connection, so nothing was sent;
- `ConnectionLost`, `ReadTimeout`, `MalformedResponse`, `CRC32CheckFailed`: the request may have
  reached the server (a reused keep-alive connection that breaks may have delivered it).

The HTTP clients' exceptions are never chained to these: aiohttp's hold the request's headers,
and so the signature and the session token. Nothing in this module logs.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
import zlib
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson
from yarl import URL

from . import __version__
from ._aws import SERVICES, SIGNING_NAME, TARGET_PREFIX, CredentialSource, host_header, resolve
from ._aws import validate_endpoint_url as _validate_endpoint_url
from ._gc import build_paused
from ._http1 import (
    ConnectTimedOut,
    Lost,
    Malformed,
    NotSent,
    Pool,
    PoolClosed,
    ReadTimedOut,
    WireError,
)
from ._sigv4 import Credentials, Signer
from .errors import (
    CONNECT_TIMEOUT,
    CONNECTION_FAILED,
    CONNECTION_LOST,
    CRC32_CHECK_FAILED,
    MALFORMED_RESPONSE,
    READ_TIMEOUT,
    DynamoError,
    EngineClosed,
    InvalidArgument,
    service_error,
)

if TYPE_CHECKING:
    import aiohttp
    from aiobotocore.session import AioSession

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "HTTPTransport", "parse_body"]

Wire = dict[str, Any]

# The Engine's defaults. A connection that takes longer than this to set up is not coming;
# nothing was sent, so the engine may try again at once.
DEFAULT_CONNECT_TIMEOUT = 5.0
# The longest silence accepted from the server once the request is sent: DynamoDB answers in
# milliseconds, and a longer wait only delays learning that a write's outcome is unknown.
DEFAULT_READ_TIMEOUT = 30.0
# HTTP/1.1 carries one request at a time per connection: N connections to a server answering in
# L seconds carry at most N / L calls a second (128 and 5 ms: 25,600, above one core's worth).
DEFAULT_MAX_CONNECTIONS = 128
# Idle keep-alive connections are closed after this long, before the server's own idle timeout
# can close them under a request that is being sent (a request lost that way is ambiguous).
KEEPALIVE_TIMEOUT = 15.0

_CONTENT_TYPE = "application/x-amz-json-1.0"
_USER_AGENT = f"adyn/{__version__}"
_EXPIRED_TOKEN = "ExpiredTokenException"
_LARGE_BODY = 64 * 1024
_CLOSED_BEFORE_SENDING = "the transport was closed before this request was sent"
_MAX_HEADS = 256


def parse_body(body: bytes) -> Any:
    """Parse a response body; a large one without the garbage collector walking it.

    A 1,000-item page is ~20,000 new dicts that all survive: the collector would walk them
    while they are built and once more after a plain pause (see `_gc`).
    """
    if len(body) < _LARGE_BODY:
        return orjson.loads(body)
    return build_paused(lambda: orjson.loads(body))


class _Route:
    """Where one service's calls go, and how they are signed."""

    __slots__ = ("heads", "host", "path", "port", "proxy", "secure", "signer", "url")

    def __init__(self, url: str, signer: Signer, proxy: str | None) -> None:
        self.url = URL(url)
        self.signer = signer
        self.proxy = URL(proxy) if proxy else None
        self.host = self.url.host or ""
        self.secure = self.url.scheme == "https"
        self.port = self.url.port or (443 if self.secure else 80)
        self.path = self.url.raw_path or "/"
        # Per operation: the request line and the headers every call of it sends, up to the
        # value of X-Amz-Date (checked once; see `head_start`).
        self.heads: dict[str, str] = {}

    def head_start(self, operation: str) -> str:
        """The start of `operation`'s request head, checked and then kept."""
        lines = [
            f"POST {self.path} HTTP/1.1",
            *[f"{name}: {value}" for name, value in self.signer.fixed_headers(operation).items()],
        ]
        _check_header_text(lines, operation)
        start = "\r\n".join(lines) + "\r\nX-Amz-Date: "
        if len(self.heads) < _MAX_HEADS:  # operations come from callers: keep a bounded few
            self.heads[operation] = start
        return start


class HTTPTransport:
    """DynamoDB's JSON protocol over HTTP: one attempt per call, signed with SigV4.

    - `region_name`, `endpoint_url`, `session` (an aiobotocore `AioSession`): where and as whom
      to connect; otherwise the standard AWS environment and config files decide (see `_aws`).
      An `endpoint_url` serves both DynamoDB and DynamoDB Streams.
    - `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`: static credentials that
      win over the session's chain.
    - `max_connections` (128): the connection pool. The engine queues calls in front of it; the
      timeouts below never count time spent waiting for a pooled connection.
    - `connect_timeout` (5 s): for setting up a connection (TCP and TLS).
    - `read_timeout` (30 s): the longest silence from the server once the request is sent.

    Use as `async with HTTPTransport(...) as transport:` (or `open()` and `close()`).
    """

    # Requests go out through `orjson.dumps`, so a value may be an `orjson.Fragment` (JSON
    # serialized already): batches queue their items that way (see batch.py).
    _accepts_json_fragments = True

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        session: AioSession | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        if endpoint_url is not None:
            endpoint_url = _validate_endpoint_url(endpoint_url)
        if (aws_access_key_id is None) != (aws_secret_access_key is None):
            raise InvalidArgument(
                "pass both aws_access_key_id and aws_secret_access_key, or neither"
            )
        if aws_session_token is not None and aws_access_key_id is None:
            raise InvalidArgument(
                "aws_session_token needs aws_access_key_id and aws_secret_access_key"
            )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise InvalidArgument(f"max_connections must be an int, not {max_connections!r}")
        if max_connections < 1:
            raise InvalidArgument(f"max_connections must be at least 1, not {max_connections}")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgument(f"{name} must be a positive number of seconds, not {value!r}")
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._session: Any = session
        self._keys = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        self.max_connections = max_connections
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self._http: Pool | None = None
        self._proxied: aiohttp.ClientSession | None = None  # only for routes through a proxy
        self._routes: dict[str, _Route] = {}
        self._credentials: CredentialSource | None = None
        self._checked: Credentials | None = None  # the credentials `_token_line` is for
        self._token_line = ""
        self._open_lock: anyio.Lock | None = None
        self._closed = False
        self.region: str | None = None
        self.endpoints: dict[str, str] = {}

    def __repr__(self) -> str:  # never credentials: only where the calls go
        state = "closed" if self._closed else ("open" if self._http is not None else "new")
        where = self.endpoints.get("dynamodb") or self._endpoint_url or "(not resolved)"
        return f"<HTTPTransport {where} region={self.region or self._region_name} {state}>"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> HTTPTransport:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self) -> None:
        """Resolve region, endpoints and credentials and start the HTTP session (idempotent)."""
        if self._closed:
            raise EngineClosed("this transport was closed; create a new one")
        if self._http is not None:
            return
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._http is not None:
                return
            await self._open()

    async def _open(self) -> None:
        session = self._session
        if session is None:
            # botocore's own session resolves credentials, region and endpoints as aiobotocore's
            # does, without importing aiobotocore's clients and HTTP stacks (half a second of a
            # cold start); its blocking work runs in a worker thread (see `_aws`).
            from botocore.session import get_session

            session = self._session = get_session()
        access_key, secret_key, token = self._keys
        resolution = await resolve(
            session,
            region_name=self._region_name,
            endpoint_url=self._endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=token,
        )
        secure = any(url.lower().startswith("https:") for url in resolution.endpoints.values())
        context = (
            await anyio.to_thread.run_sync(_ssl_context, resolution.ca_bundle) if secure else None
        )
        routes = {}
        for service in SERVICES:
            url = resolution.endpoints[service]
            signer = Signer(
                host=host_header(url),
                region=resolution.region,
                service=SIGNING_NAME,
                path=URL(url).path or "/",
                headers={"Content-Type": _CONTENT_TYPE},
                target_prefix=TARGET_PREFIX[service],
                unsigned_headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
            )
            routes[service] = _Route(url, signer, resolution.proxies.get(service))
        self._http = Pool(
            limit=self.max_connections,
            ssl_context=context,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            keepalive=KEEPALIVE_TIMEOUT,
        )
        if any(route.proxy is not None for route in routes.values()):
            self._proxied = _proxy_session(
                self.max_connections, context, self.connect_timeout, self.read_timeout
            )
        self._routes = routes
        self._credentials = resolution.credentials
        self.region = resolution.region
        self.endpoints = dict(resolution.endpoints)

    async def close(self) -> None:
        """Close the HTTP session; calls after this raise `EngineClosed`."""
        self._closed = True
        http, self._http = self._http, None
        proxied, self._proxied = self._proxied, None
        self._routes = {}
        if http is not None:
            await http.close()
        if proxied is not None:
            await proxied.close()

    # ------------------------------------------------------------------ calls

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        """Send one call (one attempt) and return DynamoDB's answer as a dict.

        The answer carries `"ResponseMetadata": {"RequestId": ...}`. `idempotent` is not used
        here: a transport never retries.
        """
        route = self._routes.get(service)
        http = self._http
        if route is None or http is None:
            raise self._not_ready(service)
        try:
            body = orjson.dumps(request)
        except TypeError as exc:
            raise InvalidArgument(f"{operation}: the request is not JSON ({exc})") from None
        now = time.time()
        source = self._credentials
        assert source is not None
        credentials = source.credentials if now < source.refresh_at else await source.refreshed(now)
        if route.proxy is not None:
            headers = route.signer.sign(credentials, body, operation, now)
            status, response_headers, raw = await self._through_proxy(
                route, body, headers, operation
            )
        else:
            start = route.heads.get(operation)
            if start is None:
                start = route.head_start(operation)
            if self._checked is not credentials:
                self._check_credentials(credentials, operation)
            timestamp, authorization = route.signer.authorize(credentials, body, operation, now)
            # Only the credentials' parts could hold what HTTP cannot carry (checked once
            # above); the time, the signature and the length are ASCII.
            head = (
                f"{start}{timestamp}\r\nAuthorization: {authorization}{self._token_line}"
                f"\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1")
            try:
                response = await http.post(route.host, route.port, route.secure, head, body)
            except WireError as exc:  # never chained: see the module's docstring
                raise _wire_failure(exc, operation) from None
            status, response_headers, raw = response.status, response.headers, response.body
        request_id = response_headers.get("x-amzn-requestid")
        expected = response_headers.get("x-amz-crc32")
        if expected is not None and not _crc_matches(raw, expected):
            raise service_error(
                CRC32_CHECK_FAILED,
                "the response body failed its CRC32 check (damaged on the way)",
                operation,
                status=status,
                request_id=request_id,
            )
        encoding = response_headers.get("content-encoding")
        if encoding is not None and encoding.lower() != "identity":
            raw = _decoded(raw, encoding, operation, status, request_id)
        if status < 300:
            return _answer(raw, operation, status, request_id)
        error = _service_failure(raw, response_headers, operation, status, request_id)
        if error.code == _EXPIRED_TOKEN:
            # The engine sends the call again (nothing was done): with fresh credentials.
            await source.expired(credentials)
        raise error

    async def _through_proxy(
        self, route: _Route, body: bytes, headers: Any, operation: str
    ) -> tuple[int, Any, bytes]:
        http = self._proxied
        if http is None:
            raise self._not_ready("dynamodb")
        failure: DynamoError | None = None
        try:
            response = await http.post(
                route.url, data=body, headers=headers, proxy=route.proxy, allow_redirects=False
            )
            try:
                raw = await response.read()
            finally:
                response.release()
        except Exception as exc:  # every aiohttp, OS and timeout error: mapped, never chained
            failure = _connection_failure(exc, operation, closing=http.closed)
        except asyncio.CancelledError:
            # Closing the session cancels the calls still waiting for a pooled connection (or
            # for DNS): not a cancellation of this task, and nothing of them was sent.
            if not http.closed or _cancelled():
                raise
            failure = service_error(CONNECTION_FAILED, _CLOSED_BEFORE_SENDING, operation)
        if failure is not None:
            raise failure
        return response.status, response.headers, raw

    def _check_credentials(self, credentials: Credentials, operation: str) -> None:
        """Refuse credentials that would break the request head (once per credentials)."""
        token = credentials.token
        _check_header_text([credentials.access_key, token or ""], operation)
        self._token_line = "" if token is None else f"\r\nX-Amz-Security-Token: {token}"
        self._checked = credentials

    def _not_ready(self, service: str) -> Exception:
        if self._closed:
            return EngineClosed("the transport is closed; open a new one")
        if self._http is None:
            return EngineClosed("the transport is not open; use `async with HTTPTransport(...)`")
        return InvalidArgument(
            f"unknown service {service!r}: a call goes to one of {', '.join(SERVICES)}"
        )

    @property
    def credentials(self) -> Credentials | None:
        """The credentials the next call signs with (None before `open`)."""
        return self._credentials.credentials if self._credentials is not None else None


def _proxy_session(
    limit: int, context: ssl.SSLContext | None, connect_timeout: float, read_timeout: float
) -> aiohttp.ClientSession:
    """The aiohttp session of the routes that go through an HTTP proxy."""
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=0,
        ssl=context if context is not None else True,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    # sock_connect covers only setting up a connection, never waiting for a pooled one
    # (`connect` would); sock_read is the longest silence once the request is sent.
    timeout = aiohttp.ClientTimeout(
        total=None, connect=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
    )


# What each connection-level failure says: whether the request can have been applied.
_FAILURE_TEXT = {
    CONNECT_TIMEOUT: "no connection could be set up in time; nothing was sent",
    CONNECTION_FAILED: "no connection could be made; nothing was sent",
    READ_TIMEOUT: "the server did not answer in time; the request may have been applied",
    MALFORMED_RESPONSE: "the answer is not valid HTTP; the request may have been applied",
    CONNECTION_LOST: "the connection broke after the request was sent; it may have been applied",
}


def _failure(code: str, description: str, operation: str) -> DynamoError:
    return service_error(code, f"{_FAILURE_TEXT[code]} ({description})", operation)


def _wire_failure(exc: WireError, operation: str) -> DynamoError:
    """The adyn error for a failure of adyn's own HTTP client (see `_http1`)."""
    if isinstance(exc, PoolClosed):
        return service_error(CONNECTION_FAILED, _CLOSED_BEFORE_SENDING, operation)
    if isinstance(exc, ConnectTimedOut):
        code = CONNECT_TIMEOUT
    elif isinstance(exc, NotSent):
        code = CONNECTION_FAILED
    elif isinstance(exc, ReadTimedOut):
        code = READ_TIMEOUT
    elif isinstance(exc, Malformed):
        code = MALFORMED_RESPONSE
    else:
        assert isinstance(exc, Lost)
        code = CONNECTION_LOST
    return _failure(code, f"{type(exc).__name__}: {exc}", operation)


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS verification as botocore does it: AWS_CA_BUNDLE / ca_bundle, else its CA bundle."""
    if ca_bundle is None:
        from botocore.httpsession import where

        ca_bundle = where()
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(
            f"the CA bundle {ca_bundle!r} cannot be loaded ({type(exc).__name__}: {exc})"
        ) from None


def _check_header_text(parts: list[str], operation: str) -> None:
    """Refuse a header part holding a line break (which would inject another header) or a
    character outside Latin-1, before anything is sent."""
    for part in parts:
        if "\n" in part or "\r" in part:
            raise InvalidArgument(f"{operation}: a header holds a line break")
        try:
            part.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(
                f"{operation}: a header holds a character HTTP cannot carry ({exc.reason})"
            ) from None


def _crc_matches(raw: bytes, expected: str) -> bool:
    try:
        return zlib.crc32(raw) == int(expected)
    except ValueError:  # not a number: the header was damaged too
        return False


def _decoded(
    raw: bytes, encoding: str, operation: str, status: int, request_id: str | None
) -> bytes:
    """A body the server compressed although adyn asked for none."""
    try:
        if encoding.lower() in ("gzip", "x-gzip"):
            return gzip.decompress(raw)
        if encoding.lower() == "deflate":
            return zlib.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise service_error(
            MALFORMED_RESPONSE,
            f"the {encoding} response body cannot be decompressed ({exc})",
            operation,
            status=status,
            request_id=request_id,
        ) from None
    raise service_error(
        MALFORMED_RESPONSE,
        f"the response body is in an unknown encoding {encoding!r}",
        operation,
        status=status,
        request_id=request_id,
    )


def _answer(raw: bytes, operation: str, status: int, request_id: str | None) -> Wire:
    try:
        data = parse_body(raw)
    except orjson.JSONDecodeError as exc:
        raise service_error(
            MALFORMED_RESPONSE,
            f"the {status} response is not JSON ({exc}); it starts {raw[:80]!r}",
            operation,
            status=status,
            request_id=request_id,
        ) from None
    if type(data) is not dict:
        raise service_error(
            MALFORMED_RESPONSE,
            f"the {status} response is JSON but not an object: it starts {raw[:80]!r}",
            operation,
            status=status,
            request_id=request_id,
        )
    data["ResponseMetadata"] = {"RequestId": request_id}
    return data


def _service_failure(
    raw: bytes, headers: Any, operation: str, status: int, request_id: str | None
) -> DynamoError:
    data: Any
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        data = {}
    if type(data) is not dict:
        data = {}
    code = str(data.get("__type") or "").rpartition("#")[2]
    if not code:  # botocore's fallback: the x-amzn-ErrorType header ("Code:http://...")
        code = str(headers.get("x-amzn-errortype") or "").partition(":")[0].strip()
    if not code:
        code = f"HTTP{status}"
    message = data.get("message") or data.get("Message") or ""
    if not message and not data and raw:
        message = f"the {status} response is not DynamoDB's JSON: it starts {raw[:80]!r}"
    return service_error(code, str(message), operation, data, status=status, request_id=request_id)


def _cancelled() -> bool:
    """Is the current task being cancelled (rather than handed a cancelled future)?"""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _connection_failure(exc: Exception, operation: str, *, closing: bool) -> DynamoError:
    """The adyn error for an exception aiohttp raised while sending or reading (never
    chained)."""
    import aiohttp

    if closing and isinstance(exc, RuntimeError):  # aiohttp's "Session is closed": not sent
        return service_error(CONNECTION_FAILED, _CLOSED_BEFORE_SENDING, operation)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        code = CONNECT_TIMEOUT
    elif isinstance(exc, aiohttp.ClientConnectorError):
        code = CONNECTION_FAILED
    elif isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError (sock_read) included
        code = READ_TIMEOUT
    elif isinstance(exc, aiohttp.ClientResponseError):
        code = MALFORMED_RESPONSE
    else:  # ServerDisconnected, ClientOSError, payload errors, ...: a connection that broke
        code = CONNECTION_LOST
    return _failure(code, _describe(exc), operation)


def _describe(exc: BaseException) -> str:
    """`Type: message` of an aiohttp or OS error: endpoint and reason, never headers."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientResponseError):
        text = f"status {exc.status}, {exc.message}"  # its repr would show the request headers
    else:
        text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
