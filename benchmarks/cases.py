"""The benchmark cases, shared by the runner and the contender workers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One measured operation.

    `method` is the contender method that performs one operation; `ops` operations make one
    repetition (`quick_ops` with `--quick`); `concurrency` > 1 runs them from that many tasks at
    once and reports throughput as well as CPU per operation. `settle` runs a full garbage
    collection (untimed) before every operation, not only before every repetition: heavy cases
    then start each operation from the same collector state, so whether a full collection happens
    to fall inside one operation does not decide the figure. Collections that the operation itself
    triggers are still counted.
    """

    key: str
    title: str
    ops: int
    quick_ops: int
    concurrency: int = 1
    settle: bool = False

    @property
    def throughput(self) -> bool:
        return self.concurrency > 1


CASES: tuple[Case, ...] = (
    Case("query_1000", "1,000-item Query page into models (full call)", 8, 1, settle=True),
    Case("decode_1000", "1,000-item page body into models (decode step only)", 8, 1, settle=True),
    Case("put_one", "encode and put one 20-attribute item", 100, 20),
    Case("get_one", "get one item", 100, 20),
    Case("query_100", "query 100 items", 15, 5),
    Case("concurrent_get", "64 concurrent gets, 5 ms server", 384, 128, concurrency=64),
)

BY_KEY = {case.key: case for case in CASES}
