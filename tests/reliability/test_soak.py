"""Soak (bounded, loopback): REST and gRPC clients hammer one model while versions come and go.

Odd versions are half_plus_two (y = 0.5x + 2), even ones half_plus_three (y = 0.5x + 3), so each answer says
which kind of version served it; every request sends its own x, so an answer meant for another request would
not match. Versions 1 and 2 stay; versions 3, 4, ... are added and removed all along.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import requests
import tensorflow as tf

from tests.integration.server_process import ServerProcess
from tests.reliability.helpers import float_request, predict_stub, rss_bytes

SOAK_SECONDS = 20.0
WARMUP_SECONDS = 4.0
CHURN_EVERY = 1.2
RSS_GROWTH_LIMIT = 150 * 1024 * 1024


def _offset(version: int) -> float:
    return 2.0 if version % 2 else 3.0


def _expected(x: float, version: int) -> float:
    return float(np.float32(0.5) * np.float32(x) + np.float32(_offset(version)))


class _Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.errors: list[str] = []

    def good(self) -> None:
        with self.lock:
            self.ok += 1

    def bad(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def _add_version(testdata: Path, base: Path, version: int) -> None:
    source = "saved_model_half_plus_two_cpu" if version % 2 else "saved_model_half_plus_three"
    staging = base / f".staging-{version}"
    shutil.copytree(testdata / source / "00000123", staging)
    staging.rename(base / str(version))  # appears whole: a half-copied folder is another test's subject


def _rest_client(server: ServerProcess, stop: threading.Event, tally: _Tally, seed: int) -> None:
    rng = random.Random(seed)
    with requests.Session() as session:
        while not stop.is_set():
            x = float(np.float32(rng.uniform(0, 1000)))
            version = rng.choice([1, 2, None])
            where = f"soak/versions/{version}" if version else "soak"
            try:
                response = session.post(f"{server.url}/v1/models/{where}:predict", json={"instances": [x]}, timeout=30)
            except requests.RequestException as exc:
                tally.bad(f"REST {where}: {exc}")
                continue
            if response.status_code != 200:
                tally.bad(f"REST {where}: {response.status_code} {response.text[:200]}")
                continue
            y = float(np.float32(response.json()["predictions"][0]))  # REST writes float32's shortest digits
            allowed = [_expected(x, version)] if version else [_expected(x, 1), _expected(x, 2)]
            if y in allowed:
                tally.good()
            else:
                tally.bad(f"REST {where}: x={x} got {y}, expected one of {allowed}")


def _grpc_client(server: ServerProcess, stop: threading.Event, tally: _Tally, seed: int) -> None:
    rng = random.Random(seed)
    channel, stub = predict_stub(server.grpc_port)
    with channel:
        while not stop.is_set():
            x = float(np.float32(rng.uniform(0, 1000)))
            version = rng.choice([1, 2, None, None])
            try:
                response = stub.Predict(float_request("soak", [x], version=version), timeout=30)
            except grpc.RpcError as error:
                tally.bad(f"gRPC version={version}: {error.code()} {error.details()}")
                continue
            served = response.model_spec.version.value
            y = float(tf.make_ndarray(response.outputs["y"]).reshape(-1)[0])
            if (version is None or served == version) and y == _expected(x, served):
                tally.good()
            else:
                tally.bad(f"gRPC asked {version}, served {served}: x={x} got {y}, expected {_expected(x, served)}")


def test_soak_rest_and_grpc_while_versions_come_and_go(testdata: Path, tmp_path: Path) -> None:
    base = tmp_path / "soak"
    base.mkdir()
    for version in (1, 2):
        _add_version(testdata, base, version)
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "soak" base_path: "{base}" model_platform: "tensorflow" '
        "model_version_policy { all {} } } }\n"
    )
    server = ServerProcess(
        [f"--model_config_file={config}", "--file_system_poll_wait_seconds=0.2", "--host=127.0.0.1"],
        log_path=tmp_path / "server.log",
    )
    stop = threading.Event()
    tally = _Tally()
    try:
        server.wait_ready("soak")
        clients = [
            threading.Thread(target=_rest_client, args=(server, stop, tally, 1)),
            threading.Thread(target=_rest_client, args=(server, stop, tally, 2)),
            threading.Thread(target=_grpc_client, args=(server, stop, tally, 3)),
            threading.Thread(target=_grpc_client, args=(server, stop, tally, 4)),
        ]
        for client in clients:
            client.start()
        started = time.monotonic()
        next_version, churned, baseline = 3, [], None
        while time.monotonic() - started < SOAK_SECONDS:
            time.sleep(CHURN_EVERY)  # the churn's pace: the workload, not a wait for the server
            _add_version(testdata, base, next_version)
            churned.append(next_version)
            next_version += 1
            if len(churned) > 2:
                shutil.rmtree(base / str(churned.pop(0)))
            if baseline is None and time.monotonic() - started >= WARMUP_SECONDS:
                baseline = rss_bytes(server.proc.pid)
        stop.set()
        for client in clients:
            client.join(60)
        final = rss_bytes(server.proc.pid)
        statuses = requests.get(f"{server.url}/v1/models/soak", timeout=10).json()["model_version_status"]
    finally:
        stop.set()
        server.stop()
    assert not tally.errors, f"{len(tally.errors)} failed of {tally.ok + len(tally.errors)}: {tally.errors[:5]}"
    assert tally.ok > 200, tally.ok
    assert next_version > 10, "the churn must have added versions all along"
    served = {int(row["version"]) for row in statuses if row["state"] == "AVAILABLE"}
    assert {1, 2} <= served
    assert baseline is not None
    assert final - baseline < RSS_GROWTH_LIMIT, f"RSS grew {(final - baseline) / 2**20:.0f} MiB after warm-up"
    print(f"soak: {tally.ok} requests, {next_version - 3} versions added, RSS {baseline >> 20} -> {final >> 20} MiB")
