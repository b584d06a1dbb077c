"""A small keep-alive HTTP/1.1 client for the transport's POSTs to DynamoDB.

The transport sends one kind of request: a POST of a JSON body, with headers adyn makes itself,
to one or two hosts, answered with a short head and a body. A general client pays for what this
path never uses (redirects, cookies, proxies, streaming, middlewares): measured, aiohttp's
request path was about half of a GetItem's client CPU. This module is the whole path:

- `Pool.post` takes an idle connection (or opens one, at most `limit` in all, callers waiting
  first come, first served), writes the request in one `write`, and waits for the answer;
- `_Connection` is an `asyncio.Protocol` that parses the status line and headers and reads the
  body by `Content-Length`, chunked transfer coding, or to the end of the connection;
- a connection goes back to the pool only after a whole answer that allows it to be kept
  (HTTP/1.1 without `Connection: close`, nothing more in the buffer); one idle for
  `keepalive` seconds or closed by the server while idle is dropped, never reused.

Failures are this module's own exceptions, which say whether the request can have reached the
server (`_http` maps them to adyn's errors): `ConnectFailed`, `ConnectTimedOut` and `PoolClosed`
before anything was written; `Lost`, `ReadTimedOut` and `Malformed` after. The read timeout is
the longest silence from the server once the request is written (reset by every chunk).
Everything here is bounded: heads of at most 64 KiB, bodies of at most 64 MiB.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any

__all__ = [
    "ConnectFailed",
    "ConnectTimedOut",
    "Lost",
    "Malformed",
    "NotSent",
    "Pool",
    "PoolClosed",
    "ReadTimedOut",
    "Response",
    "WireError",
]

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


class WireError(Exception):
    """A request that failed below HTTP; unless it is a `NotSent`, it may have reached the
    server."""


class NotSent(WireError):
    """The request was not written: nothing reached the server."""


class ConnectFailed(NotSent):
    """No connection could be made (refused, unreachable, DNS, TLS refused)."""


class ConnectTimedOut(NotSent):
    """No connection was set up in time."""


class PoolClosed(NotSent):
    """The pool was closed before the request was written."""


class Lost(WireError):
    """The connection broke after the request was written."""


class ReadTimedOut(WireError, TimeoutError):
    """The server was silent for longer than the read timeout."""


class Malformed(WireError):
    """The answer is not valid HTTP/1.x."""


class Response:
    """An answer: `status`, `headers` (lower-case names; the last of repeated ones), `body`."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


# What the parser waits for next.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _TO_EOF, _DONE = range(8)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.state = _DONE
        self.timer: asyncio.TimerHandle | None = None
        self.heard = 0.0
        self.reusable = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.parts: list[bytes] = []
        self.need = 0
        self.size = 0

    # ---------------------------------------------------------------- protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            self._close()  # bytes nobody asked for: the connection is out of step
            return
        self.buffer += data
        self.heard = self.loop.time()
        try:
            self._parse()
        except Malformed as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        if self.waiter is None:
            self.closed = True  # closed by the server while idle: never to be taken again
        elif self.state == _TO_EOF:
            self.reusable = False
            self._finish()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.waiter is not None:
            if self.state == _TO_EOF:
                self.reusable = False
                self._finish()
            else:
                reason = f": {exc}" if exc is not None else ""
                self._fail(Lost(f"the server closed the connection before answering{reason}"))

    # ---------------------------------------------------------------- requests

    async def request(self, data: bytes) -> Response:
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            raise NotSent("the connection closed before the request was written")
        waiter: asyncio.Future[Response] = self.loop.create_future()
        self.waiter = waiter
        self.state = _HEAD
        self.reusable = True
        self.heard = self.loop.time()
        self.timer = self.loop.call_at(self.heard + self.read_timeout, self._check_silence)
        transport.write(data)
        try:
            return await waiter
        except BaseException:
            if self.waiter is waiter:  # cancelled while waiting: this connection is unusable
                self._fail(None)
            raise
        finally:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def _check_silence(self) -> None:
        if self.waiter is None:
            return
        silent = self.loop.time() - self.heard
        if silent >= self.read_timeout:
            self.timer = None
            self._fail(ReadTimedOut(f"no answer for {self.read_timeout:g} s"))
        else:
            self.timer = self.loop.call_at(self.heard + self.read_timeout, self._check_silence)

    def _finish(self) -> None:
        waiter, self.waiter = self.waiter, None
        body = b"".join(self.parts)
        self.parts = []
        if self.buffer:  # more than one answer: never reuse this connection
            self.reusable = False
        if not self.reusable:
            self._close()
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.status, self.headers, body))

    def _fail(self, exc: BaseException | None) -> None:
        waiter, self.waiter = self.waiter, None
        self.reusable = False
        self._close()
        if waiter is not None and not waiter.done() and exc is not None:
            waiter.set_exception(exc)

    def _close(self) -> None:
        self.closed = True
        self.buffer.clear()
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.abort()

    def close(self) -> None:
        """Close now; a request waiting on this connection fails as `Lost`."""
        self._fail(Lost("the connection was closed while the request was in flight"))

    # ---------------------------------------------------------------- parsing

    def _parse(self) -> None:
        buffer = self.buffer
        while True:
            state = self.state
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0 or end > MAX_HEAD:
                    if len(buffer) > MAX_HEAD:
                        raise Malformed("the response head is longer than 64 KiB")
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                if not self._head(head):
                    continue  # an interim 1xx answer: the real one follows
            elif state == _LENGTH:
                need = self.need
                if len(buffer) < need:
                    return
                if len(buffer) == need:  # the usual case: one copy, no slice
                    self.parts.append(bytes(buffer))
                    buffer.clear()
                else:
                    with memoryview(buffer) as view:
                        self.parts.append(bytes(view[:need]))
                    del buffer[:need]
                self._finish()
                return
            elif state == _TO_EOF:
                self.size += len(buffer)
                if self.size > MAX_BODY:
                    raise Malformed("the response body is longer than 64 MiB")
                self.parts.append(bytes(buffer))
                buffer.clear()
                return
            elif state in (_CHUNK_SIZE, _TRAILER):
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise Malformed("a chunk size line is longer than 64 KiB")
                    return
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                if state == _TRAILER:
                    if not line:
                        self._finish()
                        return
                    continue  # trailer fields: not used
                size = _chunk_size(line)
                if size == 0:
                    self.state = _TRAILER
                    continue
                self.size += size
                if self.size > MAX_BODY:
                    raise Malformed("the response body is longer than 64 MiB")
                self.need = size
                self.state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if len(buffer) < self.need:
                    return
                self.parts.append(bytes(buffer[: self.need]))
                del buffer[: self.need]
                self.state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise Malformed("a chunk does not end with CRLF")
                del buffer[:2]
                self.state = _CHUNK_SIZE
            else:
                if buffer:
                    raise Malformed("bytes after the end of the answer")
                return

    def _head(self, head: bytes) -> bool:
        """Take a status line and headers; False for an interim (1xx) answer."""
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise Malformed(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name[0] in " \t" or name[-1] in " \t":
                raise Malformed(f"not a header line: {line[:80]!r}")
            headers[name.lower()] = value.strip()
        if status < 200:
            return False
        self.status = status
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if version != "HTTP/1.1" or "close" in connection:
            self.reusable = False
        self.parts = []
        self.size = 0
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.lower() != "chunked":
                raise Malformed(f"unsupported transfer coding {coding!r}")
            self.state = _CHUNK_SIZE
            return True
        length = headers.get("content-length")
        if status in (204, 304):
            self.state = _LENGTH
            self.need = 0
        elif length is not None:
            if not length.isdigit() or len(length) > 12:
                raise Malformed(f"a bad Content-Length {length[:40]!r}")
            self.need = int(length)
            if self.need > MAX_BODY:
                raise Malformed("the response body is longer than 64 MiB")
            self.state = _LENGTH
        else:
            self.reusable = False
            self.state = _TO_EOF
        return True


def _chunk_size(line: bytes) -> int:
    text = line.partition(b";")[0].strip()  # chunk extensions: not used
    if not text or len(text) > 16:
        raise Malformed(f"a bad chunk size line {line[:40]!r}")
    try:
        return int(text, 16)
    except ValueError:
        raise Malformed(f"a bad chunk size line {line[:40]!r}") from None


class Pool:
    """Keep-alive connections to any number of hosts, at most `limit` in all."""

    def __init__(
        self,
        *,
        limit: int,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
        keepalive: float,
    ) -> None:
        self.limit = limit
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self.closed = False
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._count = 0  # connections open or being opened
        self._busy: set[_Connection] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def post(self, host: str, port: int, secure: bool, head: bytes, body: bytes) -> Response:
        """Send `head` (request line and headers, ending in a blank line) and `body`."""
        if self.closed:
            raise PoolClosed("the connection pool is closed")
        conn = self._take(host, port, secure)
        if conn is None:
            conn = await self._open(host, port, secure)
        self._busy.add(conn)
        try:
            response = await conn.request(head + body)
        except BaseException:
            self._busy.discard(conn)
            self._dropped(conn)
            raise
        self._busy.discard(conn)
        if conn.closed or self.closed:
            self._dropped(conn)
        else:
            conn.idle_since = conn.loop.time()
            self._idle.setdefault((host, port, secure), []).append(conn)
            self._wake()
        return response

    def _take(self, host: str, port: int, secure: bool) -> _Connection | None:
        idle = self._idle.get((host, port, secure))
        if not idle:
            return None
        while idle:
            conn = idle.pop()  # the most recently used: the others age out
            if not conn.closed and conn.loop.time() - conn.idle_since < self.keepalive:
                return conn
            conn.close()
            self._count -= 1
        return None

    async def _open(self, host: str, port: int, secure: bool) -> _Connection:
        queued = False
        while self._count >= self.limit:
            if not self._close_an_idle_connection():
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                if queued:  # woken, but another caller took the connection: keep the turn
                    self._waiters.appendleft(waiter)
                else:
                    self._waiters.append(waiter)
                queued = True
                try:
                    await waiter
                except BaseException:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                    elif not waiter.cancelled():
                        self._wake()  # woken, then cancelled: pass the turn on
                    raise
                if self.closed:
                    raise PoolClosed("the connection pool was closed before the request was sent")
                conn = self._take(host, port, secure)
                if conn is not None:
                    return conn
        self._count += 1
        try:
            conn = await self._connect(host, port, secure)
        except BaseException:
            self._count -= 1
            self._wake()
            raise
        if self.closed:
            conn.close()
            self._count -= 1
            raise PoolClosed("the connection pool was closed before the request was sent")
        return conn

    async def _connect(self, host: str, port: int, secure: bool) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, self.read_timeout)
        context: Any = None
        if secure:
            context = self.ssl_context if self.ssl_context is not None else True
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if secure else None,
                )
        except TimeoutError:
            conn.close()
            raise ConnectTimedOut(
                f"no connection to {host}:{port} within {self.connect_timeout:g} s"
            ) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS verification (ssl.SSLError)
            conn.close()
            raise ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from None
        return conn

    def _close_an_idle_connection(self) -> bool:
        """Make room for a connection to another host: close the oldest idle one."""
        oldest: list[_Connection] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                oldest = idle
        if oldest is None:
            return False
        oldest.pop(0).close()
        self._count -= 1
        return True

    def _dropped(self, conn: _Connection) -> None:
        conn.close()
        self._count -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection; requests in flight fail as `Lost`, waiting ones as
        `PoolClosed`."""
        self.closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        for conn in list(self._busy):
            conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        await asyncio.sleep(0)  # let the transports finish closing
