"""Registry, watcher and engine with Python servables: versions, policies, labels, swaps."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from tfserve_lab.config import ModelConfig, VersionPolicy
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.requests import ArrayInputs
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, SignatureInfo, VersionState
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, ServableNotFound

SIG = SignatureInfo("tensorflow/serving/predict", {"x": tensor_info("x:0")}, {"y": tensor_info("y:0")})


class FolderLoader:
    """Loads a version folder as y = x + version; a folder with FAIL in it fails."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.servables: dict[str, CallableServable] = {}
        self.gate: threading.Event | None = None

    def __call__(self, path: str) -> CallableServable:
        if os.path.exists(os.path.join(path, "FAIL")):
            raise RuntimeError(f"cannot load {path}")
        if self.gate is not None:
            self.gate.wait(5)
        version = int(os.path.basename(path))
        servable = CallableServable({"serving_default": (SIG, lambda i, v=version: {"y": i["x"] + v})})
        self.loaded.append(path)
        self.servables[path] = servable
        return servable


def make_repo(tmp_path: Path, *versions: int) -> Path:
    base = tmp_path / "model"
    for v in versions:
        (base / str(v)).mkdir(parents=True, exist_ok=True)
    (base / "notaversion").mkdir(parents=True, exist_ok=True)
    return base


def make_engine(retries: int = 0) -> tuple[Engine, FolderLoader]:
    loader = FolderLoader()
    options = EngineOptions(
        watcher=WatcherOptions(poll_wait_seconds=0, max_num_load_retries=retries, load_retry_interval_seconds=0)
    )
    return Engine(loader, options), loader


def predict(engine: Engine, spec: ModelSpec, x: float = 1.0) -> tuple[int, float]:
    result = asyncio.run(engine.predict(spec, ArrayInputs({"x": np.array([[x]], np.float32)})))
    return result.version, float(result.outputs["y"][0, 0])


def test_latest_policy_serves_newest_and_ignores_other_folders(tmp_path: Path) -> None:
    engine, loader = make_engine()
    engine.load([ModelConfig("m", str(make_repo(tmp_path, 1, 2, 10)))])
    assert [s.version for s in engine.status("m")] == [10]
    assert predict(engine, ModelSpec("m")) == (10, 11.0)
    assert len(loader.loaded) == 1


def test_all_and_specific_policies(tmp_path: Path) -> None:
    base = str(make_repo(tmp_path, 1, 2, 3))
    engine, _ = make_engine()
    engine.load([ModelConfig("m", base, version_policy=VersionPolicy("all"))])
    assert [s.version for s in engine.status("m")] == [3, 2, 1]
    assert predict(engine, ModelSpec("m", version=1)) == (1, 2.0)
    engine.load([ModelConfig("m", base, version_policy=VersionPolicy("specific", versions=(1, 3)))])
    states = {s.version: s.state for s in engine.status("m")}
    assert states == {3: VersionState.AVAILABLE, 2: VersionState.END, 1: VersionState.AVAILABLE}
    with pytest.raises(ServableNotFound, match=r"Servable not found for request: Specific\(m, 2\)"):
        engine.acquire(ModelSpec("m", version=2))


def test_unknown_model_version_and_label_errors(tmp_path: Path) -> None:
    engine, _ = make_engine()
    engine.load([ModelConfig("m", str(make_repo(tmp_path, 1)))])
    with pytest.raises(ServableNotFound, match=r"Servable not found for request: Latest\(nope\)"):
        engine.acquire(ModelSpec("nope"))
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: gold"):
        engine.acquire(ModelSpec("m", label="gold"))
    with pytest.raises(ServableNotFound, match="Could not find any versions of model nope"):
        engine.status("nope")
    with (
        engine.acquire(ModelSpec("m")) as handle,
        pytest.raises(FailedPrecondition, match=re.escape('Serving signature key "other" not found.')),
    ):
        handle.signature("other")


def test_labels_must_point_at_available_versions(tmp_path: Path) -> None:
    engine, _ = make_engine()
    engine.load([ModelConfig("m", str(make_repo(tmp_path, 1, 2)), version_policy=VersionPolicy("all"))])
    engine.registry.set_labels("m", {"stable": 1, "canary": 2})
    assert predict(engine, ModelSpec("m", label="stable")) == (1, 2.0)
    assert predict(engine, ModelSpec("m", label="canary")) == (2, 3.0)
    with pytest.raises(FailedPrecondition, match="not currently available"):
        engine.registry.set_labels("m", {"stable": 7})


def test_failed_version_reports_error_while_others_serve(tmp_path: Path) -> None:
    base = make_repo(tmp_path, 1, 2)
    (base / "2" / "FAIL").touch()
    engine, _ = make_engine()
    engine.load([ModelConfig("m", str(base), version_policy=VersionPolicy("all"))])
    statuses = {s.version: s for s in engine.status("m")}
    assert statuses[1].state is VersionState.AVAILABLE
    assert statuses[2].state is VersionState.END
    assert statuses[2].error_code is ErrorCode.UNKNOWN
    assert "cannot load" in statuses[2].error_message
    assert predict(engine, ModelSpec("m")) == (1, 2.0)


def test_retry_then_success_never_replaces_good_version(tmp_path: Path) -> None:
    base = make_repo(tmp_path, 1)
    engine, _ = make_engine(retries=3)
    engine.load([ModelConfig("m", str(base))])
    (base / "2").mkdir()
    (base / "2" / "FAIL").touch()
    engine.watcher.poll_once()
    assert {s.version: s.state for s in engine.status("m")} == {2: VersionState.START, 1: VersionState.AVAILABLE}
    assert predict(engine, ModelSpec("m")) == (1, 2.0)
    (base / "2" / "FAIL").unlink()
    engine.watcher.poll_once()
    assert {s.version: s.state for s in engine.status("m")} == {2: VersionState.AVAILABLE, 1: VersionState.END}


def test_swap_waits_for_requests_in_flight(tmp_path: Path) -> None:
    base = make_repo(tmp_path, 1)
    engine, loader = make_engine()
    engine.load([ModelConfig("m", str(base))])
    old = engine.acquire(ModelSpec("m"))
    (base / "2").mkdir()
    poll = threading.Thread(target=engine.watcher.poll_once)
    poll.start()
    poll.join(0.3)
    assert poll.is_alive(), "unload must wait for the handle in flight"
    assert engine.acquire(ModelSpec("m")).version == 2
    assert not loader.servables[str(base / "1")].closed
    old.release()
    poll.join(5)
    assert loader.servables[str(base / "1")].closed
    assert {s.version: s.state for s in engine.status("m")} == {2: VersionState.AVAILABLE, 1: VersionState.END}


def test_deleted_version_is_unloaded_and_removed_model_is_gone(tmp_path: Path) -> None:
    base = make_repo(tmp_path, 1, 2)
    engine, _ = make_engine()
    engine.load([ModelConfig("m", str(base), version_policy=VersionPolicy("all"))])
    (base / "2").rmdir()
    engine.watcher.poll_once()
    assert {s.version: s.state for s in engine.status("m")} == {2: VersionState.END, 1: VersionState.AVAILABLE}
    engine.load([])
    with pytest.raises(ServableNotFound):
        engine.status("m")


def test_background_polling_picks_up_new_version(tmp_path: Path) -> None:
    base = make_repo(tmp_path, 1)
    loader = FolderLoader()
    engine = Engine(loader, EngineOptions(watcher=WatcherOptions(poll_wait_seconds=0.05)))
    engine.load([ModelConfig("m", str(base))])
    engine.start_polling()
    try:
        (base / "5").mkdir()
        for _ in range(200):
            if engine.status("m")[0].state is VersionState.AVAILABLE and engine.status("m")[0].version == 5:
                break
            threading.Event().wait(0.02)
        assert predict(engine, ModelSpec("m")) == (5, 6.0)
    finally:
        engine.stop()


@pytest.mark.parametrize(("threads", "together"), [(0, 1), (3, 3)])
def test_num_load_threads_loads_that_many_versions_at_once(tmp_path: Path, threads: int, together: int) -> None:
    # --num_load_threads: 0 loads one version after another; N loads up to N at once (three models here).
    running = 0
    most = 0
    lock = threading.Lock()
    three_at_once = threading.Barrier(3)

    def load(path: str) -> CallableServable:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            three_at_once.wait(timeout=0.5 if threads == 0 else 10)
        except threading.BrokenBarrierError:
            pass
        with lock:
            running -= 1
        return CallableServable({"serving_default": (SIG, lambda i: {"y": i["x"]})})

    options = EngineOptions(
        watcher=WatcherOptions(poll_wait_seconds=0, num_load_threads=threads, num_unload_threads=threads)
    )
    engine = Engine(load, options)
    models = [ModelConfig(name, str(make_repo(tmp_path / name, 1))) for name in ("a", "b", "c")]
    engine.load(models)
    assert most == together
    assert [engine.status(m.name)[0].state for m in models] == [VersionState.AVAILABLE] * 3
    engine.stop()
