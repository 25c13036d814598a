"""Faults in the model repository, the config file and the process: the server keeps serving, loses nothing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.conftest import wait_until
from tests.integration.server_process import ServerProcess
from tests.reliability.conftest import copy_version
from tests.reliability.helpers import predict_stub

CONFIG = """model_config_list {
  config { name: "halfwritten" base_path: "%(root)s/halfwritten" model_platform: "tensorflow" }
  config { name: "corrupt" base_path: "%(root)s/corrupt" model_platform: "tensorflow" }
  config { name: "deleting" base_path: "%(root)s/deleting" model_platform: "tensorflow" }
  config { name: "sentinel" base_path: "%(root)s/sentinel" model_platform: "tensorflow" }
%(extra)s}
"""


def _states(server: ServerProcess, model: str) -> dict[int, dict[str, Any]]:
    response = requests.get(f"{server.url}/v1/models/{model}", timeout=10)
    if response.status_code != 200:
        return {}
    return {int(row["version"]): row for row in response.json()["model_version_status"]}


def _state(server: ServerProcess, model: str, version: int) -> str | None:
    return _states(server, model).get(version, {}).get("state")


def _wait_for_polls(server: ServerProcess, template: Path, count: int) -> None:
    """Wait until the watcher has made ``count`` more passes over every model.

    Each pass shows as a new version of the sentinel model becoming AVAILABLE: a pass lists every
    model's folders before it loads anything, so a version added now loads in a later pass than any
    state seen now, and that pass looked at every other model's versions too.
    """
    base = server.root / "sentinel"  # type: ignore[attr-defined]
    for _ in range(count):
        version = max(int(path.name) for path in base.iterdir() if path.name.isdigit()) + 1
        copy_version(template, 1, base, as_version=version)

        def loaded(version: int = version) -> bool:
            return _state(server, "sentinel", version) == "AVAILABLE"

        wait_until(loaded, what=f"sentinel version {version} (one more poll)")


def _predict(server: ServerProcess, model: str, x: float = 1.0, version: int | None = None) -> float:
    where = f"{model}/versions/{version}" if version else model
    response = requests.post(f"{server.url}/v1/models/{where}:predict", json={"instances": [x]}, timeout=30)
    assert response.status_code == 200, response.text
    return float(response.json()["predictions"][0])


@pytest.fixture(scope="module")
def fault_server(faulty_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Three repositories to break and a sentinel that counts polls, each starting with a good version 1
    (y = 2x + 1); fast polls and retries."""
    root = tmp_path_factory.mktemp("faults")
    for name in ("halfwritten", "corrupt", "deleting", "sentinel"):
        (root / name).mkdir()
        copy_version(faulty_template, 1, root / name)
    copy_version(faulty_template, 2, root / "deleting")
    config = root / "models.config"
    config.write_text(CONFIG % {"root": root, "extra": ""})
    proc = ServerProcess(
        [
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=0.3",
            "--file_system_poll_wait_seconds=0.1",
            "--load_retry_interval_micros=200000",
            "--max_num_load_retries=3",
            "--host=127.0.0.1",
        ],
        log_path=root / "server.log",
    )
    proc.root = root  # type: ignore[attr-defined]
    try:
        proc.wait_ready("deleting")
        proc.wait_ready("sentinel")
        yield proc
    finally:
        proc.stop()


class _Traffic:
    """Unversioned requests in a loop on a thread; collects every answer."""

    def __init__(self, server: ServerProcess, model: str) -> None:
        self.server, self.model = server, model
        self.values: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                response = session.post(
                    f"{self.server.url}/v1/models/{self.model}:predict", json={"instances": [1.0]}, timeout=30
                )
                if response.status_code == 200:
                    self.values.append(float(response.json()["predictions"][0]))
                else:
                    self.failures.append(response.text)

    def __enter__(self) -> _Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_half_written_version_is_retried_until_complete(fault_server: ServerProcess, faulty_template: Path) -> None:
    """A version folder without saved_model.pb yet fails to load, is retried every --load_retry_interval_micros,
    loads once complete, and never takes the good version down meanwhile."""
    base = fault_server.root / "halfwritten"  # type: ignore[attr-defined]
    with _Traffic(fault_server, "halfwritten") as traffic:
        staging = base / ".staging"
        shutil.copytree(faulty_template / "2", staging)
        pb = staging / "saved_model.pb"
        held = pb.read_bytes()
        pb.unlink()
        staging.rename(base / "2")
        first_failure = wait_until(
            lambda: (_states(fault_server, "halfwritten").get(2) or {}).get("status", {}).get("error_message"),
            what="the first failed load of version 2",
        )
        assert _predict(fault_server, "halfwritten") == 3.0  # version 1 still serves
        tmp = base / "2" / ".saved_model.pb.tmp"
        tmp.write_bytes(held)
        os.replace(tmp, base / "2" / "saved_model.pb")
        wait_until(lambda: _state(fault_server, "halfwritten", 2) == "AVAILABLE", what="version 2")
        wait_until(lambda: _predict(fault_server, "halfwritten") == 4.0, what="version 2 answering")
    assert first_failure
    assert not traffic.failures, traffic.failures[:3]
    assert set(traffic.values) <= {3.0, 4.0}
    assert 3.0 in traffic.values
    assert "retry 1 of 3" in fault_server.log()


def test_corrupt_version_gives_up_after_retries_and_never_replaces_the_good_one(
    fault_server: ServerProcess, faulty_template: Path
) -> None:
    base = fault_server.root / "corrupt"  # type: ignore[attr-defined]
    with _Traffic(fault_server, "corrupt") as traffic:
        staging = base / ".staging"
        staging.mkdir()
        (staging / "saved_model.pb").write_bytes(b"\x08\x01 this is not a SavedModel \xff\xfe")
        staging.rename(base / "2")
        wait_until(lambda: _state(fault_server, "corrupt", 2) == "END", what="version 2 given up")
        # Three more polls, the last past --load_retry_interval_micros: no more attempts, version 1 serving.
        _wait_for_polls(fault_server, faulty_template, 3)
    rows = _states(fault_server, "corrupt")
    assert rows[1]["state"] == "AVAILABLE"
    assert rows[2]["status"]["error_message"]
    log = fault_server.log()
    attempts = [line for line in log.splitlines() if "{name: corrupt version: 2} failed" in line]
    assert len(attempts) == 4, attempts  # the first load and --max_num_load_retries=3 retries
    assert "retry 3 of 3" in log
    assert not traffic.failures, traffic.failures[:3]
    assert set(traffic.values) == {3.0}


def test_deleted_version_unloads_only_after_requests_in_flight(fault_server: ServerProcess) -> None:
    """Deleting the served version's folder moves serving to version 1; a request in flight on version 2
    completes, and version 2 stays UNLOADING (its servable kept) until it has."""
    base = fault_server.root / "deleting"  # type: ignore[attr-defined]
    assert _predict(fault_server, "deleting") == 4.0

    started = fault_server.root / "deleting-started"  # type: ignore[attr-defined]

    def slow() -> requests.Response:
        # In the model for 2.5 s: long enough to see version 2 UNLOADING while the request holds it.
        inputs = {"x": [1.0], "delay_ms": 2500, "started": str(started)}
        body = {"signature_name": "slow_marked", "inputs": inputs}
        return requests.post(f"{fault_server.url}/v1/models/deleting/versions/2:predict", json=body, timeout=60)

    with _Traffic(fault_server, "deleting") as traffic, ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(slow)
        wait_until(started.exists, what="the slow request to be inside version 2's model")
        shutil.rmtree(base / "2")
        wait_until(lambda: _state(fault_server, "deleting", 2) == "UNLOADING", what="UNLOADING")
        assert not in_flight.done()
        assert _state(fault_server, "deleting", 2) == "UNLOADING"
        response = in_flight.result()
        wait_until(lambda: _state(fault_server, "deleting", 2) == "END", what="END")
    assert response.status_code == 200, response.text
    assert response.json() == {"outputs": [4.0]}
    assert _predict(fault_server, "deleting") == 3.0
    assert not traffic.failures, traffic.failures[:3]
    assert set(traffic.values) <= {3.0, 4.0}


def test_invalid_config_file_keeps_the_last_good_config(fault_server: ServerProcess, testdata: Path) -> None:
    root: Path = fault_server.root  # type: ignore[attr-defined]
    config = root / "models.config"
    good = config.read_text()
    with _Traffic(fault_server, "halfwritten") as traffic:
        config.write_text("model_config_list { config { name: ")  # does not parse
        wait_until(lambda: fault_server.log().count("Keeping the last good model config") >= 1, what="the parse error")
        config.write_text(CONFIG % {"root": root, "extra": '  config { name: "gone" base_path: "/no/such/path" }\n'})
        wait_until(
            lambda: fault_server.log().count("Keeping the last good model config") >= 2, what="the bad base path"
        )
        assert _states(fault_server, "gone") == {}
        # The poller lived through both: a valid config is still applied.
        extra = f'  config {{ name: "added" base_path: "{testdata}/saved_model_half_plus_two_cpu" }}\n'
        config.write_text(CONFIG % {"root": root, "extra": extra})
        wait_until(lambda: _state(fault_server, "added", 123) == "AVAILABLE", what="the new model")
    config.write_text(good)
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in fault_server.log()
    assert not traffic.failures, traffic.failures[:3]


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


def test_sigterm_drains_requests_in_flight_then_closes_the_ports(faulty_template: Path, tmp_path: Path) -> None:
    base = tmp_path / "faulty"
    base.mkdir()
    copy_version(faulty_template, 1, base)
    server = ServerProcess(
        ["--model_name=faulty", f"--model_base_path={base}", "--host=127.0.0.1", "--shutdown_grace_seconds=20"],
        log_path=tmp_path / "server.log",
    )
    try:
        server.wait_ready("faulty")
        rest_started, grpc_started = tmp_path / "rest-started", tmp_path / "grpc-started"
        # Each request stays in the model for 3 s: the shutdown begins while both are running.
        inputs = {"x": [1.0], "delay_ms": 3000, "started": str(rest_started)}
        body = {"signature_name": "slow_marked", "inputs": inputs}
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "faulty"
        request.model_spec.signature_name = "slow_marked"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([5.0], dtype=tf.float32))
        request.inputs["delay_ms"].CopyFrom(tf.make_tensor_proto(3000, dtype=tf.int64))
        request.inputs["started"].CopyFrom(tf.make_tensor_proto(str(grpc_started)))
        channel, stub = predict_stub(server.grpc_port)
        with channel, ThreadPoolExecutor(2) as pool:
            rest = pool.submit(requests.post, f"{server.url}/v1/models/faulty:predict", json=body, timeout=60)
            slow_grpc = stub.Predict.future(request, timeout=60)
            wait_until(
                lambda: rest_started.exists() and grpc_started.exists(), what="both slow requests inside the model"
            )
            server.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: _refused(server.rest_port), timeout=5, what="the REST port to refuse connections")
            assert not rest.done(), "the request in flight must not be cut"
            late_channel, late_stub = predict_stub(server.grpc_port)
            with late_channel, pytest.raises(grpc.RpcError) as caught:
                late_stub.Predict(request, timeout=5)
            # Refused: a call racing the shutdown is cancelled, a later one finds no server.
            assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            response = rest.result()
            assert response.status_code == 200, response.text
            assert response.json() == {"outputs": [3.0]}
            assert tf.make_ndarray(slow_grpc.result().outputs["y"]).tolist() == [11.0]
        assert server.proc.wait(30) == 0
        assert _refused(server.grpc_port)
    finally:
        server.stop()
