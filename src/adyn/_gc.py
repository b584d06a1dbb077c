"""Build a large page of objects without the cyclic garbage collector walking it.

A 1,000-item page is ~10,000 new container objects that all survive. With the collector paused
while they are built, the allocation count keeps growing, and the first allocation after the
pause starts a collection that walks the whole new page (1-3 ms a page, measured; see "The
garbage collector" in docs/performance.md). `build_paused` avoids that walk:

1. a young collection first (gen0 holds fewer objects than its threshold: tens of
   microseconds), so whatever the program made before, garbage cycles included, is dealt with
   as usual and no allocation debt is forgiven;
2. the collector paused while the page is built (no await can happen inside: the caller's
   function is synchronous);
3. on success, `gc.freeze()` then `gc.unfreeze()`: two O(1) list splices that move the tracked
   objects into the oldest generation and zero the young allocation count, as if the page had
   been born old. Nothing stays frozen: the permanent generation is empty again before this
   returns.

It falls back to a plain pause (and promotes nothing) where that trick is not safe:

- the program has frozen objects itself (a pre-fork server calls `gc.freeze()` so the workers
  never touch those pages): unfreezing would undo its choice. The first time objects are seen
  frozen, this process stops promoting for good (`gc.get_freeze_count()` walks the frozen list,
  so it is asked only while it answers 0);
- a free-threaded build, where `gc.freeze()` visits the whole heap;
- the collector is disabled by the program (then nothing is touched at all).

The collector's state is restored in `finally`; nothing is held across an await.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# The free-threaded build reports itself in sys.version ("... experimental free-threading build").
_PROMOTE = "free-threading" not in sys.version
_state = {"promote": _PROMOTE}


def build_paused(build: Callable[[], T]) -> T:
    """`build()` with the collector paused and its new objects moved to the oldest generation."""
    if not gc.isenabled():
        return build()
    promote = _state["promote"] and _nothing_frozen()
    if promote:
        gc.collect(0)
    gc.disable()
    try:
        result = build()
        if promote:
            gc.freeze()
            gc.unfreeze()
        return result
    finally:
        gc.enable()


def _nothing_frozen() -> bool:
    if gc.get_freeze_count():
        _state["promote"] = False  # the program freezes objects: leave the frozen list alone
        return False
    return True
