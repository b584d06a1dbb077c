"""A loopback server for the transport's tests that reads whole HTTP/1.1 requests and answers
each with the bytes a test gives (or closes the connection)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class Server:
    """A loopback server that reads whole requests; `reply(n)` gives the bytes to answer the
    n-th request with (None: close the connection). It counts connections and records each
    request as (head, body)."""

    def __init__(self, reply: Callable[[int], Awaitable[bytes | None]]) -> None:
        self.reply = reply
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.requests.append((head, await reader.readexactly(length)))
                data = await self.reply(len(self.requests))
                if data is None:
                    return
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def serving(
    reply: Callable[[int], Awaitable[bytes | None]], ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[Server, int]]:
    server = Server(reply)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server, listener.sockets[0].getsockname()[1]
    finally:
        listener.close()


def always(data: bytes | None) -> Callable[[int], Awaitable[bytes | None]]:
    async def reply(n: int) -> bytes | None:
        return data

    return reply
