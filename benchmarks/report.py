"""Turning measurements into the printed tables: results, ratios vs adyn, goals, machine."""

from __future__ import annotations

import importlib
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .cases import CASES, Case

ADYN = "adyn"


@dataclass
class Result:
    """Every repetition of one case by one contender, or why it did not run."""

    cpu: list[float] = field(default_factory=list)  # seconds of client CPU per operation
    throughput: list[float] = field(default_factory=list)  # operations per wall-clock second
    na: str | None = None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def throughput_median(self) -> float | None:
        return statistics.median(self.throughput) if self.throughput else None


Results = dict[str, dict[str, Result]]  # case key -> contender key -> result


def fmt_cpu(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    micro = seconds * 1e6
    if micro < 1000:
        return f"{micro:,.0f} us"
    return f"{micro / 1000:,.1f} ms"


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


def ratio_vs_adyn(case: Case, by: dict[str, Result], key: str) -> float | None:
    """How many times adyn's cost this contender's is (> 1: adyn is cheaper or faster)."""
    mine, adyn = by.get(key), by.get(ADYN)
    if mine is None or adyn is None:
        return None
    if case.throughput:
        a, b = adyn.throughput_median, mine.throughput_median
    else:
        a, b = mine.cpu_median, adyn.cpu_median
    if a is None or b is None or b == 0:
        return None
    return a / b


NOTES = {
    ("query_1000", "aiodynamo"): "plain dicts, numbers as float, no validation",
    ("decode_1000", "aiodynamo"): "plain dicts, numbers as float, no validation",
    ("decode_1000", ADYN): "orjson + compiled per-field decoders",
    ("decode_1000", "aiobotocore"): "botocore's parser only",
    ("put_one", ADYN): "save() sends UpdateItem",
    ("concurrent_get", "aiobotocore"): "botocore's default pool: 10 connections",
    ("concurrent_get", ADYN): "pool: 64 connections",
}


def results_table(results: Results, labels: dict[str, str], markdown: bool) -> str:
    headers = ["case", "contender", "client CPU / op", "throughput", "vs adyn", "note"]
    rows: list[list[str]] = []
    for case in CASES:
        by = results.get(case.key, {})
        first = True
        for key, result in by.items():
            if result.na is not None:
                cells = ["-", "", "", "n/a: " + result.na]
            else:
                throughput = result.throughput_median if case.throughput else None
                cells = [
                    fmt_cpu(result.cpu_median),
                    f"{throughput:,.0f} ops/s" if throughput else "",
                    fmt_ratio(ratio_vs_adyn(case, by, key)),
                    NOTES.get((case.key, key), ""),
                ]
            rows.append([case.title if first else "", labels[key], *cells])
            first = False
    return table(headers, rows, markdown)


@dataclass(frozen=True)
class Goal:
    """A goal of the issue: `metric` of `case` for `top` divided by the same for `bottom`.

    `metric` is "cpu" (client CPU per operation) or "throughput"; the streams goal has no case
    and is the records-per-second figure itself.
    """

    text: str
    case: str
    top: str
    bottom: str
    target: float
    at_least: bool  # True: measured >= target; False: measured <= target
    metric: str = "cpu"

    def measure(self, results: Results, stream: dict[str, Any] | None) -> float | None:
        if self.metric == "stream":
            return stream_rate(stream)
        top, bottom = (_metric(results, self.case, k, self.metric) for k in (self.top, self.bottom))
        return None if top is None or bottom is None or bottom == 0 else top / bottom


def _metric(results: Results, case: str, key: str, metric: str) -> float | None:
    result = results.get(case, {}).get(key)
    if result is None or result.na is not None:
        return None
    return result.cpu_median if metric == "cpu" else result.throughput_median


GOALS: tuple[Goal, ...] = (
    Goal(
        "1,000-item page into models: aiobotocore + TypeDeserializer + pydantic CPU / adyn's",
        "query_1000",
        "aiobotocore_pydantic",
        ADYN,
        5.0,
        True,
    ),
    Goal(
        "1,000-item page: aiobotocore + TypeDeserializer (plain dicts) CPU / adyn's",
        "query_1000",
        "aiobotocore_dicts",
        ADYN,
        3.0,
        True,
    ),
    Goal(
        "1,000-item page: adyn's CPU (models) / aiodynamo's (plain dicts)",
        "query_1000",
        ADYN,
        "aiodynamo",
        1.2,
        False,
    ),
    Goal(
        "get one item: adyn's CPU / raw aiobotocore's", "get_one", ADYN, "aiobotocore", 0.7, False
    ),
    Goal(
        "put one item: adyn's CPU / raw aiobotocore's", "put_one", ADYN, "aiobotocore", 0.7, False
    ),
    Goal(
        "64 concurrent gets, 5 ms server: adyn's throughput / raw aiobotocore's",
        "concurrent_get",
        ADYN,
        "aiobotocore",
        1.0,
        True,
        "throughput",
    ),
    Goal(
        "streams: records decoded per second (one core, fake streams service)",
        "",
        "",
        "",
        20_000,
        True,
        "stream",
    ),
)


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


def goals_table(results: Results, stream: dict[str, Any] | None, markdown: bool) -> str:
    rows = []
    for goal in GOALS:
        value = goal.measure(results, stream)
        sign = ">=" if goal.at_least else "<="
        if goal.metric != "stream":
            target, measured = f"{sign} {goal.target:g}x", fmt_ratio(value)
        else:
            target = f"{sign} {goal.target:,.0f} rec/s"
            measured = "-" if value is None else f"{value:,.0f} rec/s"
        if value is None:
            verdict = "not measured"
        else:
            met = value >= goal.target if goal.at_least else value <= goal.target
            verdict = "met" if met else "NOT MET"
        rows.append([goal.text, target, measured, verdict])
    return table(["goal", "target", "measured", "verdict"], rows, markdown)


def machine() -> list[str]:
    """A description of this machine and of the libraries measured."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        model = platform.processor() or model
    versions = []
    for name in (
        "adyn",
        "aiobotocore",
        "botocore",
        "boto3",
        "pydantic",
        "orjson",
        "aiohttp",
        "pynamodb",
        "aiopynamodb",
        "aiodynamo",
    ):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            try:  # run from the source tree (PYTHONPATH=src), not installed
                module = importlib.import_module(name)
                versions.append(f"{name} {getattr(module, '__version__', '?')} (source tree)")
            except ImportError:
                versions.append(f"{name} (not installed)")
    return [
        f"CPU: {model}, {os.cpu_count()} logical cores",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        "Libraries: " + ", ".join(versions),
    ]
