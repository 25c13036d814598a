"""Live traffic into the notebook: capture, save and load, warmup from it, compare on it, replay it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tfserve_lab import api
from tfserve_lab.capture import Capture
from tfserve_lab.config import ModelConfig, RequestLogging
from tfserve_lab.core.servables.loader import LoadOptions, load_version
from tfserve_lab.results import Started


def make_model(seed: int) -> object:
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((4,), name="features"), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )


class Traffic:
    """REST predicts with distinct rows from a thread of the test (the engine runs in this process)."""

    def __init__(self, url: str) -> None:
        self.url, self.sent = url, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = np.random.default_rng(3)
        with requests.Session() as http:
            while not self._stop.wait(0.005):
                rows = rng.random((2, 4), dtype=np.float32)
                answer = http.post(self.url, json={"instances": rows.tolist()}, timeout=10)
                assert answer.status_code == 200, answer.text
                self.sent.append(rows)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("capture")
    api.stop()
    assert isinstance(api.start(rest_port=0, grpc_port=0), Started)
    try:
        api.export(make_model(1), "m", models_dir=str(root / "models"))
        api.deploy("m", models_dir=str(root / "models"))
        yield root
    finally:
        api.stop()


@pytest.fixture(scope="module")
def captured(served: Path) -> Capture:
    url = f"{api.current().info.rest_url}/v1/models/m:predict"
    with Traffic(url):
        capture = api.capture("m", seconds=30, count=40)
    return capture


def test_capture_holds_the_requests_and_the_answers_as_arrays(captured: Capture) -> None:
    assert len(captured) == 40
    assert captured.inputs["features"].shape == (80, 4)  # 40 requests of 2 rows
    (name,) = captured.outputs
    assert captured.outputs[name].shape == (80, 1)
    again = np.asarray(api.predict("m", captured.inputs["features"]))
    np.testing.assert_allclose(again, captured.outputs[name], rtol=1e-6)
    assert set(captured.versions.tolist()) == {1}
    assert np.all(np.diff(captured.timestamps) >= 0)
    assert captured.requests_per_second > 0
    frame = captured.to_frame()
    assert list(frame["version"]) == [1] * 40
    assert "input:features" in frame.columns


def test_save_and_load_round_trip_in_the_request_log_format(captured: Capture, tmp_path: Path) -> None:
    path = captured.save(tmp_path / "capture.tfrecord")
    loaded = Capture.load(path)
    assert loaded.model == "m"
    assert len(loaded) == len(captured)
    np.testing.assert_array_equal(loaded.inputs["features"], captured.inputs["features"])
    for name in captured.outputs:
        np.testing.assert_array_equal(loaded.outputs[name], captured.outputs[name])
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    records = [prediction_log_pb2.PredictionLog.FromString(d.numpy()) for d in tf.data.TFRecordDataset(str(path))]
    assert [r.WhichOneof("log_type") for r in records] == ["predict_log"] * 40


def test_a_capture_is_a_warmup_file_the_engine_replays(captured: Capture, served: Path) -> None:
    exported = api.export(make_model(2), "m", models_dir=str(served / "models"), warmup=captured)
    assert exported.version == 2
    assert exported.warmup_records == len(captured)
    servable = load_version(exported.path, LoadOptions(warmup=True))
    assert servable.warmup_records == len(captured)  # type: ignore[attr-defined]
    servable.close()


def test_compare_two_versions_on_the_captured_inputs_against_the_live_answers(captured: Capture, served: Path) -> None:
    from tfserve_lab.notebook.compare import compare

    api.deploy("m", models_dir=str(served / "models"), policy="all")
    report = compare("m", 1, 2, captured.inputs, live=captured.outputs)
    assert report.source == "capture"
    assert "captured live inputs" in report.title
    (agreement,) = report.live_agreement.values()
    assert agreement[0] == 1.0  # version 1 answered the captured requests
    assert any(row[0] == "agreement with live" for row in report.rows())


def test_bench_replays_the_captured_requests_at_a_rate(captured: Capture) -> None:
    result = api.bench("m", replay=captured, rate=(150,), seconds=1.0, warmup=0.3)
    (row,) = result.rows
    assert row.errors == 0, row.first_error
    assert 120 <= row.requests_per_second <= 180
    assert result.rows_per_request == 2


def test_a_log_the_engine_wrote_loads_as_a_capture(served: Path) -> None:
    prefix = served / "logs" / "m"
    session = api.current()
    models = [m for m in session.engine.models() if m.name == "m"]
    session.reload([ModelConfig("m", models[0].base_path, logging=RequestLogging(1.0, str(prefix)))])
    api.deploy("m", models[0].base_path, policy=models[0].version_policy)  # deployed again: still logged
    assert "m" in session.engine.request_log.configured()
    url = f"{session.info.rest_url}/v1/models/m:predict"
    for i in range(7):
        assert requests.post(url, json={"instances": [[float(i)] * 4]}, timeout=10).ok
    session.reload([ModelConfig("m", models[0].base_path)])  # logging off: the file is flushed and closed
    loaded = Capture.load(f"{prefix}-*.tfrecord")
    assert len(loaded) == 7
    assert loaded.inputs["features"][:, 0].tolist() == [float(i) for i in range(7)]
