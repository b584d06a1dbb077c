"""The benchmark cases, shared by the runner and the contender workers.

A case is one line in `CASES`: what one operation is (`method`, the contender method that does
it, and `kind`, how the worker drives and measures it), how many operations make a repetition,
and which figures the report shows. To add a case, add a `Case` here and the method to the
contenders that can run it (a contender without it shows "n/a"). A benchmark that measures adyn
on its own, in a module of its own (streams, backfills), is a `Suite`: a module with
`run(quick: bool = False) -> dict` of figures, listed in `SUITES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import PAGED_TOTAL, SCAN_TOTAL

# How each kind of case is driven (benchmarks/worker.py):
#   "ops"      `ops` calls of `method`, one after another, or from `concurrency` tasks at once;
#   "fairness" `concurrency` tasks sharing `ops` calls; every call's latency is kept (p50, p99);
#   "memory"   `size` objects loaded through `method` (1,000-item pages) and kept, in a new
#              worker process per repetition; the memory they retain is measured after a full
#              collection (a --quick run only loads them, in the long-lived worker);
#   "cold"     a fresh process per repetition (benchmarks/coldstart.py), run by the runner;
#              untimed once first (page cache, .pyc files), except in a --quick run.
KINDS = ("ops", "fairness", "memory", "cold")

# What the workers report, per repetition. `better` says which way is good; `scale` and `unit`
# say how to print it.
METRICS: dict[str, tuple[str, str]] = {  # name -> (label, better: "lower" | "higher")
    "cpu": ("client CPU / op", "lower"),
    "throughput": ("throughput", "higher"),
    "wall": ("wall clock", "lower"),
    "p50": ("p50 latency", "lower"),
    "p99": ("p99 latency", "lower"),
    "p99_p50": ("p99 / p50", "lower"),
    "heap": ("Python heap / object", "lower"),
    "rss": ("RSS / object", "lower"),
    "gc_tracked": ("GC-tracked objects / object", "lower"),
    # the decode case: a bare orjson.loads of the same body, timed in the contender's own
    # process, each one right after one of the contender's operations (see worker._settled)
    "parse_here": ("orjson.loads here", "lower"),
}


@dataclass(frozen=True)
class Case:
    """One measured operation.

    `ops` operations make one repetition (`quick_ops` with `--quick`); `size` (`quick_size`) is
    the number of items one operation handles, where the case has one (batch, transaction,
    memory, scans: a scan method returns how many items it read, which must be `size`, and its
    throughput is items per second).
    `concurrency` > 1 runs the operations from that many tasks at once. `server` is the stub
    port: "fast" (answers at once), "slow" (after 5 ms) or "page" (after 2 ms). `settle` runs
    a full garbage collection (untimed) before every operation, not only before every
    repetition: heavy cases then start each operation from the same collector state, so whether
    a full collection happens to fall inside one operation does not decide the figure.
    Collections that the operation itself triggers are still counted. `reps` overrides the
    run's repetitions for a heavy case (never above them). `figures` are the metrics printed,
    the first one the case's headline (its "vs adyn" ratio); `unit` names one operation.
    """

    key: str
    title: str
    ops: int
    quick_ops: int
    method: str = ""
    kind: str = "ops"
    size: int = 0
    quick_size: int = 0
    concurrency: int = 1
    quick_concurrency: int = 0
    server: str = "fast"
    settle: bool = False
    reps: int = 0
    figures: tuple[str, ...] = ("cpu",)
    unit: str = "op"

    @property
    def call(self) -> str:
        return self.method or self.key

    def count(self, quick: bool) -> int:
        return self.quick_ops if quick else self.ops

    def items(self, quick: bool) -> int:
        return self.quick_size if quick else self.size

    def tasks(self, quick: bool) -> int:
        return (self.quick_concurrency or self.concurrency) if quick else self.concurrency


CASES: tuple[Case, ...] = (
    Case("query_1000", "1,000-item Query page into models (full call)", 8, 1, settle=True),
    Case(
        "decode_1000",
        "1,000-item page body into models (decode step only)",
        8,
        1,
        settle=True,
        figures=("cpu", "parse_here"),
    ),
    # 300 calls a repetition: at a few hundred microseconds a call, shorter repetitions move
    # with every burst of load on a shared machine.
    Case("put_one", "encode and put one 20-attribute item", 300, 20, unit="put"),
    Case("get_one", "get one item", 300, 20, unit="get"),
    Case("query_100", "query 100 items", 15, 5),
    Case(
        "batch_write",
        "batch write of 10,000 items (BatchWriteItem)",
        1,
        1,
        size=10_000,
        quick_size=250,
        reps=3,
        unit="batch",
    ),
    Case(
        "transaction_25",
        "transaction of 25 writes (TransactWriteItems)",
        10,
        2,
        size=25,
        quick_size=25,
        unit="transaction",
    ),
    Case(
        "scan_1mb",
        "scan of 100,000 items in 1 MB pages",
        1,
        1,
        size=SCAN_TOTAL[False],
        quick_size=SCAN_TOTAL[True],
        reps=3,
        figures=("cpu", "throughput"),
        unit="scan",
    ),
    Case(
        "scan_paged",
        "scan of 20,000 items in 100-item pages, 2 ms server",
        1,
        1,
        size=PAGED_TOTAL[False],
        quick_size=PAGED_TOTAL[True],
        server="page",
        reps=3,
        figures=("cpu", "throughput"),
        unit="scan",
    ),
    Case(
        "memory",
        "memory retained per loaded object (10,000 objects)",
        1,
        1,
        method="query_1000",
        kind="memory",
        size=10_000,
        quick_size=1_000,
        reps=2,
        figures=("heap", "rss", "gc_tracked"),
        unit="object",
    ),
    Case(
        "cold_start",
        "cold start to the first answer (fresh process: import, set-up, one GetItem)",
        1,
        1,
        kind="cold",
        figures=("wall", "cpu"),
        unit="process",
    ),
    Case(
        "concurrent_get",
        "64 concurrent gets, 5 ms server",
        384,
        128,
        concurrency=64,
        server="slow",
        figures=("throughput", "cpu"),
        unit="get",
    ),
    Case(
        "inflight_256",
        "256 gets in flight, 5 ms server",
        1024,
        256,
        method="concurrent_get",
        concurrency=256,
        server="slow",
        figures=("throughput", "cpu"),
        unit="get",
    ),
    Case(
        "fairness",
        "fairness: 1,000 tasks doing gets through one client, 5 ms server",
        3000,
        250,
        method="concurrent_get",
        kind="fairness",
        concurrency=1000,
        quick_concurrency=250,
        server="slow",
        reps=3,
        figures=("p99_p50", "p50", "p99", "throughput", "cpu"),
        unit="get",
    ),
)

BY_KEY = {case.key: case for case in CASES}


@dataclass(frozen=True)
class Suite:
    """A benchmark module that measures adyn alone: `module.run(quick=...)` returns figures."""

    key: str
    module: str
    title: str


SUITES: tuple[Suite, ...] = (
    Suite("stream", "benchmarks.bench_stream", "Streams: records decoded per second"),
    Suite("backfill", "benchmarks.bench_backfill", "Backfill: items per second"),
)
