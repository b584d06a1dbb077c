"""Backfill throughput: items per second through `engine.backfill` on the stub server.

The stub answers every Scan request with one page of 100 benchmark items (20 attributes each)
and no continuation, so a backfill of N items runs N / 100 segments. The function changes one
field of every object; each object then costs one conditional UpdateItem (`atomic=True`: the
condition compares every attribute that was read), which the stub accepts. The figures are items
per second of wall-clock time and client CPU per item (the stub is another process), median of
the repetitions, after one untimed warm-up run.

    python -m benchmarks.bench_backfill [--quick]       # starts its own stub server
    python -m benchmarks.bench_backfill --url URL       # a stub server that is already running
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

ROOT = Path(__file__).resolve().parent.parent
PAGE = 100  # items the stub returns per Scan request


def bump(obj: Any) -> Any:
    obj.count += 1
    return obj


async def measure(url: str, items: int, reps: int) -> dict[str, Any]:
    from adyn import Engine

    from .contenders.adyn_engine import Bench

    segments = max(1, items // PAGE)
    async with Engine(endpoint_url=url) as engine:
        await engine.bind(Bench, create=False)
        await engine.backfill(Bench, bump, segments=min(segments, 4))  # warm-up
        rates, cpu = [], []
        for _ in range(reps):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            report = await engine.backfill(Bench, bump, segments=segments)
            wall, spent = time.perf_counter() - wall0, time.process_time() - cpu0
            if report.failed or report.changed != segments * PAGE:
                raise RuntimeError(f"the backfill did not change every item: {report}")
            rates.append(report.changed / wall)
            cpu.append(spent / report.changed)
    return {
        "items": segments * PAGE,
        "segments": segments,
        "reps": reps,
        "items_per_s": statistics.median(rates),
        "cpu_us_per_item": statistics.median(cpu) * 1e6,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Start a stub server, measure, stop it: `{"items_per_s": ..., ...}` or `{"error": ...}`."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    path = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env["PYTHONPATH"] = path
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.stub_server", "--latency", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
    )
    try:
        assert server.stdout is not None
        ports = orjson.loads(server.stdout.readline() or "{}")
        if "port" not in ports:
            return {"error": "the stub server did not start"}
        client = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_backfill",
                "--url",
                f"http://127.0.0.1:{ports['port']}",
                *(["--quick"] if quick else []),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        lines = client.stdout.strip().splitlines()
        if client.returncode != 0 or not lines:
            return {"error": (client.stderr.strip().splitlines() or ["failed"])[-1]}
        result: dict[str, Any] = orjson.loads(lines[-1])
        return result
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def describe(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"Backfill: n/a: {result['error']}"
    return (
        f"Backfill: {result['items_per_s']:,.0f} items/s, {result['cpu_us_per_item']:,.0f} us "
        f"of client CPU per item ({result['items']:,} items in {result['segments']} segments, "
        f"one conditional UpdateItem each, median of {result['reps']})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running stub server (default: start one)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    if args.url is None:
        print(describe(run(args.quick)))
        return
    items, reps = (1_000, 1) if args.quick else (10_000, 5)
    result = anyio.run(measure, args.url, items, reps)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
