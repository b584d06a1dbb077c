"""A reverse proxy that injects DynamoDB faults between adyn and a real test server.

`FaultProxy` listens on a free loopback port inside the test's own event loop and forwards every
request to `upstream` (moto, dynalite) over one keep-alive session. Rules pick requests by
operation (the suffix of `X-Amz-Target`), an optional predicate on the parsed JSON body, a chance
and a budget, and apply a fault to them:

```python
async with FaultProxy(upstream=moto_url, seed=1234) as proxy:
    proxy.add(Rule(Unprocessed(rate=0.3), operation="BatchWriteItem"))
    proxy.add(Rule(Throttle(), chance=0.1))
    transport = Transport(endpoint_url=proxy.url)
    ...
    proxy.count(Throttle)       # throttles injected
    proxy.forwarded()           # requests the server saw
```

Rules are tried in the order they were added. `Latency` adds a delay and lets later rules run; the
first other fault that takes effect ends the search. Each request's dice are a `random.Random`
seeded from the proxy's seed, the request (operation and canonical body) and how often that same
request was seen before, so a seed reproduces the same faults even when concurrent requests
arrive in a different order. Requests without `X-Amz-Target` pass through untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import struct
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeAlias

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "BadCrc",
    "DropAfter",
    "DropBefore",
    "Exchange",
    "Fault",
    "FaultProxy",
    "Latency",
    "Malformed",
    "Rule",
    "ServerError",
    "Stall",
    "Throttle",
    "Unprocessed",
]

Wire = dict[str, Any]

ThrottleCode = Literal[
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"
]
ServerErrorCode = Literal["InternalServerError", "ServiceUnavailable"]

_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_MESSAGES: dict[str, str] = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded."
        " Consider increasing your provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "RequestLimitExceeded": "Throughput exceeds the current throughput limit for your account.",
    "InternalServerError": "Internal server error",
    "ServiceUnavailable": "The service is currently unavailable or busy.",
}
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


@dataclass(frozen=True)
class Throttle:
    """Answer 400 with a DynamoDB throttling error; the server never sees the request."""

    code: ThrottleCode = "ProvisionedThroughputExceededException"


@dataclass(frozen=True)
class ServerError:
    """Answer 500 InternalServerError (503 for ServiceUnavailable).

    With `after_upstream=True` the request is forwarded first: the server applies it, yet the
    client sees the error.
    """

    after_upstream: bool = False
    code: ServerErrorCode = "InternalServerError"


@dataclass(frozen=True)
class DropBefore:
    """Close the client's connection without forwarding: the server never sees the request.

    `reset=True` aborts with a TCP reset instead of a clean close.
    """

    reset: bool = False


@dataclass(frozen=True)
class DropAfter:
    """Forward, let the server finish, then close the client's connection without an answer.

    `reset=True` aborts with a TCP reset instead of a clean close.
    """

    reset: bool = False


@dataclass(frozen=True)
class Latency:
    """Wait `seconds` before forwarding; later rules still apply to the same request."""

    seconds: float


@dataclass(frozen=True)
class Unprocessed:
    """Hold back a random share of a batch and return it as unprocessed (exact DynamoDB shape).

    Applies to BatchWriteItem (`UnprocessedItems`) and BatchGetItem (`UnprocessedKeys`); each
    item or key is held back with probability `rate`, the rest is forwarded. When nothing is held
    back the rule does not take effect. When everything is held back the proxy answers as
    DynamoDB does, with ProvisionedThroughputExceededException, unless `throttle_if_none=False`,
    in which case it returns the whole batch as unprocessed without contacting the server.
    """

    rate: float = 0.5
    throttle_if_none: bool = True


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with a body that is not DynamoDB's JSON (and a CRC32 that matches it).

    With `after_upstream=True` (the default) the server applies the request first.
    """

    body: bytes = b"<html><body>502 Bad Gateway</body></html>"
    after_upstream: bool = True


@dataclass(frozen=True)
class BadCrc:
    """Relay the server's answer with an `x-amz-crc32` header that does not match the body.

    `header` is the value sent (a wrong number by default; any text, e.g. "abc", to send one
    that is not a number at all). The server applied the request.
    """

    header: str | None = None


@dataclass(frozen=True)
class Stall:
    """Hold the connection open without answering for `seconds`, then drop it.

    With `after_upstream=True` (the default) the server applies the request first.
    """

    seconds: float = 5.0
    after_upstream: bool = True


Fault: TypeAlias = (
    Throttle
    | ServerError
    | DropBefore
    | DropAfter
    | Latency
    | Unprocessed
    | Malformed
    | BadCrc
    | Stall
)


@dataclass(eq=False)
class Rule:
    """Apply `fault` to requests for `operation` ("*": any) for which `when(body)` holds.

    `chance` is the probability that a matching request is hit; `times` caps how often the rule
    takes effect (None: no cap). `applied` counts how often it did.
    """

    fault: Fault
    _: KW_ONLY
    operation: str = "*"
    when: Callable[[Wire], bool] | None = None
    chance: float = 1.0
    times: int | None = None
    applied: int = field(default=0, init=False)

    def _matches(self, operation: str, body: Wire) -> bool:
        if self.operation not in ("*", operation):
            return False
        if self.times is not None and self.applied >= self.times:
            return False
        if isinstance(self.fault, Unprocessed) and operation not in _BATCH_SPLITTERS:
            return False
        return self.when is None or self.when(body)


@dataclass(frozen=True)
class Exchange:
    """One request through the proxy, as `FaultProxy.log` records it.

    `faults` lists what was applied (in order), `upstream` whether the server received the
    request, `status` the HTTP status the client got (None when its connection was dropped), and
    `unprocessed` how many batch items or keys the proxy held back; `request` is the parsed body
    the client sent.
    """

    operation: str
    faults: tuple[Fault, ...]
    upstream: bool
    status: int | None
    unprocessed: int = 0
    request: Wire = field(default_factory=dict, repr=False)


@dataclass
class _Reply:
    status: int
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class _Split:
    """A batch cut in two: the request to forward (None: nothing) and what is held back."""

    forward: Wire | None
    held: dict[str, Any]
    count: int


class FaultProxy:
    """A fault-injecting reverse proxy on 127.0.0.1; use it as an async context manager."""

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.seed = seed
        self.rules: list[Rule] = []
        self.log: list[Exchange] = []
        self._seen: dict[str, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FaultProxy:
        # auto_decompress=False: relay the upstream's bytes exactly, so its CRC32 stays valid.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        session, self._session = self._session, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            if session is not None:
                await session.close()

    @property
    def url(self) -> str:
        """The proxy's endpoint URL (pass it as the engine's `endpoint_url`)."""
        if self._url is None:
            raise RuntimeError("the proxy is not running; use `async with FaultProxy(...)`")
        return self._url

    # ------------------------------------------------------------------ rules and records

    def add(self, rule: Rule) -> Rule:
        """Append a rule (tried after the ones already added) and return it."""
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule; the log is kept."""
        self.rules.clear()

    def count(self, kind: type[Fault] | None = None, *, operation: str | None = None) -> int:
        """How many requests got a fault of type `kind` (any fault when None)."""
        return sum(
            1
            for entry in self.log
            if (operation is None or entry.operation == operation)
            and any(kind is None or isinstance(f, kind) for f in entry.faults)
        )

    def forwarded(self, operation: str | None = None) -> int:
        """How many requests (for `operation`, or all) reached the upstream server."""
        return sum(
            1
            for entry in self.log
            if entry.upstream and (operation is None or entry.operation == operation)
        )

    # ------------------------------------------------------------------ the request path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        if not target:
            reply = await self._forward(request, raw)
            return _respond(reply)
        operation = target.rpartition(".")[2]
        body = _parse(raw)
        dice = self._dice(operation, body, raw)
        latencies, chosen = self._choose(operation, body, dice)
        for latency in latencies:
            await asyncio.sleep(latency.seconds)
        applied: tuple[Fault, ...] = (*latencies, chosen[0]) if chosen else tuple(latencies)

        def record(upstream: bool, status: int | None, unprocessed: int = 0) -> None:
            self.log.append(Exchange(operation, applied, upstream, status, unprocessed, body))

        match chosen:
            case None:
                reply = await self._forward(request, raw)
                record(True, reply.status)
                return _respond(reply)
            case (Throttle(code=code), _):
                record(False, 400)
                return _respond(_error(400, code))
            case (ServerError(after_upstream=after, code=code), _):
                if after:
                    await self._forward(request, raw)
                status = 503 if code == "ServiceUnavailable" else 500
                record(after, status)
                return _respond(_error(status, code))
            case (DropBefore(reset=reset), _):
                record(False, None)
                return _drop(request, reset)
            case (DropAfter(reset=reset), _):
                await self._forward(request, raw)
                record(True, None)
                return _drop(request, reset)
            case (Malformed(body=bad, after_upstream=after), _):
                reply = await self._forward(request, raw) if after else None
                record(after, 200)
                headers = {"Content-Type": "application/x-amz-json-1.0"}
                if reply is not None:
                    headers = dict(reply.headers)
                return _respond(_Reply(200, _with_crc(headers, bad), bad))
            case (BadCrc(header=header), _):
                reply = await self._forward(request, raw)
                record(True, reply.status)
                headers = CIMultiDict(reply.headers)
                headers["x-amz-crc32"] = (
                    header if header is not None else str((zlib.crc32(reply.body) + 1) % 2**32)
                )
                return _respond(_Reply(reply.status, headers, reply.body))
            case (Stall(seconds=seconds, after_upstream=after), _):
                if after:
                    await self._forward(request, raw)
                record(after, None)
                await asyncio.sleep(seconds)
                return _drop(request, reset=False)
            case (Unprocessed(throttle_if_none=throttle), split):
                assert split is not None
                if split.forward is None:
                    if throttle:
                        record(False, 400, split.count)
                        return _respond(_error(400, "ProvisionedThroughputExceededException"))
                    record(False, 200, split.count)
                    return _respond(_rewritten(None, _merge(operation, body, {}, split)))
                reply = await self._forward(request, orjson.dumps(split.forward))
                record(True, reply.status, split.count)
                if reply.status != 200:
                    return _respond(reply)
                merged = _merge(operation, body, _parse(reply.body), split)
                return _respond(_rewritten(reply, merged))
        raise AssertionError(f"unhandled fault {chosen!r}")  # pragma: no cover

    def _dice(self, operation: str, body: Wire, raw: bytes) -> random.Random:
        # Key the dice on the request itself, not on arrival order; a client token is random per
        # call, so it is left out of the key.
        canonical = {k: v for k, v in body.items() if k != "ClientRequestToken"}
        payload = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS) if body else raw
        digest = hashlib.sha256(operation.encode() + b"\0" + payload).hexdigest()
        seen = self._seen.get(digest, 0)
        self._seen[digest] = seen + 1
        return random.Random(f"{self.seed}:{digest}:{seen}")

    def _choose(
        self, operation: str, body: Wire, dice: random.Random
    ) -> tuple[list[Latency], tuple[Fault, _Split | None] | None]:
        latencies: list[Latency] = []
        for rule in self.rules:
            if not rule._matches(operation, body):
                continue
            if rule.chance < 1.0 and dice.random() >= rule.chance:
                continue
            fault = rule.fault
            split: _Split | None = None
            if isinstance(fault, Unprocessed):
                split = _BATCH_SPLITTERS[operation](body, fault.rate, dice)
                if split.count == 0:
                    continue
            rule.applied += 1
            if isinstance(fault, Latency):
                latencies.append(fault)
                continue
            return latencies, (fault, split)
        return latencies, None

    async def _forward(self, request: web.Request, body: bytes) -> _Reply:
        assert self._session is not None
        headers = CIMultiDict(
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "host"
        )
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as response:
            data = await response.read()
            return _Reply(response.status, CIMultiDict(response.headers), data)


# ---------------------------------------------------------------------- batches


def _split_batch_write(body: Wire, rate: float, dice: random.Random) -> _Split:
    forward: dict[str, list[Any]] = {}
    held: dict[str, list[Any]] = {}
    for table, entries in body.get("RequestItems", {}).items():
        for entry in entries:
            (held if dice.random() < rate else forward).setdefault(table, []).append(entry)
    return _Split(
        {**body, "RequestItems": forward} if forward else None,
        held,
        sum(len(v) for v in held.values()),
    )


def _split_batch_get(body: Wire, rate: float, dice: random.Random) -> _Split:
    forward: dict[str, Wire] = {}
    held: dict[str, Wire] = {}
    for table, entry in body.get("RequestItems", {}).items():
        keep: list[Any] = []
        back: list[Any] = []
        for key in entry.get("Keys", []):
            (back if dice.random() < rate else keep).append(key)
        # Unprocessed keys keep the table entry's projection, names and read consistency.
        if keep:
            forward[table] = {**entry, "Keys": keep}
        if back:
            held[table] = {**entry, "Keys": back}
    return _Split(
        {**body, "RequestItems": forward} if forward else None,
        held,
        sum(len(v["Keys"]) for v in held.values()),
    )


_BATCH_SPLITTERS: dict[str, Callable[[Wire, float, random.Random], _Split]] = {
    "BatchWriteItem": _split_batch_write,
    "BatchGetItem": _split_batch_get,
}


def _merge(operation: str, request: Wire, response: Wire, split: _Split) -> Wire:
    """Add the held-back part of a batch to the server's answer to the forwarded part."""
    merged = dict(response)
    if operation == "BatchWriteItem":
        items: dict[str, list[Any]] = dict(merged.get("UnprocessedItems") or {})
        for table, entries in split.held.items():
            items[table] = [*items.get(table, []), *entries]
        merged["UnprocessedItems"] = items
        return merged
    responses: dict[str, list[Any]] = dict(merged.get("Responses") or {})
    for table in request.get("RequestItems", {}):
        responses.setdefault(table, [])
    merged["Responses"] = responses
    keys: dict[str, Wire] = dict(merged.get("UnprocessedKeys") or {})
    for table, entry in split.held.items():
        if table in keys:
            keys[table] = {**keys[table], "Keys": [*keys[table]["Keys"], *entry["Keys"]]}
        else:
            keys[table] = entry
    merged["UnprocessedKeys"] = keys
    return merged


# ---------------------------------------------------------------------- responses


def _parse(raw: bytes) -> Wire:
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _with_crc(headers: Mapping[str, str], body: bytes) -> CIMultiDict[str]:
    out = CIMultiDict(headers)
    out["x-amz-crc32"] = str(zlib.crc32(body))
    return out


def _error(status: int, code: str) -> _Reply:
    body = orjson.dumps({"__type": _ERROR_PREFIX + code, "message": _MESSAGES[code]})
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": uuid.uuid4().hex,
    }
    return _Reply(status, _with_crc(headers, body), body)


def _rewritten(original: _Reply | None, data: Wire) -> _Reply:
    """A 200 answer with a new body: the upstream's headers, the CRC32 recomputed."""
    body = orjson.dumps(data)
    headers: Mapping[str, str] = (
        original.headers if original else {"Content-Type": "application/x-amz-json-1.0"}
    )
    return _Reply(200, _with_crc(headers, body), body)


def _respond(reply: _Reply) -> web.Response:
    headers = CIMultiDict((k, v) for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP)
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _drop(request: web.Request, reset: bool) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER with a zero timeout turns close() into a TCP reset.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    # Nothing can be written any more; aiohttp discards this answer on the closed transport.
    return web.Response(status=599)
