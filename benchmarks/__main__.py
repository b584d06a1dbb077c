"""Run every benchmark case against every contender and print the ratios.

    python -m benchmarks            # the full run (50 minutes on 2 busy shared cores)
    python -m benchmarks --quick    # a smoke run: every case, small counts
    python -m benchmarks --markdown # tables in Markdown (the body of docs/performance.md)
    python -m benchmarks --quick --reps 1 --check   # CI smoke: fails if an adyn case fails

The stub DynamoDB server runs in its own process, and so does each contender, so the client CPU
measured (`time.process_time`, median of several repetitions) is that contender's alone.
Repetitions are interleaved across contenders (rep 1 of everyone, then rep 2, ...) so a burst of
load from elsewhere on the machine touches every contender alike. Contenders that need another
interpreter or pinned dependencies run in virtualenvs of their own (benchmarks/envs.py).

Cases are listed in benchmarks/cases.py (`CASES`, and `SUITES` for adyn-only benchmark modules
such as streams); contenders in benchmarks/contenders/__init__.py (`REGISTRY`).
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any

import orjson

from .cases import CASES, SUITES, Case
from .contenders import REGISTRY
from .envs import Unavailable, ensure
from .report import Result, Results, goals_table, machine, results_tables, stream_rate

ROOT = Path(__file__).resolve().parent.parent
ADYN_KEYS = ("adyn",)
DEFAULT_ORDER = tuple(REGISTRY)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), src, env.get("PYTHONPATH")) if p)
    # Static credentials everywhere; never look for an instance metadata service.
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # the stub accepts any signature
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
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

    def __init__(self, args: list[str], log: IO[str], python: str = sys.executable) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [python, *args],
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
            return {"error": f"process exited (code {self.proc.poll()}); see --log"}
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def request(self, message: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
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


class Run:
    """One benchmark run: the stub server, a worker per contender, the results."""

    def __init__(self, args: argparse.Namespace, log: IO[str]) -> None:
        self.args = args
        self.log = log
        self.keys = [k for k in DEFAULT_ORDER if not args.only or k in args.only]
        self.cases = [c for c in CASES if not args.cases or c.key in args.cases]
        self.quick = ["--quick"] if args.quick else []
        self.reps = args.reps or (2 if args.quick else 5)
        self.pythons: dict[str, str] = {}
        self.failed: dict[str, str] = {}  # contender -> why it cannot run at all
        self.unsupported: dict[str, dict[str, str]] = {}
        self.workers: dict[str, Process] = {}
        self.infos: dict[str, dict[str, Any]] = {}  # the isolated workers' versions
        self.results: Results = {case.key: {} for case in self.cases}
        self.endpoints: dict[str, str] = {}

    def fail(self, key: str, why: str) -> None:
        self.failed[key] = why
        print(f"  {key}: n/a: {why}", file=sys.stderr)

    def interpreters(self) -> None:
        for key in self.keys:
            env = REGISTRY[key].env
            if not env:
                self.pythons[key] = sys.executable
                continue
            try:
                self.pythons[key] = ensure(env, self.log, self.args.python312)
            except Unavailable as exc:
                self.fail(key, str(exc))

    def start(self) -> Process:
        server = Process(
            [
                "-m",
                "benchmarks.stub_server",
                "--latency",
                str(self.args.latency),
                "--page-latency",
                str(self.args.page_latency),
                *self.quick,
            ],
            self.log,
        )
        ports = server.receive(60)
        if "port" not in ports:
            raise SystemExit(f"the stub server did not start: {_describe(ports)}")
        self.endpoints = {
            "url": f"http://127.0.0.1:{ports['port']}",
            "latency_url": f"http://127.0.0.1:{ports['latency_port']}",
            "page_url": f"http://127.0.0.1:{ports['page_port']}",
        }
        live = [k for k in self.keys if k in self.pythons]
        for key in live:
            args = ["-m", "benchmarks.worker", key, *self.quick]
            self.workers[key] = Process(args, self.log, self.pythons[key])
        for worker in self.workers.values():  # open them all at once: imports run in parallel
            worker.send({"cmd": "open", **self.endpoints})
        for key, worker in self.workers.items():
            reply = worker.receive(180)
            if reply.get("ok"):
                self.unsupported[key] = reply.get("unsupported", {})
                if REGISTRY[key].env:
                    self.infos[key] = reply
            else:
                self.fail(key, _describe(reply))
        return server

    def measure(self) -> None:
        for case in self.cases:
            by = self.results[case.key]
            for key in self.keys:
                if case.key not in self.unsupported.get(key, {}):
                    by[key] = Result(na=self.failed.get(key))
                else:
                    by[key] = Result(na=self.unsupported[key][case.key])
            started = time.perf_counter()
            reps = min(self.reps, case.reps) if case.reps else self.reps
            if case.kind == "cold" and reps > 1:
                self.rounds(case, by, 1, record=False)  # page cache and .pyc files warm
            self.rounds(case, by, reps)
            print(f"  {case.key}: {time.perf_counter() - started:.1f}s", file=sys.stderr)

    def rounds(self, case: Case, by: dict[str, Result], reps: int, record: bool = True) -> None:
        for rep in range(reps):
            live = [k for k in by if by[k].na is None]
            shift = rep % len(live) if live else 0
            for key in live[shift:] + live[:shift]:
                if case.kind == "cold":
                    reply = self.cold_start(key)
                elif case.kind == "memory" and not self.args.quick:
                    reply = self.fresh(key, case)
                else:
                    reply = self.workers[key].request({"cmd": "run", "case": case.key})
                self.record(by[key], reply, record)

    @staticmethod
    def record(result: Result, reply: dict[str, Any], keep: bool) -> None:
        if "metrics" not in reply:
            result.na = _describe(reply)
        elif keep:
            result.add(reply["metrics"])

    def cold_start(self, key: str) -> dict[str, Any]:
        args = ["-m", "benchmarks.coldstart", key, self.endpoints["url"]]
        child = Process(args, self.log, self.pythons[key])
        try:
            reply = child.receive(120)
            wall = time.perf_counter() - child.started
        finally:
            child.stop()
        if "cpu" not in reply:
            return reply
        if not reply.get("found"):
            return {"error": "the first GetItem found no item"}
        return {"metrics": {"wall": wall, "cpu": reply["cpu"]}}

    def fresh(self, key: str, case: Case) -> dict[str, Any]:
        """One repetition in a new worker process, so that RSS starts from a small heap (not in
        a --quick run, where the long-lived worker does it: the smoke run stays short)."""
        args = ["-m", "benchmarks.worker", key, *self.quick]
        worker = Process(args, self.log, self.pythons[key])
        try:
            opened = worker.request({"cmd": "open", **self.endpoints}, timeout=180)
            if not opened.get("ok"):
                return opened
            return worker.request({"cmd": "run", "case": case.key})
        finally:
            if worker.proc.poll() is None:
                worker.request({"cmd": "close"}, timeout=30)
            worker.stop()

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                worker.request({"cmd": "close"}, timeout=30)
            worker.stop()

    def suites(self) -> dict[str, tuple[dict[str, Any] | None, str]]:
        """Each adyn-only benchmark module's figures, or why it did not run."""
        done: dict[str, tuple[dict[str, Any] | None, str]] = {}
        for suite in SUITES:
            if self.args.cases and suite.key not in self.args.cases:
                done[suite.key] = (None, "not selected")
                continue
            if find_spec(suite.module) is None:
                done[suite.key] = (None, f"{suite.module} is not there")
                continue
            worker = Process(["-m", "benchmarks.worker", "suite", *self.quick], self.log)
            try:
                reply = worker.request({"cmd": "suite", "module": suite.module}, timeout=600)
                done[suite.key] = (
                    (reply["result"], "") if reply.get("ok") else (None, _describe(reply))
                )
            finally:
                worker.request({"cmd": "close"}, timeout=30)
                worker.stop()
        return done


@dataclass
class Measured:
    """What one run measured, enough to print its tables again (`--json`, `--from-json`)."""

    results: Results
    suites: dict[str, Any]  # suite key -> figures, or {"na": why}
    machine: list[str]
    keys: list[str]
    reps: int
    seconds: float
    quick: bool

    def dump(self) -> bytes:
        raw = dict(vars(self))
        raw["results"] = {
            case: {k: {"samples": r.samples, "na": r.na} for k, r in by.items()}
            for case, by in self.results.items()
        }
        return orjson.dumps(raw, option=orjson.OPT_INDENT_2)

    @classmethod
    def load(cls, data: bytes) -> Measured:
        raw = orjson.loads(data)
        raw["results"] = {
            case: {k: Result(r["samples"], r["na"]) for k, r in by.items()}
            for case, by in raw["results"].items()
        }
        return cls(**raw)


def render(measured: Measured, md: bool) -> tuple[str, list[str]]:
    """The machine, every case's table, the suites and the goals; and the goals not met."""
    labels = {key: entry.label for key, entry in REGISTRY.items()}
    out: list[str] = []
    bullet = "- " if md else "  "
    out += ["### Machine" if md else "Machine", ""]
    out += [bullet + line for line in measured.machine]
    quick_note = " (--quick: counts too small to read)" if measured.quick else ""
    out.append(
        f"{bullet}Run: {measured.reps} repetition(s) per case (3 for the heaviest), median; "
        f"{measured.seconds:.0f}s in all{quick_note}"
    )
    out += ["", "### Results" if md else "Results", ""]
    out.append(
        "Client CPU is `time.process_time` of the client's process (every thread). Each "
        "ratio 'vs adyn' reads the same way: above 1, adyn is better (for a cost: contender / "
        "adyn; for a throughput: adyn / contender)."
    )
    out += ["", results_tables(measured.results, labels, md), ""]
    for suite in SUITES:
        figures = measured.suites.get(suite.key) or {"na": "not run"}
        if "na" in figures:
            out.append(f"{suite.title}: n/a: {figures['na']}")
        elif suite.key == "stream" and (rate := stream_rate(figures)) is not None:
            out.append(f"{suite.title}: {rate:,.0f} ({figures})")
        elif suite.key == "backfill":
            from .bench_backfill import describe

            out.append(describe(figures))
        else:
            out.append(f"{suite.title}: {figures}")
    out += ["", "### Goals" if md else "Goals (ratios from this run)", ""]

    def peers() -> list[str]:
        return [k for k in measured.keys if k in REGISTRY and not REGISTRY[k].reference]

    stream = measured.suites.get("stream")
    text, missed = goals_table(
        measured.results, stream if stream and "na" not in stream else None, peers, md
    )
    out.append(text)
    return "\n".join(out), missed


DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- benchmark tables: begin -->", "<!-- benchmark tables: end -->"


def write_docs(text: str, path: Path = DOCS) -> None:
    """Replace what stands between the markers in docs/performance.md with `text`."""
    page = path.read_text(encoding="utf-8")
    head, begin, rest = page.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers")
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--reps", type=int, default=0, help="repetitions per case (default 5)")
    parser.add_argument("--latency", type=float, default=0.005, help="the slow server's latency")
    parser.add_argument(
        "--page-latency", type=float, default=0.002, help="the paged scan server's latency"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(REGISTRY), help="contenders to run")
    parser.add_argument(
        "--cases",
        nargs="*",
        choices=[c.key for c in CASES] + [s.key for s in SUITES],
        help="cases to run",
    )
    parser.add_argument("--python312", help="the Python 3.12 interpreter for dynamoxy")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="put this run's Markdown tables into docs/performance.md (between its markers)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if an adyn case failed (for a CI smoke run)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="print (or --write-docs) a saved run's tables; measure nothing",
    )
    parser.add_argument("--log", type=Path, help="the children's stderr (default: discarded)")
    args = parser.parse_args(argv)

    if args.from_json:
        measured = Measured.load(args.from_json.read_bytes())
    else:
        measured = measure(args)
        if args.json:
            args.json.write_bytes(measured.dump())
    text, missed = render(measured, args.markdown or args.write_docs)
    print()
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"\nwrote the tables into {DOCS.relative_to(ROOT)}", file=sys.stderr)
    elif missed:
        print("\nNot met:\n  " + "\n  ".join(missed))

    failures = [
        f"{case} / {key}: {result.na}"
        for case, by in measured.results.items()
        for key, result in by.items()
        if key in ADYN_KEYS and result.na is not None
    ]
    if args.check and failures:
        print("\nadyn failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        raise SystemExit(1)


def measure(args: argparse.Namespace) -> Measured:
    from .worker import versions  # the runner's own environment is the main one

    started = time.perf_counter()
    log: IO[str]
    with open(args.log or os.devnull, "w", encoding="utf-8") as log:
        run = Run(args, log)
        run.interpreters()
        server = run.start()
        print(f"  contenders open: {time.perf_counter() - started:.1f}s", file=sys.stderr)
        try:
            run.measure()
        finally:
            run.close()
            server.stop()
        begun = time.perf_counter()
        suites = run.suites()
        print(f"  suites: {time.perf_counter() - begun:.1f}s", file=sys.stderr)
    return Measured(
        results=run.results,
        suites={
            key: figures if figures is not None else {"na": why}
            for key, (figures, why) in suites.items()
        },
        machine=machine(run.infos, versions()),
        keys=run.keys,
        reps=run.reps,
        seconds=time.perf_counter() - started,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
