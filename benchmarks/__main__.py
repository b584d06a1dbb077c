"""Run every benchmark case against every contender and print the ratios.

    python -m benchmarks            # the full run (a few minutes on 2 cores)
    python -m benchmarks --quick    # a smoke run: every case once or twice, small counts
    python -m benchmarks --markdown # tables in Markdown (as in docs/performance.md)
    python -m benchmarks --quick --reps 1 --check   # CI smoke: fails if an adyn case fails

The stub DynamoDB server runs in its own process, and so does each contender, so the client CPU
measured (`time.process_time`, median of several repetitions) is that contender's alone.
Repetitions are interleaved across contenders (rep 1 of everyone, then rep 2, ...) so a burst of
load from elsewhere on the machine touches every contender alike.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any

import orjson

from .cases import CASES
from .contenders import REGISTRY
from .report import Result, Results, goals_table, machine, results_table, stream_rate

ROOT = Path(__file__).resolve().parent.parent
ADYN_KEYS = ("adyn",)
DEFAULT_ORDER = (
    "adyn",
    "aiobotocore",
    "aiobotocore_pool64",
    "aiobotocore_dicts",
    "aiobotocore_pydantic",
    "pynamodb",
    "aiopynamodb",
    "aiodynamo",
    "json",
    "orjson",
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), src, env.get("PYTHONPATH")) if p)
    # Static credentials everywhere; never look for an instance metadata service.
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # the stub accepts any signature
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ):
        env.pop(name, None)
    return env


class Process:
    """A child process spoken to in JSON lines."""

    def __init__(self, args: list[str], log: IO[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=_env(),
            text=True,
        )

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(message).decode() + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return {"error": f"no answer within {timeout:.0f}s"}
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"process exited (code {self.proc.poll()}); see the log"}
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def request(self, message: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
        self.send(message)
        return self.receive(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _describe(reply: dict[str, Any]) -> str:
    return str(reply.get("na") or reply.get("error") or "failed")


def run(args: argparse.Namespace, log: IO[str]) -> tuple[Results, dict[str, Any] | None, str]:
    """Measure everything; return the results, the stream result and why streams did not run."""
    keys = [k for k in DEFAULT_ORDER if not args.only or k in args.only]
    cases = [c for c in CASES if not args.cases or c.key in args.cases]
    reps = args.reps or (2 if args.quick else 5)
    quick = ["--quick"] if args.quick else []

    server = Process(["-m", "benchmarks.stub_server", "--latency", str(args.latency)], log)
    workers: dict[str, Process] = {}
    results: Results = {case.key: {} for case in cases}
    try:
        ports = server.receive(30)
        if "port" not in ports:
            raise SystemExit(f"the stub server did not start: {_describe(ports)}")
        endpoints = {
            "url": f"http://127.0.0.1:{ports['port']}",
            "latency_url": f"http://127.0.0.1:{ports['latency_port']}",
        }
        for key in keys:
            workers[key] = Process(["-m", "benchmarks.worker", key, *quick], log)
        for worker in workers.values():  # open them all at once: imports run in parallel
            worker.send({"cmd": "open", **endpoints})
        failed: dict[str, str] = {}
        unsupported: dict[str, dict[str, str]] = {}
        for key, worker in workers.items():
            reply = worker.receive(120)
            if reply.get("ok"):
                unsupported[key] = reply.get("unsupported", {})
            else:
                failed[key] = _describe(reply)
                print(f"  {key}: n/a: {failed[key]}", file=sys.stderr)

        for case in cases:
            ops = case.quick_ops if args.quick else case.ops
            by = results[case.key]
            for key in keys:
                if case.key not in unsupported.get(key, {}):
                    by[key] = Result(na=failed.get(key))
            started = time.perf_counter()
            for rep in range(reps):
                live = [k for k in by if by[k].na is None]
                shift = rep % len(live) if live else 0
                for key in live[shift:] + live[:shift]:
                    reply = workers[key].request({"cmd": "run", "case": case.key, "ops": ops})
                    if "cpu" not in reply:
                        by[key].na = _describe(reply)
                        continue
                    by[key].cpu.append(reply["cpu"])
                    by[key].throughput.append(reply["ops"] / reply["wall"])
            print(f"  {case.key}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    finally:
        for worker in workers.values():
            if worker.proc.poll() is None:
                worker.request({"cmd": "close"}, timeout=30)
            worker.stop()
        server.stop()

    stream, why = None, ""
    if args.cases and "stream" not in args.cases:
        why = "not selected"
    elif find_spec("benchmarks.bench_stream") is None:
        why = "benchmarks/bench_stream.py is not there"
    else:
        worker = Process(["-m", "benchmarks.worker", "stream", *quick], log)
        try:
            reply = worker.request({"cmd": "stream"}, timeout=300)
            if reply.get("ok"):
                stream = reply["result"]
            else:
                why = _describe(reply)
        finally:
            worker.request({"cmd": "close"}, timeout=30)
            worker.stop()
    return results, stream, why


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--reps", type=int, default=0, help="repetitions per case (default 5)")
    parser.add_argument("--latency", type=float, default=0.005, help="the slow server's latency")
    parser.add_argument("--only", nargs="*", choices=sorted(REGISTRY), help="contenders to run")
    parser.add_argument(
        "--cases", nargs="*", choices=[c.key for c in CASES] + ["stream"], help="cases to run"
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if an adyn contender failed a case (for a CI smoke run)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument("--log", type=Path, help="the children's stderr (default: discarded)")
    args = parser.parse_args(argv)

    if find_spec("adyn") is None:  # run from a checkout: name the source tree's version
        sys.path.insert(0, str(ROOT / "src"))
    labels = {key: label for key, (_, _, label) in REGISTRY.items()}
    started = time.perf_counter()
    log: IO[str]
    with open(args.log or os.devnull, "w", encoding="utf-8") as log:
        results, stream, why = run(args, log)
    elapsed = time.perf_counter() - started

    md = args.markdown
    reps = args.reps or (2 if args.quick else 5)
    print()
    print("## Machine" if md else "Machine")
    for line in machine():
        print(f"- {line}" if md else f"  {line}")
    bullet = "- " if md else "  "
    quick_note = " (--quick)" if args.quick else ""
    print(f"{bullet}Run: {reps} repetition(s) per case, median; {elapsed:.0f}s in all{quick_note}")
    print()
    print("## Results" if md else "Results (client CPU = time.process_time of the client process)")
    print()
    print(results_table(results, labels, md))
    print()
    rate = stream_rate(stream)
    if stream is None:
        print(f"Streams: n/a: {why}")
    elif rate is None:
        print(f"Streams: {stream}")
    else:
        print(f"Streams: {rate:,.0f} records decoded per second ({stream})")
    print()
    print("## Goals" if md else "Goals (ratios from this run)")
    print()
    print(goals_table(results, stream, md))

    if args.json:
        raw = {
            "results": {case: {k: vars(r) for k, r in by.items()} for case, by in results.items()},
            "stream": stream,
            "machine": machine(),
        }
        args.json.write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))

    failures = [
        f"{case} / {key}: {result.na}"
        for case, by in results.items()
        for key, result in by.items()
        if key in ADYN_KEYS and result.na is not None
    ]
    if args.check and failures:
        print("\nadyn failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
