"""The heap freezer: the collector's full passes skip what was alive after the last version change."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import pytest

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


def _wait_frozen(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while gc.get_freeze_count() == 0:
        assert time.monotonic() < deadline, "the heap was never frozen"
        time.sleep(0.01)


def test_a_loaded_version_freezes_the_heap_once_changes_settle(freezer: HeapFreezer) -> None:
    assert gc.get_freeze_count() == 0
    freezer.observe(VersionChanged("m", 1, VersionState.AVAILABLE))
    _wait_frozen()
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


def test_requests_and_loading_states_do_not_freeze(freezer: HeapFreezer) -> None:
    freezer.observe(RequestDone("m", 1, "serving_default", "predict", "rest", ErrorCode.OK, 0.001))
    freezer.observe(VersionChanged("m", 1, VersionState.LOADING))
    time.sleep(0.2)
    assert gc.get_freeze_count() == 0


def test_a_closed_freezer_thaws_and_ignores_later_changes(freezer: HeapFreezer) -> None:
    freezer.freeze()
    assert gc.get_freeze_count() > 0
    freezer.close()
    assert gc.get_freeze_count() == 0
    freezer.observe(VersionChanged("m", 2, VersionState.AVAILABLE))
    time.sleep(0.2)
    assert gc.get_freeze_count() == 0
