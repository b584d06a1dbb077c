"""Large pages are built without the collector walking them, and the program's GC state is
left exactly as it was: enabled or not, its own frozen objects frozen, nothing else frozen.

CPython 3.12.1 starts with objects of its own frozen (375 of them); adyn then never unfreezes
anything and builds pages with the plain pause: these tests hold either way.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from adyn import _gc
from adyn._gc import build_paused


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    promote = dict(_gc._state)
    frozen = gc.get_freeze_count()
    yield
    gc.enable()
    if gc.get_freeze_count() != frozen:  # the test froze objects: let them go
        gc.unfreeze()
    _gc._state.update(promote)


def _promotes() -> bool:
    """Whether build_paused will promote the page (nothing frozen, not free-threaded)."""
    return _gc._PROMOTE and _gc._state["promote"] and gc.get_freeze_count() == 0


def _page() -> list[dict[str, list[int]]]:
    return [{"v": [i]} for i in range(5000)]


def test_the_page_is_built_and_the_collector_state_is_restored() -> None:
    frozen, promotes = gc.get_freeze_count(), _promotes()
    page = build_paused(_page)
    assert len(page) == 5000
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    if promotes:
        assert gc.get_count()[0] < 100  # no collection owed for the page just built


def _garbage_cycle() -> int:
    """Make two objects that only refer to each other, drop them; the id of one."""

    class Node:
        other: object

    gc.collect()
    a, b = Node(), Node()
    a.other, b.other = b, a
    return id(a)


def test_garbage_cycles_made_before_the_page_are_still_collected() -> None:
    # by the young collection before a promoted page (promoted, the cycle would wait for a full
    # collection), or, after a plain pause, by the next young collection, as ever
    tracked = _garbage_cycle()
    promotes = _promotes()
    build_paused(_page)
    if not promotes:
        gc.collect(0)
    assert all(id(o) != tracked for o in gc.get_objects())


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    build_paused(_page)
    assert not gc.isenabled()


def test_objects_the_program_froze_stay_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    build_paused(_page)
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()


def test_an_error_while_building_restores_the_collector() -> None:
    def fail() -> None:
        raise ValueError("bad item")

    frozen = gc.get_freeze_count()
    with pytest.raises(ValueError):
        build_paused(fail)
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
