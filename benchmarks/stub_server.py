"""A keep-alive stub of DynamoDB's JSON protocol, run in its own process.

Its CPU is not the client's: the benchmark runner starts it as a separate process, so
`time.process_time` in a contender counts only the client's work. Responses are canned and built
once at start-up (body, `x-amz-crc32`, `x-amzn-RequestId`), so the server answers in microseconds.

It listens on three loopback ports: one answers at once, one after `--latency` seconds (the
concurrent-gets and fairness cases: a 5 ms server), one after `--page-latency` seconds (the paged
scan: a 2 ms server). Operations:

- GetItem: one benchmark item; PutItem, DeleteItem: `{}`; UpdateItem: `{}`, or the item as
  `Attributes` when the request asks for ReturnValues;
- BatchWriteItem: `{"UnprocessedItems": {}}`; TransactWriteItems: `{}`;
- Query: a page of 1,000 items when the key value is `items-1000`, else 100 items
  (`Select: COUNT` gets only the counts);
- Scan: a table of `SCAN_TOTAL` items (100,000; 2,500 with `--quick`) in 1 MB pages (2,410 items,
  DynamoDB's limit, `benchmarks.data.items_per_mb_page`) when the request has no `Limit`, and of
  `PAGED_TOTAL` items (20,000; 500 with `--quick`) in pages of `Limit` items when it has one.
  Every page but the last carries a `LastEvaluatedKey` whose `sk` is `scan-<offset of the next
  item>`, and a request's `ExclusiveStartKey` picks the page. A segment of a parallel scan
  (`TotalSegments`: the backfill benchmark) is one page of at most 100 items, with no
  `LastEvaluatedKey`. The items of a page are the first
  ones of one prebuilt set, so each page's answer is the same prebuilt bytes plus its own short
  tail (and its own `x-amz-crc32`), built on its first request;
- DescribeTable: the benchmark table (see `benchmarks.data.table_description`);
- anything else: a 400 `UnknownOperationException`.

Run `python -m benchmarks.stub_server [--latency 0.005] [--page-latency 0.002] [--quick]`: it
prints `{"port": P, "latency_port": Q, "page_port": R}` on one line and serves until its
standard input closes.
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

from .data import (
    PAGE_KEYS,
    PAGED_TOTAL,
    SCAN_PK,
    SCAN_TOTAL,
    TABLE,
    items_per_mb_page,
    page,
    table_description,
    wire_item,
)

_ITEM_ATTRIBUTES = wire_item("bench", 0)
_TABLE_NAME = re.compile(rb'"TableName"\s*:\s*"([^"]*)"')
_LIMIT = re.compile(rb'"Limit"\s*:\s*(\d+)')
_START = re.compile(rb'"scan-(\d+)"')  # only an ExclusiveStartKey holds such a value
_SEGMENTED = re.compile(rb'"TotalSegments"')

Answer = bytes | tuple[bytes, ...]  # one buffer, or buffers written in order


def _head(length: int, crc: int, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        "x-amzn-RequestId: BENCHSTUBREQUEST0000000000000000000000000000000000000\r\n"
        f"x-amz-crc32: {crc}\r\n"
        f"Content-Length: {length}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode("ascii")


def _response(body: bytes, status: str = "200 OK") -> bytes:
    return _head(len(body), zlib.crc32(body), status) + body


def _json(data: Any, status: str = "200 OK") -> bytes:
    return _response(orjson.dumps(data), status)


class ScanTable:
    """A table of `total` items read by Scan in pages; answers are built once per page."""

    def __init__(self, total: int, items: list[bytes]) -> None:
        self.total = total
        self._items = items  # each item's JSON, the first page's worth at least
        self._bodies: dict[int, tuple[bytes, int]] = {}  # count -> (shared bytes, their crc)
        self._answers: dict[tuple[int, int], Answer] = {}

    def answer(self, offset: int, size: int) -> Answer:
        """The page of at most `size` items starting at item number `offset`."""
        cached = self._answers.get((offset, size))
        if cached is not None:
            return cached
        count = max(0, min(size, self.total - offset))
        if count not in self._bodies:
            shared = b'{"Items":[' + b",".join(self._items[:count]) + b"]"
            self._bodies[count] = (shared, zlib.crc32(shared))
        shared, crc = self._bodies[count]
        tail = b',"Count":%d,"ScannedCount":%d' % (count, count)
        if offset + count < self.total:
            key = {"pk": {"S": SCAN_PK}, "sk": {"S": f"scan-{offset + count}"}}
            tail += b',"LastEvaluatedKey":' + orjson.dumps(key)
        tail += b"}"
        answer = (_head(len(shared) + len(tail), zlib.crc32(tail, crc)), shared, tail)
        self._answers[(offset, size)] = answer
        return answer


class Canned:
    """Every response the stub can give, serialised once (scan pages: on first use)."""

    def __init__(self, quick: bool = False) -> None:
        self.mb_page = items_per_mb_page()
        items = [orjson.dumps(wire_item(SCAN_PK, i)) for i in range(self.mb_page)]
        self.scan = ScanTable(SCAN_TOTAL[quick], items)
        self.paged_scan = ScanTable(PAGED_TOTAL[quick], items)
        self.segment = ScanTable(100, items)
        self.batch_written = _json({"UnprocessedItems": {}})
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

    def answer(self, target: str, body: bytes) -> Answer:
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
            start = _START.search(body)
            offset = int(start.group(1)) if start else 0
            limit = _LIMIT.search(body)
            if _SEGMENTED.search(body):  # a segment of a backfill: one page, then the end
                return self.segment.answer(0, min(int(limit.group(1)) if limit else 100, 100))
            if limit is None:
                return self.scan.answer(offset, self.mb_page)
            return self.paged_scan.answer(offset, min(int(limit.group(1)), self.mb_page))
        if operation == "BatchWriteItem":
            return self.batch_written
        if operation == "TransactWriteItems":
            return self.empty
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

    def _send(self, response: Answer, close: bool) -> None:
        if self._transport is None:
            return
        if isinstance(response, bytes):
            self._transport.write(response)
        else:
            self._transport.writelines(response)
        if close:
            self._transport.close()


async def serve(
    latency: float, page_latency: float = 0.002, quick: bool = False, ready: Any = None
) -> None:
    """Serve on three free loopback ports until the task is cancelled."""
    loop = asyncio.get_running_loop()
    canned = Canned(quick)
    servers = {}
    for name, delay in (("port", 0.0), ("latency_port", latency), ("page_port", page_latency)):
        servers[name] = await loop.create_server(
            lambda delay=delay: StubProtocol(canned, delay), "127.0.0.1", 0, backlog=2048
        )
    if ready is not None:
        ready({name: server.sockets[0].getsockname()[1] for name, server in servers.items()})
    async with servers["port"], servers["latency_port"], servers["page_port"]:
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.005, help="seconds (second port)")
    parser.add_argument("--page-latency", type=float, default=0.002, help="seconds (third port)")
    parser.add_argument("--quick", action="store_true", help="small scan tables")
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
        server = asyncio.create_task(serve(args.latency, args.page_latency, args.quick, announce))
        await stop.wait()
        server.cancel()

    asyncio.run(run())


if __name__ == "__main__":
    main()
