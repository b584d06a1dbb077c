"""One contender in its own process, driven by the runner over standard input and output.

Commands are JSON lines; each gets one JSON line back:

- `{"cmd": "open", "url": ..., "latency_url": ...}` -> `{"ok": true, "unsupported": {case:
  reason}}` or `{"error": ...}`
- `{"cmd": "run", "case": KEY, "ops": N}` -> `{"cpu": s/op, "wall": s, "ops": N}`,
  `{"na": reason}` or `{"error": ...}`: one repetition of N operations;
- `{"cmd": "stream"}` -> the dict returned by `benchmarks.bench_stream.run()`;
- `{"cmd": "close"}` -> `{"ok": true}`, then the process exits.

CPU is `time.process_time` of this process only (the stub server is another process). A case is
warmed up once, untimed, before its first repetition. The collector runs with Python's default
settings, as in a service; a full collection before each repetition keeps repetitions alike.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from .cases import BY_KEY, Case
from .contenders import load
from .contenders.base import Contender, Endpoints, NotApplicable
from .data import page

_PAGE_BODY = orjson.dumps(page(1000))


class Harness:
    """Times one contender's operations."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.warmed: set[str] = set()

    def operation(self, case: Case) -> Callable[..., Any]:
        reason = type(self.contender).unsupported.get(case.key)
        method = getattr(self.contender, case.key, None)
        if reason is not None or method is None:
            raise NotApplicable(reason or "not implemented by this contender")
        return method  # type: ignore[no-any-return]

    def arguments(self, case: Case, n: int) -> list[Any] | None:
        if case.key == "put_one":
            return self.contender.prepare_put(n)
        if case.key == "decode_1000":
            return [_PAGE_BODY] * n
        return None

    async def run(self, case: Case, n: int) -> dict[str, Any]:
        op = self.operation(case)
        if case.key not in self.warmed:
            await self._repeat(case, op, max(2, n // 5))
            self.warmed.add(case.key)
        return await self._repeat(case, op, n)

    async def _repeat(self, case: Case, op: Callable[..., Any], n: int) -> dict[str, Any]:
        args = self.arguments(case, n)
        is_async = inspect.iscoroutinefunction(op)
        gc.collect()
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        if case.settle:
            return await self._settled(op, args, n, is_async)
        if case.concurrency > 1:
            if not is_async:
                raise NotApplicable("synchronous client")
            per_task, extra = divmod(n, case.concurrency)

            async def task(count: int) -> None:
                for _ in range(count):
                    await op()

            counts = [per_task + (1 if i < extra else 0) for i in range(case.concurrency)]
            await asyncio.gather(*(task(c) for c in counts))
        elif args is not None:
            if is_async:
                for arg in args:
                    await op(arg)
            else:
                for arg in args:
                    op(arg)
        elif is_async:
            for _ in range(n):
                await op()
        else:
            for _ in range(n):
                op()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        return {"cpu": cpu / n, "wall": wall, "ops": n}

    @staticmethod
    async def _settled(
        op: Callable[..., Any], args: list[Any] | None, n: int, is_async: bool
    ) -> dict[str, Any]:
        cpu = wall = 0.0
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
        return {"cpu": cpu / n, "wall": wall, "ops": n}


def _error(exc: BaseException) -> dict[str, Any]:
    traceback.print_exc(file=sys.stderr)
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return {"error": text[:200]}


def _stream() -> dict[str, Any]:
    from . import bench_stream  # type: ignore[attr-defined]

    kwargs: dict[str, Any] = {}
    if "--quick" in sys.argv and "quick" in inspect.signature(bench_stream.run).parameters:
        kwargs["quick"] = True
    result: dict[str, Any] = bench_stream.run(**kwargs)
    return result


def serve(key: str, out: TextIO) -> None:
    """Answer the runner's commands until `close` or end of input."""
    runner = asyncio.Runner()
    harness: Harness | None = None
    load_error: dict[str, Any] | None = None
    if key != "stream":
        try:
            harness = Harness(load(key))
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
            if name == "stream":
                try:
                    reply({"ok": True, "result": _stream()})
                except Exception as exc:
                    reply(_error(exc))
                continue
            if load_error is not None or harness is None:
                reply(load_error or {"error": "no contender"})
                continue
            try:
                if name == "open":
                    endpoints = Endpoints(command["url"], command["latency_url"])
                    runner.run(harness.contender.open(endpoints))
                    reply({"ok": True, "unsupported": type(harness.contender).unsupported})
                elif name == "run":
                    reply(runner.run(harness.run(BY_KEY[command["case"]], command["ops"])))
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
    serve(sys.argv[1], out)


if __name__ == "__main__":
    main()
