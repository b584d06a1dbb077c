"""Large pages are built without the collector walking them, and the program's GC state is
left exactly as it was: enabled or not, its own frozen objects frozen, nothing else frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from adyn import _gc
from adyn._gc import build_paused


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    promote = dict(_gc._state)
    yield
    gc.enable()
    gc.unfreeze()
    _gc._state.update(promote)


def _page() -> list[dict[str, list[int]]]:
    return [{"v": [i]} for i in range(5000)]


def test_the_page_is_built_and_the_collector_state_is_restored() -> None:
    page = build_paused(_page)
    assert len(page) == 5000
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
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
    tracked = _garbage_cycle()
    build_paused(_page)
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

    with pytest.raises(ValueError):
        build_paused(fail)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
