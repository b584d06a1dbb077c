"""A keep-alive stub of DynamoDB's JSON protocol, run in its own process.

Its CPU is not the client's: the benchmark runner starts it as a separate process, so
`time.process_time` in a contender counts only the client's work. Responses are canned and built
once at start-up (body, `x-amz-crc32`, `x-amzn-RequestId`), so the server answers in microseconds.

It listens on two loopback ports: one answers at once, the other after `--latency` seconds (the
"64 concurrent gets against a 5 ms server" case). Operations:

- GetItem: one benchmark item; PutItem, DeleteItem: `{}`; UpdateItem: `{}`, or the item as
  `Attributes` when the request asks for ReturnValues;
- Query: a page of 1,000 items when the key value is `items-1000`, else 100 items
  (`Select: COUNT` gets only the counts); Scan: 100 items;
- DescribeTable: the benchmark table (see `benchmarks.data.table_description`);
- anything else: a 400 `UnknownOperationException`.

Run `python -m benchmarks.stub_server [--latency 0.005]`: it prints `{"port": P, "latency_port":
Q}` on one line and serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import threading
import zlib
from typing import Any

import orjson

from .data import PAGE_KEYS, TABLE, page, table_description, wire_item

_ITEM_ATTRIBUTES = wire_item("bench", 0)
_TABLE_NAME = re.compile(rb'"TableName"\s*:\s*"([^"]*)"')


def _response(body: bytes, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        "x-amzn-RequestId: BENCHSTUBREQUEST0000000000000000000000000000000000000\r\n"
        f"x-amz-crc32: {zlib.crc32(body)}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


def _json(data: Any, status: str = "200 OK") -> bytes:
    return _response(orjson.dumps(data), status)


class Canned:
    """Every response the stub can give, serialised once."""

    def __init__(self) -> None:
        self.get = _json({"Item": _ITEM_ATTRIBUTES})
        self.empty = _json({})
        self.updated = _json({"Attributes": _ITEM_ATTRIBUTES})
        self.page_1000 = _json(page(1000))
        self.page_100 = _json(page(100))
        self.count_1000 = _json({"Count": 1000, "ScannedCount": 1000})
        self.count_100 = _json({"Count": 100, "ScannedCount": 100})
        self.describe = {TABLE: _json({"Table": table_description(TABLE)})}
        self.unknown = _json(
            {
                "__type": "com.amazon.coral.service#UnknownOperationException",
                "message": "the benchmark stub does not implement this operation",
            },
            "400 Bad Request",
        )

    def answer(self, target: str, body: bytes) -> bytes:
        operation = target.rpartition(".")[2]
        if operation == "GetItem":
            return self.get
        if operation == "Query":
            large = PAGE_KEYS[1000].encode() in body
            if b'"COUNT"' in body:
                return self.count_1000 if large else self.count_100
            return self.page_1000 if large else self.page_100
        if operation in ("PutItem", "DeleteItem"):
            return self.empty
        if operation == "UpdateItem":
            if b'"ReturnValues"' in body and b'"NONE"' not in body:
                return self.updated
            return self.empty
        if operation == "Scan":
            return self.page_100
        if operation == "DescribeTable":
            match = _TABLE_NAME.search(body)
            name = match.group(1).decode() if match else TABLE
            if name not in self.describe:
                self.describe[name] = _json({"Table": table_description(name)})
            return self.describe[name]
        return self.unknown


class StubProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parses requests as they arrive and answers each in turn."""

    def __init__(self, canned: Canned, latency: float) -> None:
        self._canned = canned
        self._latency = latency
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            response = self._canned.answer(headers.get("x-amz-target", ""), body)
            close = headers.get("connection", "").lower() == "close"
            if self._latency > 0:
                self._loop.call_later(self._latency, self._send, response, close)
            else:
                self._send(response, close)

    def _send(self, response: bytes, close: bool) -> None:
        if self._transport is None:
            return
        self._transport.write(response)
        if close:
            self._transport.close()


async def serve(latency: float, ready: Any = None) -> None:
    """Serve on two free loopback ports until the task is cancelled."""
    loop = asyncio.get_running_loop()
    canned = Canned()
    fast = await loop.create_server(lambda: StubProtocol(canned, 0.0), "127.0.0.1", 0)
    slow = await loop.create_server(lambda: StubProtocol(canned, latency), "127.0.0.1", 0)
    ports = {
        "port": fast.sockets[0].getsockname()[1],
        "latency_port": slow.sockets[0].getsockname()[1],
    }
    if ready is not None:
        ready(ports)
    async with fast, slow:
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.005, help="seconds (second port)")
    args = parser.parse_args()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def announce(ports: dict[str, int]) -> None:
            sys.stdout.write(orjson.dumps(ports).decode() + "\n")
            sys.stdout.flush()

        def wait_for_eof() -> None:
            sys.stdin.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
        server = asyncio.create_task(serve(args.latency, announce))
        await stop.wait()
        server.cancel()

    asyncio.run(run())


if __name__ == "__main__":
    main()
