"""One contender in its own process, driven by the runner over standard input and output.

Commands are JSON lines; each gets one JSON line back:

- `{"cmd": "open", "url": ..., "latency_url": ..., "page_url": ...}` -> `{"ok": true,
  "unsupported": {case: reason}, "python": version, "versions": {package: version}}` or
  `{"error": ...}`;
- `{"cmd": "run", "case": KEY}` -> `{"metrics": {name: value}}`, `{"na": reason}` or
  `{"error": ...}`: one repetition of the case (its counts from `--quick` or not);
- `{"cmd": "suite", "module": NAME}` -> `{"ok": true, "result": NAME.run(...)}`;
- `{"cmd": "close"}` -> `{"ok": true}`, then the process exits.

CPU is `time.process_time` of this process only (the stub server is another process); it
counts every thread of the process, so the Rust cores' own threads are in their figures. A case
is warmed up once, untimed, before its first repetition. The collector runs with Python's
default settings, as in a service; a full collection before each repetition keeps repetitions
alike.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import platform
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from importlib import import_module, metadata
from typing import Any, TextIO

import orjson

from .cases import BY_KEY, Case
from .contenders import load
from .contenders.base import Contender, Endpoints, NotApplicable
from .contenders.reference import OrjsonLoads
from .data import page, plain_item

_PAGE_BODY = orjson.dumps(page(1000))
_BARE_PARSE = OrjsonLoads().decode_1000  # the decode case's reference, timed in each worker
PACKAGES = (
    "adyn",
    "aiobotocore",
    "botocore",
    "boto3",
    "aioboto3",
    "pydantic",
    "orjson",
    "aiohttp",
    "pynamodb",
    "aiopynamodb",
    "aiodynamo",
    "pydynox",
    "dynamoxy",
)


def versions() -> dict[str, str]:
    """The installed version of every benchmarked package this interpreter has."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            try:  # run from the source tree (PYTHONPATH=src), not installed
                module = import_module(name)
            except ImportError:
                continue
            found[name] = f"{getattr(module, '__version__', '?')} (source tree)"
    return found


def _rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Harness:
    """Times one contender's operations."""

    def __init__(self, contender: Contender, quick: bool) -> None:
        self.contender = contender
        self.quick = quick
        self.warmed: set[str] = set()

    def operation(self, case: Case) -> Callable[..., Any]:
        reason = type(self.contender).unsupported.get(case.key)
        method = getattr(self.contender, case.call, None)
        if case.kind == "memory" and method is None:  # the references: the page body parsed
            method = getattr(self.contender, "decode_1000", None)
        if reason is not None or method is None:
            raise NotApplicable(reason or "not implemented by this contender")
        return method  # type: ignore[no-any-return]

    def arguments(self, case: Case, op: Callable[..., Any], n: int) -> list[Any] | None:
        """What each of `n` operations is called with (built before timing), or None."""
        build = self.contender.build
        if case.key == "put_one":
            return [build(plain_item("bench", 1)) for _ in range(n)]
        if case.key in ("batch_write", "transaction_25"):
            size = case.items(self.quick)
            return [[build(plain_item(case.key, i)) for i in range(size)] for _ in range(n)]
        if getattr(op, "__name__", "") == "decode_1000":
            return [_PAGE_BODY] * n
        return None

    async def run(self, case: Case) -> dict[str, Any]:
        op = self.operation(case)
        n = case.count(self.quick)
        if case.kind == "memory":
            return await self.memory(case, op)
        # Warm up once, untimed; an operation over thousands of items (a batch, a scan) is its
        # own warm-up: first-call costs vanish in it. A --quick run's figures are not for
        # reading: it skips warm-ups.
        if case.key not in self.warmed and case.size <= 1000 and not self.quick:
            await self.measure(case, op, max(2, n // 5))
        self.warmed.add(case.key)
        return await self.measure(case, op, n)

    async def measure(self, case: Case, op: Callable[..., Any], n: int) -> dict[str, Any]:
        args = self.arguments(case, op, n)
        is_async = inspect.iscoroutinefunction(op)
        tasks = case.tasks(self.quick)
        if tasks > 1 and not is_async:
            raise NotApplicable("synchronous client")
        gc.collect()
        latencies: list[float] = []
        items = 0  # what a scan returns: the items it read
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        here: dict[str, Any] = {}
        if case.settle:
            reference = _BARE_PARSE if "parse_here" in case.figures else None
            cpu, wall = await self._settled(op, args, n, is_async, reference, here)
        else:
            if tasks > 1:
                await self._concurrently(
                    op, n, tasks, latencies if case.kind == "fairness" else None
                )
            else:
                for i in range(n):
                    call = op(args[i]) if args is not None else op()
                    result = await call if is_async else call
                    if type(result) is int:
                        items += result
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
        metrics: dict[str, Any] = {"cpu": cpu / n, "throughput": n / wall, **here}
        if case.size and "throughput" in case.figures:  # a scan: items per second
            expected = case.items(self.quick) * n
            if items != expected:
                raise RuntimeError(f"read {items} items, expected {expected}")
            metrics["throughput"] = items / wall
        if latencies:
            p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
            metrics.update(p50=p50, p99=p99, p99_p50=p99 / p50)
        return {"metrics": metrics}

    @staticmethod
    async def _concurrently(
        op: Callable[..., Any], n: int, tasks: int, latencies: list[float] | None
    ) -> None:
        per_task, extra = divmod(n, tasks)
        clock = time.perf_counter

        async def task(count: int) -> None:
            for _ in range(count):
                start = clock()
                await op()
                if latencies is not None:
                    latencies.append(clock() - start)

        counts = [per_task + (1 if i < extra else 0) for i in range(tasks)]
        await asyncio.gather(*(task(c) for c in counts))

    @staticmethod
    async def _settled(
        op: Callable[..., Any],
        args: list[Any] | None,
        n: int,
        is_async: bool,
        reference: Callable[[Any], Any] | None = None,
        here: dict[str, Any] | None = None,
    ) -> tuple[float, float]:
        """Each operation after a full collection. With `reference`, each one is followed (after
        another collection) by `reference` on the same argument, timed apart into
        `here["parse_here"]`: the reference measured on this process's heap, as it is between
        this contender's operations. (The heap a process has moves what a page costs: a bare
        parse in adyn's worker took 9.8 ms where the reference's own worker took 5.5 ms.)"""
        cpu = wall = reference_cpu = 0.0
        for i in range(n):
            call_args = () if args is None else (args[i],)
            gc.collect()
            wall0 = time.perf_counter()
            cpu0 = time.process_time()
            if is_async:
                await op(*call_args)
            else:
                op(*call_args)
            cpu += time.process_time() - cpu0
            wall += time.perf_counter() - wall0
            if reference is not None:
                gc.collect()
                cpu0 = time.process_time()
                reference(*call_args)
                reference_cpu += time.process_time() - cpu0
        if reference is not None and here is not None:
            here["parse_here"] = reference_cpu / n
        return cpu, wall

    async def memory(self, case: Case, op: Callable[..., Any]) -> dict[str, Any]:
        """Load `size` objects in 1,000-item pages and keep them; what do they retain?

        Two passes: RSS and the count of GC-tracked objects without tracing, then the Python
        heap with tracemalloc (which sees Python's allocators only: memory a Rust core keeps
        shows in RSS). A first page is loaded and dropped before either, so caches are warm.
        """
        pages = max(1, case.items(self.quick) // 1000)
        args = self.arguments(case, op, pages)
        is_async = inspect.iscoroutinefunction(op)

        async def load() -> list[Any]:
            kept = []
            for i in range(pages):
                call = op(args[i]) if args is not None else op()
                kept.append(await call if is_async else call)
            return kept

        if self.quick:  # a --quick run only checks that the case runs: one untraced load
            kept = await load()
            objects = sum(len(page) for page in kept)
            return (
                {"metrics": {"heap": 0.0, "rss": 0.0, "gc_tracked": 0.0}}
                if objects
                else {"error": "no objects"}
            )
        warm = op(*(args[:1] if args is not None else ()))
        await warm if is_async else None
        del warm
        gc.collect()
        rss0, tracked0 = _rss(), len(gc.get_objects())
        kept = await load()
        gc.collect()
        rss, tracked = _rss() - rss0, len(gc.get_objects()) - tracked0
        del kept
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            kept = await load()
            gc.collect()
            heap = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        objects = sum(len(page) for page in kept)
        del kept
        return {
            "metrics": {
                "heap": heap / objects,
                "rss": rss / objects,
                "gc_tracked": tracked / objects,
            }
        }


def _error(exc: BaseException) -> dict[str, Any]:
    traceback.print_exc(file=sys.stderr)
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return {"error": text[:200]}


def _suite(module_name: str, quick: bool) -> dict[str, Any]:
    module = import_module(module_name)
    kwargs: dict[str, Any] = {}
    if quick and "quick" in inspect.signature(module.run).parameters:
        kwargs["quick"] = True
    result: dict[str, Any] = module.run(**kwargs)
    return result


def serve(key: str, quick: bool, out: TextIO) -> None:
    """Answer the runner's commands until `close` or end of input."""
    runner = asyncio.Runner()
    harness: Harness | None = None
    load_error: dict[str, Any] | None = None
    if key != "suite":
        try:
            harness = Harness(load(key), quick)
        except Exception as exc:
            load_error = _error(exc)

    def reply(message: dict[str, Any]) -> None:
        out.write(orjson.dumps(message, default=str).decode() + "\n")
        out.flush()

    with runner:
        for line in sys.stdin:
            command = orjson.loads(line)
            name = command["cmd"]
            if name == "close":
                if harness is not None and load_error is None:
                    try:
                        runner.run(harness.contender.close())
                    except Exception as exc:
                        _error(exc)
                reply({"ok": True})
                return
            if name == "suite":
                try:
                    reply({"ok": True, "result": _suite(command["module"], quick)})
                except Exception as exc:
                    reply(_error(exc))
                continue
            if load_error is not None or harness is None:
                reply(load_error or {"error": "no contender"})
                continue
            try:
                if name == "open":
                    endpoints = Endpoints(
                        command["url"], command["latency_url"], command["page_url"]
                    )
                    runner.run(harness.contender.open(endpoints))
                    reply(
                        {
                            "ok": True,
                            "unsupported": type(harness.contender).unsupported,
                            "python": platform.python_version(),
                            "versions": versions(),
                        }
                    )
                elif name == "run":
                    reply(runner.run(harness.run(BY_KEY[command["case"]])))
                else:
                    reply({"error": f"unknown command {name!r}"})
            except NotApplicable as exc:
                reply({"na": str(exc)})
            except Exception as exc:
                reply(_error(exc))


def main() -> None:
    # Keep the protocol channel private: anything a library prints goes to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr
    serve(sys.argv[1], "--quick" in sys.argv[2:], out)


if __name__ == "__main__":
    main()
