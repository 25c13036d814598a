"""The registry's state machine: version states, leases, labels, and TF Serving's messages for what is not there."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.events import VersionChanged
from tfserve_lab.core.registry import ModelEntry, Registry, VersionRecord
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.types import ModelSpec, SignatureInfo, TensorInfo, VersionState, VersionStatus
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, ServableNotFound, TfServeError

START, LOADING, AVAILABLE, UNLOADING, END = (
    VersionState.START,
    VersionState.LOADING,
    VersionState.AVAILABLE,
    VersionState.UNLOADING,
    VersionState.END,
)
NOT_AVAILABLE = "Request to assign label to version {} of model m, which is not currently available for inference"


class Doubler:
    """The smallest real Servable: serving_default doubles ``x``; remembers being closed."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.closed = False
        self._signatures = {
            "serving_default": SignatureInfo(
                "tensorflow/serving/predict", {"x": TensorInfo("x:0", "DT_FLOAT")}, {"y": TensorInfo("y:0", "DT_FLOAT")}
            )
        }

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        return self._signatures

    def run(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        assert not self.closed, "a closed servable ran"
        return {"y": inputs["x"] * 2}

    def close(self) -> None:
        self.closed = True


class Rig:
    """A registry with one model ``m`` and the VersionChanged events it emitted."""

    def __init__(self, *, allow_labels_for_unavailable: bool = False) -> None:
        self.events: list[VersionChanged] = []
        self.unloading = threading.Event()  # set on the watcher's thread as an unload begins
        self.registry = Registry(on_event=self._on_event, allow_labels_for_unavailable=allow_labels_for_unavailable)
        self.registry.set_models([ModelConfig("m", "/models/m")])

    def _on_event(self, event: VersionChanged) -> None:
        self.events.append(event)
        if event.state is UNLOADING:
            self.unloading.set()

    @property
    def entry(self) -> ModelEntry:
        return dict(self.registry.entries())["m"]

    def load(self, version: int) -> VersionRecord:
        """Drive one version through START and LOADING to AVAILABLE, as the watcher does."""
        record = self.registry.record(self.entry, version, f"/models/m/{version}")
        self.registry.mark(self.entry, record, LOADING)
        self.registry.set_servable(self.entry, record, Doubler(version), load_latency_s=0.25)
        return record

    def unload(self, record: VersionRecord) -> Servable | None:
        servable = self.registry.begin_unload(self.entry, record)
        self.registry.mark(self.entry, record, END)
        return servable

    def states(self) -> list[tuple[int, VersionState, str]]:
        return [(e.version, e.state, e.error) for e in self.events]


@pytest.fixture
def rig() -> Rig:
    return Rig()


@contextmanager
def fails_with(error: type[TfServeError], message: str) -> Iterator[None]:
    """Expect ``error`` with exactly ``message`` (TF Serving's words are the contract)."""
    with pytest.raises(error) as info:
        yield
    assert info.value.message == message


def test_the_stand_in_is_a_servable() -> None:
    assert isinstance(Doubler(1), Servable)


# -- version states -----------------------------------------------------------


def test_a_version_goes_start_loading_available_unloading_end(rig: Rig) -> None:
    record = rig.registry.record(rig.entry, 1, "/models/m/1")
    assert rig.registry.statuses("m") == [VersionStatus(1, START)]
    rig.registry.mark(rig.entry, record, LOADING)
    assert rig.registry.statuses("m") == [VersionStatus(1, LOADING)]
    servable = Doubler(1)
    rig.registry.set_servable(rig.entry, record, servable, load_latency_s=0.25)
    assert rig.registry.statuses("m", 1) == [VersionStatus(1, AVAILABLE)]
    assert rig.events[-1] == VersionChanged("m", 1, AVAILABLE, load_latency_s=0.25)
    assert rig.unload(record) is servable
    assert record.servable is None  # the registry lets go of it; the watcher closes it
    assert rig.registry.statuses("m") == [VersionStatus(1, END)]
    assert rig.states() == [(1, START, ""), (1, LOADING, ""), (1, AVAILABLE, ""), (1, UNLOADING, ""), (1, END, "")]


def test_a_failed_load_goes_back_to_start_with_its_error_and_a_final_one_ends_there(rig: Rig) -> None:
    record = rig.registry.record(rig.entry, 1, "/models/m/1")
    rig.registry.mark(rig.entry, record, LOADING)
    rig.registry.set_failed(rig.entry, record, ErrorCode.NOT_FOUND, "no saved_model.pb", final=False)
    assert rig.registry.statuses("m") == [VersionStatus(1, START, ErrorCode.NOT_FOUND, "no saved_model.pb")]
    rig.registry.mark(rig.entry, record, LOADING)
    rig.registry.set_failed(rig.entry, record, ErrorCode.DATA_LOSS, "corrupt", final=True)
    assert rig.registry.statuses("m") == [VersionStatus(1, END, ErrorCode.DATA_LOSS, "corrupt")]
    assert rig.states()[-1] == (1, END, "corrupt")
    # A version that ended with an error stays ended: polling it again does not start it over.
    assert rig.registry.record(rig.entry, 1, "/models/m/1") is record
    with fails_with(ServableNotFound, "Servable not found for request: Latest(m)"):
        rig.registry.acquire(ModelSpec("m"))


def test_a_retry_that_loads_clears_the_error(rig: Rig) -> None:
    record = rig.registry.record(rig.entry, 1, "/models/m/1")
    rig.registry.set_failed(rig.entry, record, ErrorCode.NOT_FOUND, "no saved_model.pb", final=False)
    rig.registry.mark(rig.entry, record, LOADING)
    rig.registry.set_servable(rig.entry, record, Doubler(1))
    assert rig.registry.statuses("m") == [VersionStatus(1, AVAILABLE, ErrorCode.OK, "")]


def test_a_cleanly_unloaded_version_starts_over_when_aspired_again(rig: Rig) -> None:
    first = rig.load(1)
    rig.unload(first)
    again = rig.registry.record(rig.entry, 1, "/models/m/1")
    assert again is not first
    assert again.state is START
    assert rig.states()[-1] == (1, START, "")


def test_statuses_list_the_newest_version_first(rig: Rig) -> None:
    rig.load(1)
    rig.registry.record(rig.entry, 3, "/models/m/3")
    rig.load(2)
    assert [s.version for s in rig.registry.statuses("m")] == [3, 2, 1]


# -- which version a request gets ---------------------------------------------


def test_a_request_gets_the_newest_available_version_or_the_one_it_names(rig: Rig) -> None:
    rig.load(1)
    loading = rig.registry.record(rig.entry, 2, "/models/m/2")
    rig.registry.mark(rig.entry, loading, LOADING)
    with rig.registry.acquire(ModelSpec("m")) as handle:
        assert (handle.model, handle.version) == ("m", 1)  # version 2 is still loading
    with fails_with(ServableNotFound, "Servable not found for request: Specific(m, 2)"):
        rig.registry.acquire(ModelSpec("m", version=2))
    rig.registry.set_servable(rig.entry, loading, Doubler(2))
    with rig.registry.acquire(ModelSpec("m")) as newest, rig.registry.acquire(ModelSpec("m", version=1)) as named:
        assert (newest.version, named.version) == (2, 1)
        np.testing.assert_array_equal(newest.servable.run("serving_default", {"x": np.ones(2)})["y"], [2.0, 2.0])


def test_what_is_not_there_gets_tf_serving_messages(rig: Rig) -> None:
    with fails_with(ServableNotFound, "Servable not found for request: Latest(m)"):
        rig.registry.acquire(ModelSpec("m"))  # no version loaded yet
    with fails_with(ServableNotFound, "Could not find any versions of model m"):
        rig.registry.statuses("m")
    rig.load(1)
    with fails_with(ServableNotFound, "Servable not found for request: Latest(nope)"):
        rig.registry.acquire(ModelSpec("nope"))
    with fails_with(ServableNotFound, "Servable not found for request: Specific(nope, 1)"):
        rig.registry.acquire(ModelSpec("nope", version=1))
    with fails_with(ServableNotFound, "Servable not found for request: Specific(m, 7)"):
        rig.registry.acquire(ModelSpec("m", version=7))
    with fails_with(InvalidArgument, "Unrecognized servable version label: gold"):
        rig.registry.acquire(ModelSpec("m", label="gold"))
    with fails_with(ServableNotFound, "Could not find any versions of model nope"):
        rig.registry.statuses("nope")
    with fails_with(ServableNotFound, "Could not find version 7 of model m"):
        rig.registry.statuses("m", 7)
    with fails_with(ServableNotFound, "Servable not found for request: Latest(nope)"):
        rig.registry.labels("nope")
    with (
        rig.registry.acquire(ModelSpec("m")) as handle,
        fails_with(FailedPrecondition, 'Serving signature key "nope" not found.'),
    ):
        handle.signature("nope")
    with rig.registry.acquire(ModelSpec("m")) as handle:
        assert handle.signature("")[0] == "serving_default"


# -- leases -------------------------------------------------------------------


def test_a_lease_keeps_an_unloading_version_until_it_is_released(rig: Rig) -> None:
    record = rig.load(1)
    handle = rig.registry.acquire(ModelSpec("m"))
    order: list[str] = []

    def unload() -> Servable | None:
        servable = rig.registry.begin_unload(rig.entry, record)
        order.append("unloaded")
        return servable

    with ThreadPoolExecutor(1) as pool:
        unloaded = pool.submit(unload)
        assert rig.unloading.wait(5), "begin_unload never marked the version UNLOADING"
        # No new request gets the version; the one holding it still runs on it.
        with fails_with(ServableNotFound, "Servable not found for request: Latest(m)"):
            rig.registry.acquire(ModelSpec("m"))
        with fails_with(ServableNotFound, "Servable not found for request: Specific(m, 1)"):
            rig.registry.acquire(ModelSpec("m", version=1))
        np.testing.assert_array_equal(handle.servable.run("serving_default", {"x": np.ones(1)})["y"], [2.0])
        assert record.servable is handle.servable
        order.append("released")
        handle.release()
        servable = unloaded.result(5)
    assert order == ["released", "unloaded"]
    assert servable is handle.servable
    handle.release()  # a second release gives nothing back twice
    assert record.in_flight == 0


def test_an_unload_timeout_gives_the_servable_up_after_waiting_that_long(rig: Rig) -> None:
    record = rig.load(1)
    handle = rig.registry.acquire(ModelSpec("m"))
    started = time.monotonic()
    servable = rig.registry.begin_unload(rig.entry, record, timeout=0.1)
    waited = time.monotonic() - started
    assert servable is handle.servable
    assert waited >= 0.1
    assert record.in_flight == 1  # the lease is still out; releasing it later is harmless
    handle.release()
    assert record.in_flight == 0


def test_an_unload_without_leases_does_not_wait(rig: Rig) -> None:
    record = rig.load(1)
    with rig.registry.acquire(ModelSpec("m")):
        assert record.in_flight == 1
    assert record.in_flight == 0
    with ThreadPoolExecutor(1) as pool:
        # Nothing holds the version, so a timeout-less unload returns with nobody to release it.
        assert isinstance(pool.submit(rig.registry.begin_unload, rig.entry, record).result(5), Doubler)


# -- labels -------------------------------------------------------------------


def test_labels_point_only_at_available_versions_by_default(rig: Rig) -> None:
    rig.load(1)
    rig.registry.record(rig.entry, 2, "/models/m/2")
    with fails_with(FailedPrecondition, NOT_AVAILABLE.format(2)):
        rig.registry.set_labels("m", {"stable": 1, "canary": 2})
    assert rig.registry.labels("m") == {}  # a refused label map changes nothing
    rig.registry.set_labels("m", {"stable": 1})
    with rig.registry.acquire(ModelSpec("m", label="stable")) as handle:
        assert handle.version == 1
    with fails_with(FailedPrecondition, NOT_AVAILABLE.format(7)):
        rig.registry.set_labels("m", {"stable": 7})
    assert rig.registry.labels("m") == {"stable": 1}


def test_allowed_labels_may_name_unavailable_versions_unless_they_move() -> None:
    rig = Rig(allow_labels_for_unavailable=True)
    rig.load(1)
    rig.registry.set_labels("m", {"stable": 1, "canary": 2})  # canary is new: it may wait for version 2
    with fails_with(ServableNotFound, "Servable not found for request: Specific(m, 2)"):
        rig.registry.acquire(ModelSpec("m", label="canary"))
    rig.registry.set_labels("m", {"stable": 1, "canary": 2})  # kept where it is: still fine
    with fails_with(FailedPrecondition, NOT_AVAILABLE.format(2)):
        rig.registry.set_labels("m", {"stable": 2, "canary": 2})  # stable would move off a serving version
    assert rig.registry.labels("m") == {"stable": 1, "canary": 2}
    rig.load(2)
    with rig.registry.acquire(ModelSpec("m", label="canary")) as handle:
        assert handle.version == 2
    rig.registry.set_labels("m", {"stable": 2})
    assert rig.registry.labels("m") == {"stable": 2}


def test_a_config_labels_take_effect_only_once_checked(rig: Rig) -> None:
    rig.registry.set_models([ModelConfig("m", "/models/m", version_labels={"stable": 1})])
    with fails_with(InvalidArgument, "Unrecognized servable version label: stable"):
        rig.registry.acquire(ModelSpec("m", label="stable"))  # nothing loaded, nothing checked yet
    rig.load(1)
    rig.registry.set_labels("m", {"stable": 1})
    # The next config moves stable to a version not loaded: it keeps its version until checked.
    rig.registry.set_models([ModelConfig("m", "/models/m", version_labels={"stable": 2})])
    assert rig.registry.labels("m") == {"stable": 1}
    assert [c.version_labels for c in rig.registry.configs()] == [{"stable": 1}]
    # A config without the label drops it.
    rig.registry.set_models([ModelConfig("m", "/models/m")])
    assert rig.registry.labels("m") == {}


# -- configuration ------------------------------------------------------------


def test_a_model_left_out_of_the_config_is_removed_until_the_watcher_drops_it(rig: Rig) -> None:
    rig.load(1)
    rig.registry.set_models([ModelConfig("other", "/models/other")])
    assert [c.name for c in rig.registry.configs()] == ["other"]
    assert rig.entry.removed  # still listed, so the watcher unloads its versions
    with fails_with(ServableNotFound, "Servable not found for request: Latest(m)"):
        rig.registry.acquire(ModelSpec("m"))
    with fails_with(ServableNotFound, "Could not find any versions of model m"):
        rig.registry.statuses("m")
    rig.registry.set_models([ModelConfig("m", "/models/m"), ModelConfig("other", "/models/other")])
    assert not rig.entry.removed  # listed again before it went: the same entry serves on
    with rig.registry.acquire(ModelSpec("m")) as handle:
        assert handle.version == 1
    rig.registry.set_models([])
    rig.registry.drop("m")
    assert "m" not in dict(rig.registry.entries())
    rig.registry.drop("m")  # dropping twice is harmless


def test_a_new_base_path_is_a_new_model_and_the_old_versions_wait_to_be_unloaded(rig: Rig) -> None:
    old = rig.entry
    rig.load(1)
    rig.registry.set_models([ModelConfig("m", "/elsewhere/m")])
    assert rig.entry is not old
    assert rig.entry.records == {}
    assert old.removed
    (hidden,) = [key for key, entry in rig.registry.entries() if entry is old]
    assert hidden != "m"  # kept under a key no request can name, until the watcher unloads it
    assert [c.base_path for c in rig.registry.configs()] == ["/elsewhere/m"]
    with fails_with(ServableNotFound, "Servable not found for request: Latest(m)"):
        rig.registry.acquire(ModelSpec("m"))
