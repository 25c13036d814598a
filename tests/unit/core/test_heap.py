"""The heap freezer: the collector's full passes skip what was alive after the last version change."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from tests.conftest import wait_until
from tfserve_lab.core.events import RequestDone, VersionChanged
from tfserve_lab.core.heap import HeapFreezer
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode


@pytest.fixture
def freezer() -> Iterator[HeapFreezer]:
    freezer = HeapFreezer(settle_s=0.05)
    yield freezer
    freezer.close()
    assert gc.get_freeze_count() == 0


def test_a_loaded_version_freezes_the_heap_once_changes_settle(freezer: HeapFreezer) -> None:
    assert gc.get_freeze_count() == 0
    freezer.observe(VersionChanged("m", 1, VersionState.AVAILABLE))
    wait_until(gc.get_freeze_count, timeout=5, what="the heap to be frozen")
    assert gc.get_objects(generation=2) == [] or len(gc.get_objects(generation=2)) < gc.get_freeze_count()


def test_frozen_cycles_of_an_unloaded_version_are_collected_at_the_next_freeze(freezer: HeapFreezer) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    collected = threading.Event()
    node = Node()
    weakref.finalize(node, collected.set)
    freezer.freeze()
    del node
    gc.collect()
    assert not collected.is_set()  # a frozen cycle is skipped by every pass
    freezer.observe(VersionChanged("m", 1, VersionState.END))
    assert collected.wait(5), "the refreeze after an unload did not collect the frozen cycle"
    assert gc.get_freeze_count() > 0


def _freeze_timers() -> set[threading.Thread]:
    """The timers alive now: a freeze the freezer has scheduled is one of them."""
    return {thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)}


def test_requests_and_loading_states_do_not_freeze(freezer: HeapFreezer) -> None:
    before = _freeze_timers()
    freezer.observe(RequestDone("m", 1, "serving_default", "predict", "rest", ErrorCode.OK, 0.001))
    freezer.observe(VersionChanged("m", 1, VersionState.LOADING))
    assert _freeze_timers() <= before  # no freeze scheduled: observe decides at once
    assert gc.get_freeze_count() == 0
    freezer.observe(VersionChanged("m", 1, VersionState.AVAILABLE))
    assert _freeze_timers() - before  # where a version change schedules one


def test_a_closed_freezer_thaws_and_ignores_later_changes(freezer: HeapFreezer) -> None:
    freezer.freeze()
    assert gc.get_freeze_count() > 0
    freezer.close()
    assert gc.get_freeze_count() == 0
    before = _freeze_timers()
    freezer.observe(VersionChanged("m", 2, VersionState.AVAILABLE))
    assert _freeze_timers() <= before  # nothing scheduled, so nothing can freeze later
    assert gc.get_freeze_count() == 0
