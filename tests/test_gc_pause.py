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


# ------------------------------------------------- writes a batch queues, one at a time


def _queue(n: int) -> list[list[int]]:
    """What a batch does: objects that arrive one at a time and stay, promoted when due."""
    kept = []
    for i in range(n):
        kept.append([i, [i]])
        _gc.promote_if_due()
    return kept


def _young_ids() -> set[int]:
    return {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}


def test_queued_objects_end_up_old_and_no_middle_or_full_collection_walks_them() -> None:
    started: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(watch)
    try:
        kept = _queue(20_000)
    finally:
        gc.callbacks.remove(watch)
    young = _young_ids()
    assert sum(id(entry) in young for entry in kept) < gc.get_threshold()[0]  # the last few
    assert 1 not in started and 2 not in started  # only young collections, when due
    assert gc.get_freeze_count() == 0
    assert gc.get_count()[0] < gc.get_threshold()[0]


def test_garbage_cycles_made_between_queued_objects_are_still_collected() -> None:
    tracked = _garbage_cycle()
    _queue(2_000)
    assert all(id(o) != tracked for o in gc.get_objects())


def test_queueing_leaves_frozen_objects_and_a_disabled_collector_alone() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    _queue(2_000)
    assert gc.get_freeze_count() == frozen
    gc.unfreeze()
    _gc._state["promote"] = True
    gc.disable()
    before = gc.get_count()[0]
    kept = _queue(2_000)
    assert len(kept) == 2_000 and not gc.isenabled()
    assert gc.get_count()[0] > before  # nothing collected: the program turned the collector off
