"""Client CPU per GetItem and PutItem of adyn's HTTPTransport against raw aiobotocore and aiodynamo.

Each contender sends the same calls, one after another, to the keep-alive stub server
(`benchmarks.stub_server`, its own process, so its CPU is not counted). The figure is
`time.process_time` per call, the median of several rounds; lower is better.

Run: `python -m benchmarks.bench_transport [--calls 3000] [--rounds 5]`
(aiodynamo is optional: `uv pip install aiodynamo`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from .contenders.base import REGION, STATIC_CREDENTIALS
from .data import GET_KEY, TABLE, wire_item

Op = Callable[[], Awaitable[Any]]


async def adyn_transport(stack: AsyncExitStack, url: str) -> dict[str, Op]:
    from adyn._http import HTTPTransport

    transport = await stack.enter_async_context(
        HTTPTransport(endpoint_url=url, region_name=REGION, **STATIC_CREDENTIALS)
    )
    get = {"TableName": TABLE, "Key": {name: {"S": value} for name, value in GET_KEY.items()}}
    put = {"TableName": TABLE, "Item": wire_item("bench", 1)}

    async def get_item() -> Any:
        return await transport.call("dynamodb", "GetItem", get, idempotent=True)

    async def put_item() -> Any:
        return await transport.call("dynamodb", "PutItem", put, idempotent=False)

    return {"get": get_item, "put": put_item}


async def aiobotocore_raw(stack: AsyncExitStack, url: str) -> dict[str, Op]:
    from aiobotocore.session import get_session

    client = await stack.enter_async_context(
        get_session().create_client(
            "dynamodb", endpoint_url=url, region_name=REGION, **STATIC_CREDENTIALS
        )
    )
    key = {name: {"S": value} for name, value in GET_KEY.items()}
    item = wire_item("bench", 1)
    item["blob"] = {"B": b"\x00\x01binary"}  # botocore takes raw bytes

    async def get_item() -> Any:
        return await client.get_item(TableName=TABLE, Key=key)

    async def put_item() -> Any:
        return await client.put_item(TableName=TABLE, Item=item)

    return {"get": get_item, "put": put_item}


async def aiodynamo_client(stack: AsyncExitStack, url: str) -> dict[str, Op]:
    import aiohttp
    from aiodynamo.client import Client
    from aiodynamo.credentials import Key, StaticCredentials
    from aiodynamo.http.aiohttp import AIOHTTP
    from yarl import URL

    from .data import plain_item

    http = await stack.enter_async_context(aiohttp.ClientSession())
    key = Key(STATIC_CREDENTIALS["aws_access_key_id"], STATIC_CREDENTIALS["aws_secret_access_key"])
    client = Client(AIOHTTP(http), StaticCredentials(key), REGION, endpoint=URL(url))
    table = client.table(TABLE)
    item = plain_item("bench", 1)

    async def get_item() -> Any:
        return await table.get_item(GET_KEY)

    async def put_item() -> Any:
        return await table.put_item(item)

    return {"get": get_item, "put": put_item}


CONTENDERS = {
    "adyn HTTPTransport": adyn_transport,
    "raw aiobotocore": aiobotocore_raw,
    "aiodynamo": aiodynamo_client,
}


async def cpu_per_call(op: Op, calls: int) -> tuple[float, float]:
    """CPU seconds per call: (user + system, user only). System time is mostly the kernel's
    loopback socket work, which every contender pays alike."""
    gc.collect()
    start = os.times()
    for _ in range(calls):
        await op()
    end = os.times()
    user = end.user - start.user
    return (user + end.system - start.system) / calls, user / calls


async def run(url: str, calls: int, rounds: int) -> dict[str, dict[str, tuple[float, float]]]:
    results: dict[str, dict[str, tuple[float, float]]] = {}
    async with AsyncExitStack() as stack:
        ops: dict[str, dict[str, Op]] = {}
        for name, make in CONTENDERS.items():
            try:
                ops[name] = await make(stack, url)
            except ImportError as exc:
                print(f"{name}: skipped ({exc})", file=sys.stderr)
        for by_case in ops.values():
            for op in by_case.values():  # warm up: connections, caches, first-call paths
                for _ in range(200):
                    await op()
        for case in ("get", "put"):
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ops}
            for _ in range(rounds):  # interleaved, so drift in the machine hits every contender
                for name, by_case in ops.items():
                    samples[name].append(await cpu_per_call(by_case[case], calls))
            for name, values in samples.items():
                total = statistics.median(value[0] for value in values)
                user = statistics.median(value[1] for value in values)
                results.setdefault(name, {})[case] = (total, user)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.stub_server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())
        url = f"http://127.0.0.1:{ports['port']}"
        results = asyncio.run(run(url, args.calls, args.rounds))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    base = results.get("aiodynamo")
    print("CPU us per call, user+system (user only); ratio to aiodynamo on user+system")
    print(f"{'contender':<22}{'GetItem':>16}{'PutItem':>16}{'get':>8}{'put':>8}")
    for name, figures in results.items():
        cells = [f"{figures[c][0] * 1e6:7.1f} ({figures[c][1] * 1e6:5.1f})" for c in ("get", "put")]
        ratios = [f"{figures[c][0] / base[c][0]:.2f}x" if base else "-" for c in ("get", "put")]
        print(f"{name:<22}{cells[0]:>16}{cells[1]:>16}{ratios[0]:>8}{ratios[1]:>8}")


if __name__ == "__main__":
    main()
