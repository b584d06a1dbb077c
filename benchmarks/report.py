"""Turning measurements into the printed tables: one per case with ratios to adyn, the goals,
the machine.

Every ratio reads the same way: above 1, adyn is better. For a cost (CPU, wall clock, latency,
memory) it is the contender's figure divided by adyn's; for a throughput it is adyn's divided
by the contender's.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .cases import CASES, METRICS, Case

ADYN = "adyn"
NOISE = 1.05  # "at or below every contender's, 5% noise allowed"
RATIO_METRICS = ("cpu", "throughput", "wall", "heap", "rss", "p99_p50")


@dataclass
class Result:
    """Every repetition of one case by one contender, or why it did not run."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    na: str | None = None

    def add(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.samples.setdefault(name, []).append(value)

    def median(self, metric: str) -> float | None:
        values = self.samples.get(metric)
        return statistics.median(values) if values and self.na is None else None


Results = dict[str, dict[str, Result]]  # case key -> contender key -> result
Measure = Callable[[Results, dict[str, Any] | None], tuple[float | None, str]]


def _time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:,.1f} ms"
    return f"{seconds * 1e6:,.0f} us"


def _bytes(value: float) -> str:
    return f"{value / 1024:,.1f} KB" if abs(value) >= 1024 else f"{value:,.0f} B"


def fmt(metric: str, value: float | None, case: Case) -> str:
    if value is None:
        return "-"
    if metric in ("cpu", "wall", "p50", "p99", "parse_here"):
        return _time(value)
    if metric == "throughput":
        unit = "items" if case.size else f"{case.unit}s"
        return f"{value:,.0f} {unit}/s"
    if metric in ("heap", "rss"):
        return _bytes(value)
    return f"{value:,.1f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """A fixed-width text table, or a Markdown one."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def ratio(by: dict[str, Result], key: str, metric: str) -> float | None:
    """The contender's figure against adyn's, so that above 1 means adyn is better."""
    mine, adyn = by.get(key), by.get(ADYN)
    if mine is None or adyn is None:
        return None
    a, b = mine.median(metric), adyn.median(metric)
    if METRICS[metric][1] == "higher":
        a, b = b, a
    if a is None or b is None or b == 0:
        return None
    return a / b


NOTES = {
    ("query_1000", "aiodynamo"): "plain dicts, numbers as float, no validation",
    ("decode_1000", "aiodynamo"): "plain dicts, numbers as float, no validation",
    ("decode_1000", ADYN): "orjson, then the engine's decode of the page",
    ("decode_1000", "aiobotocore"): "botocore's parser only",
    ("put_one", ADYN): "save() sends UpdateItem",
    ("concurrent_get", "aiobotocore"): "botocore's default pool: 10 connections",
    ("inflight_256", "aiobotocore"): "botocore's default pool: 10 connections",
    ("fairness", "aiobotocore"): "botocore's default pool: 10 connections",
    ("concurrent_get", ADYN): "max_connections=128 (default)",
    ("inflight_256", ADYN): "max_connections=128 (default)",
    ("fairness", ADYN): "max_connections=128 (default)",
    ("memory", "orjson"): "the raw wire items (DynamoDB-typed dicts)",
    ("memory", "aiobotocore_dicts"): "plain dicts",
    ("transaction_25", "aioboto3"): "the resource's client + TypeSerializer",
    ("scan_paged", "aiodynamo"): "scan_single_page(limit=100) in a loop",
}


def case_table(case: Case, by: dict[str, Result], labels: dict[str, str], md: bool) -> str:
    headers = ["contender"]
    for metric in case.figures:
        headers.append(METRICS[metric][0])
        if metric in RATIO_METRICS:
            headers.append("vs adyn")
    headers.append("note")
    rows = []
    for key, result in by.items():
        cells = [labels[key]]
        if result.na is not None:
            cells += ["-"] * (len(headers) - 2) + ["n/a: " + result.na]
            rows.append(cells)
            continue
        for metric in case.figures:
            cells.append(fmt(metric, result.median(metric), case))
            if metric in RATIO_METRICS:
                cells.append(fmt_ratio(ratio(by, key, metric)))
        cells.append(NOTES.get((case.key, key), ""))
        rows.append(cells)
    return table(headers, rows, md)


def results_tables(results: Results, labels: dict[str, str], md: bool) -> str:
    """Every case: its title, what one operation is, and its table."""
    out = []
    for case in CASES:
        by = results.get(case.key)
        if not by:
            continue
        title = (
            case.title if case.unit == "op" else f"{case.title} (one operation: one {case.unit})"
        )
        out.append(f"#### {title}" if md else title)
        out.append("")
        out.append(case_table(case, by, labels, md))
        out.append("")
    return "\n".join(out).rstrip()


@dataclass(frozen=True)
class Goal:
    """One goal of an issue: `measure(results, stream)` -> (value, detail), checked against
    `target` (`at_least`: value >= target, else value <= target)."""

    source: str
    text: str
    target: float
    at_least: bool
    measure: Measure
    unit: str = "x"


def _metric(results: Results, case: str, key: str, metric: str) -> float | None:
    result = results.get(case, {}).get(key)
    return None if result is None else result.median(metric)


def _versus(
    case: str, top: str, bottom: str, metric: str = "cpu", bottom_metric: str | None = None
) -> Measure:
    """`top`'s `metric` over `bottom`'s (`bottom_metric`, when that is another figure: e.g.
    one contender's figure over another figure measured in its own process)."""

    def measure(results: Results, stream: dict[str, Any] | None) -> tuple[float | None, str]:
        a = _metric(results, case, top, metric)
        b = _metric(results, case, bottom, bottom_metric or metric)
        return (None if a is None or b is None or b == 0 else a / b), ""

    return measure


def _against_every_peer(case: str, metric: str, peers: Callable[[], Sequence[str]]) -> Measure:
    """adyn's figure divided by the best peer's (the cheapest, or for a throughput the fastest),
    and that peer's name."""
    higher = METRICS[metric][1] == "higher"

    def measure(results: Results, stream: dict[str, Any] | None) -> tuple[float | None, str]:
        adyn = _metric(results, case, ADYN, metric)
        figures = {
            key: value
            for key in peers()
            if (value := _metric(results, case, key, metric)) is not None and key != ADYN
        }
        if adyn is None or not figures or adyn == 0:
            return None, "no peer measured" if adyn is not None else ""
        best = (max if higher else min)(figures, key=figures.__getitem__)
        value = adyn / figures[best]
        return value, f"best peer: {best}"

    return measure


def stream_rate(stream: dict[str, Any] | None) -> float | None:
    """The records-per-second figure in `bench_stream.run()`'s result, whatever its key."""
    if not stream:
        return None
    for key in ("records_per_second", "records/second", "records_per_sec", "rate"):
        if isinstance(stream.get(key), int | float):
            return float(stream[key])
    for key, value in stream.items():
        if isinstance(value, int | float) and ("per_s" in key or "/s" in key):
            return float(value)
    return None


def goals(peers: Callable[[], Sequence[str]]) -> list[Goal]:
    """Issue 14's and issue 8's goals, then the first benchmark issue's (5)."""
    every_cpu = [
        Goal(
            "#14",
            f"{case.title}: adyn's CPU / the cheapest peer's (5% noise allowed)",
            NOISE,
            False,
            _against_every_peer(case.key, "cpu", peers),
        )
        for case in CASES
        if "cpu" in case.figures and case.kind not in ("cold", "memory")
    ]
    return [
        *every_cpu,
        Goal(
            "#14",
            "256 gets in flight: adyn's throughput / the fastest peer's",
            1.0,
            True,
            _against_every_peer("inflight_256", "throughput", peers),
        ),
        Goal(
            "#14",
            "memory per loaded object (Python heap): adyn / PynamoDB",
            1.5,
            False,
            _versus("memory", ADYN, "pynamodb", "heap"),
        ),
        Goal(
            "#14",
            "cold start to the first answer (wall clock): adyn / raw aiobotocore",
            1.0,
            False,
            _versus("cold_start", ADYN, "aiobotocore", "wall"),
        ),
        Goal(
            "#14",
            "1,000-item page body into models: adyn's CPU / bare orjson.loads (same process)",
            2.0,
            False,
            _versus("decode_1000", ADYN, ADYN, "cpu", "parse_here"),
        ),
        Goal(
            "#8",
            "get one item: adyn's CPU / aiodynamo's",
            1.0,
            False,
            _versus("get_one", ADYN, "aiodynamo"),
        ),
        Goal(
            "#8",
            "put one item: adyn's CPU / aiodynamo's",
            1.0,
            False,
            _versus("put_one", ADYN, "aiodynamo"),
        ),
        Goal(
            "#8",
            "256 gets in flight: adyn's throughput / aiodynamo's",
            1.0,
            True,
            _versus("inflight_256", ADYN, "aiodynamo", "throughput"),
        ),
        Goal(
            "#8",
            "fairness, 1,000 tasks: adyn's p99 / p50 latency",
            20.0,
            False,
            lambda results, _: (_metric(results, "fairness", ADYN, "p99_p50"), ""),
        ),
        Goal(
            "#5",
            "1,000-item page into models: aiobotocore + TypeDeserializer + pydantic CPU / adyn's",
            5.0,
            True,
            _versus("query_1000", "aiobotocore_pydantic", ADYN),
        ),
        Goal(
            "#5",
            "1,000-item page: aiobotocore + TypeDeserializer (plain dicts) CPU / adyn's",
            3.0,
            True,
            _versus("query_1000", "aiobotocore_dicts", ADYN),
        ),
        Goal(
            "#5",
            "1,000-item page: adyn's CPU (models) / aiodynamo's (plain dicts)",
            1.2,
            False,
            _versus("query_1000", ADYN, "aiodynamo"),
        ),
        Goal(
            "#5",
            "get one item: adyn's CPU / raw aiobotocore's",
            0.7,
            False,
            _versus("get_one", ADYN, "aiobotocore"),
        ),
        Goal(
            "#5",
            "put one item: adyn's CPU / raw aiobotocore's",
            0.7,
            False,
            _versus("put_one", ADYN, "aiobotocore"),
        ),
        Goal(
            "#5",
            "64 concurrent gets, 5 ms server: adyn's throughput / raw aiobotocore's",
            1.0,
            True,
            _versus("concurrent_get", ADYN, "aiobotocore", "throughput"),
        ),
        Goal(
            "#5",
            "streams: records decoded per second (one core, fake streams service)",
            20_000,
            True,
            lambda _, stream: (stream_rate(stream), ""),
            unit=" rec/s",
        ),
    ]


def goals_table(
    results: Results, stream: dict[str, Any] | None, peers: Callable[[], Sequence[str]], md: bool
) -> tuple[str, list[str]]:
    """The goals table, and the goals not met (for the summary)."""
    rows, missed = [], []
    for goal in goals(peers):
        value, detail = goal.measure(results, stream)
        sign = ">=" if goal.at_least else "<="
        if goal.unit == "x":
            target, measured = f"{sign} {goal.target:g}x", fmt_ratio(value)
        else:
            target = f"{sign} {goal.target:,.0f}{goal.unit}"
            measured = "-" if value is None else f"{value:,.0f}{goal.unit}"
        if value is None:
            verdict = "not measured"
        elif (value >= goal.target) if goal.at_least else (value <= goal.target):
            verdict = "met"
        else:
            gap = goal.target / value if goal.at_least else value / goal.target
            verdict = f"NOT MET (off by {(gap - 1) * 100:.0f}%)"
            missed.append(f"{goal.source} {goal.text}: {measured} ({detail or 'target ' + target})")
        if detail:
            measured += f" ({detail})"
        rows.append([goal.source, goal.text, target, measured, verdict])
    return table(["issue", "goal", "target", "measured", "verdict"], rows, md), missed


def machine(workers: dict[str, dict[str, Any]], own: dict[str, str]) -> list[str]:
    """This machine, the main environment's libraries, and each other interpreter's."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        model = platform.processor() or model
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    lines = [
        f"CPU: {model}, {os.cpu_count()} logical cores (load average at the end: {load})",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        "Libraries: " + ", ".join(f"{name} {version}" for name, version in own.items()),
        f"Checkout: {commit or 'not a git checkout'}",
    ]
    for key, info in workers.items():
        theirs = ", ".join(
            f"{name} {version}"
            for name, version in info.get("versions", {}).items()
            if name != "adyn" and own.get(name) != version  # adyn: on PYTHONPATH, never used
        )
        lines.append(
            f"{key} runs on Python {info.get('python', '?')} in its own virtualenv: {theirs}"
        )
    return lines
