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
import statistics
import subprocess
import sys
import time
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


async def cpu_per_call(op: Op, calls: int) -> float:
    gc.collect()
    start = time.process_time()
    for _ in range(calls):
        await op()
    return (time.process_time() - start) / calls


async def run(url: str, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
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
            samples: dict[str, list[float]] = {name: [] for name in ops}
            for _ in range(rounds):  # interleaved, so drift in the machine hits every contender
                for name, by_case in ops.items():
                    samples[name].append(await cpu_per_call(by_case[case], calls))
            for name, values in samples.items():
                results.setdefault(name, {})[case] = statistics.median(values)
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
    print(f"{'contender':<22}{'GetItem us':>12}{'PutItem us':>12}{'get/aiodynamo':>15}")
    for name, figures in results.items():
        ratio = f"{figures['get'] / base['get']:.2f}x" if base else "-"
        print(f"{name:<22}{figures['get'] * 1e6:>12.1f}{figures['put'] * 1e6:>12.1f}{ratio:>15}")


if __name__ == "__main__":
    main()
