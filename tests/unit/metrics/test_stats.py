"""LiveStats: rolling windows, percentiles, batch sizes and bounds, under a fake clock."""

from __future__ import annotations

import json
import threading

import pytest

from tfserve_lab.core.events import BatchRun, RequestDone, VersionChanged
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode
from tfserve_lab.metrics.stats import UNRESOLVED_VERSION, LiveStats

START = 1_000_000.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def done(latency_s: float, code: ErrorCode = ErrorCode.OK, *, model: str = "m", version: int | None = 1) -> RequestDone:
    return RequestDone(model, version, "serving_default", "predict", "rest", code, latency_s)


def test_counts_rates_and_percentiles_over_the_window() -> None:
    clock = FakeClock()
    stats = LiveStats(clock=clock)
    for ms in range(1, 101):  # 1..100 ms, in second 0
        stats.observe(done(ms / 1000))
    clock.now = START + 1.5
    for _ in range(10):
        stats.observe(done(0.2, ErrorCode.INVALID_ARGUMENT))
    clock.now = START + 10.0
    snap = stats.snapshot()
    entry = snap["models"]["m"]["versions"]["1"]
    assert entry["requests"] == 110
    assert entry["errors"] == 10
    assert entry["rps"] == pytest.approx(11.0)  # 110 requests over the 10 s since start
    assert entry["eps"] == pytest.approx(1.0)
    # Nearest rank over 1..100 ms and ten 200 ms: p50 is the 55th value, p95 and p99 are 200 ms.
    assert entry["latency_ms"] == {"p50": 55.0, "p95": 200.0, "p99": 200.0}
    series = entry["series"]
    assert series["t"] == list(range(int(START), int(START) + 11))
    assert series["rps"][:3] == [100, 10, 0]
    assert series["eps"][:3] == [0, 10, 0]
    assert series["p50_ms"][:3] == [50.0, 200.0, None]
    assert series["p99_ms"][0] == 99.0
    assert snap["window_s"] == 60
    json.dumps(snap)  # plain JSON data


def test_old_seconds_leave_the_window_but_totals_stay() -> None:
    clock = FakeClock()
    stats = LiveStats(window_s=5, clock=clock)
    stats.observe(done(0.01))
    clock.now = START + 3
    stats.observe(done(0.03))
    snap = stats.snapshot(now=START + 4.5)
    entry = snap["models"]["m"]["versions"]["1"]
    assert sum(entry["series"]["rps"]) == 2
    assert entry["rps"] == pytest.approx(2 / 4.5)
    snap = stats.snapshot(now=START + 6.2)  # window holds seconds 2..6: the first request left
    entry = snap["models"]["m"]["versions"]["1"]
    assert entry["series"]["t"] == [int(START) + s for s in range(2, 7)]
    assert entry["series"]["rps"] == [0, 1, 0, 0, 0]
    assert entry["rps"] == pytest.approx(1 / 5)
    assert entry["latency_ms"]["p50"] == 30.0
    assert entry["requests"] == 1 + 1
    snap = stats.snapshot(now=START + 60)
    entry = snap["models"]["m"]["versions"]["1"]
    assert entry["rps"] == 0.0
    assert entry["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert entry["requests"] == 2


def test_a_ring_slot_reused_after_a_full_window_is_reset() -> None:
    clock = FakeClock()
    stats = LiveStats(window_s=3, clock=clock)
    stats.observe(done(0.5))
    clock.now = START + 3  # same slot index, a new second
    stats.observe(done(0.001))
    entry = stats.snapshot()["models"]["m"]["versions"]["1"]
    assert entry["series"]["rps"] == [0, 0, 1]
    assert entry["latency_ms"]["p99"] == 1.0


def test_versions_models_unresolved_requests_and_states() -> None:
    clock = FakeClock()
    stats = LiveStats(clock=clock)
    stats.observe(VersionChanged("m", 2, VersionState.AVAILABLE, load_latency_s=0.1))
    stats.observe(done(0.01, version=1))
    stats.observe(done(0.02, version=2))
    stats.observe(done(0.0, ErrorCode.NOT_FOUND, model="other", version=None))
    snap = stats.snapshot(now=START + 1)
    assert set(snap["models"]["m"]["versions"]) == {"1", "2"}
    assert snap["models"]["m"]["versions"]["2"]["state"] == "AVAILABLE"
    assert snap["models"]["m"]["versions"]["1"]["state"] is None
    assert snap["models"]["other"]["versions"][UNRESOLVED_VERSION]["errors"] == 1


def test_batch_size_histogram_in_power_of_two_bounds() -> None:
    clock = FakeClock()
    stats = LiveStats(window_s=10, clock=clock)
    for size in (1, 2, 3, 4, 5, 8, 9):
        stats.observe(BatchRun("m", 1, "serving_default", size, size, 0.0, 0.0))
    clock.now = START + 25  # another ring slot, outside the first window
    stats.observe(BatchRun("m", 1, "serving_default", 1, 1, 0.0, 0.0))
    assert stats.snapshot(now=START + 5)["batch_sizes"] == {"m": {"1": {"1": 1, "2": 1, "4": 2, "8": 2, "16": 1}}}
    assert stats.snapshot()["batch_sizes"] == {"m": {"1": {"1": 1}}}


def test_reservoir_bounds_memory_and_weights_seconds_by_traffic() -> None:
    clock = FakeClock()
    stats = LiveStats(samples_per_second=16, clock=clock)
    for _ in range(1000):  # a busy second, all 10 ms
        stats.observe(done(0.01))
    clock.now = START + 1
    for _ in range(20):  # a quiet second, all 500 ms
        stats.observe(done(0.5))
    track = stats._tracks[("m", "1")]
    assert max(len(slot.samples) for slot in track.ring) == 16
    entry = stats.snapshot(now=START + 1.5)["models"]["m"]["versions"]["1"]
    assert entry["requests"] == 1020
    # 1000 of 1020 requests took 10 ms. Each second kept 16 samples, but a sample weighs the
    # requests it stands for, so p95 stays at 10 ms.
    assert entry["latency_ms"]["p95"] == 10.0
    assert entry["latency_ms"]["p99"] == 500.0


def test_max_versions_drops_the_least_recently_active() -> None:
    stats = LiveStats(max_versions=2, clock=FakeClock())
    stats.observe(done(0.01, model="a"))
    stats.observe(done(0.01, model="b"))
    stats.observe(done(0.01, model="a"))
    stats.observe(done(0.01, model="c"))
    assert set(stats.snapshot()["models"]) == {"a", "c"}


def test_threads_keep_exact_counts() -> None:
    stats = LiveStats(clock=FakeClock())

    def feed() -> None:
        for i in range(2000):
            stats.observe(done(0.001, ErrorCode.INTERNAL if i % 4 == 0 else ErrorCode.OK))

    workers = [threading.Thread(target=feed) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    entry = stats.snapshot()["models"]["m"]["versions"]["1"]
    assert (entry["requests"], entry["errors"]) == (12000, 3000)
    assert entry["series"]["rps"] == [12000]


def test_rejects_a_window_of_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        LiveStats(window_s=0)
