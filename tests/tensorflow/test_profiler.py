"""TensorFlow's profiler answers on the serving gRPC port, as in TF Serving."""

from __future__ import annotations

import threading
from pathlib import Path

import requests
import tensorflow as tf

from tfserve_lab.config import ModelConfig, ServerOptions
from tfserve_lab.results import Started
from tfserve_lab.server import ServingSession


def test_trace_captured_through_the_grpc_port(testdata: Path, tmp_path: Path) -> None:
    options = ServerOptions(
        port=0,
        grpc_port_enabled=True,
        rest_api_port=0,
        rest_api_enabled=True,
        host="127.0.0.1",
        models=(ModelConfig("half_plus_two", str(testdata / "saved_model_half_plus_two_cpu")),),
    )
    session = ServingSession(options)
    assert isinstance(session.start(), Started)
    stop = threading.Event()

    def traffic() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                http.post(
                    f"{session.info.rest_url}/v1/models/half_plus_two:predict", json={"instances": [1.0]}, timeout=10
                )

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        tf.profiler.experimental.client.trace(f"grpc://127.0.0.1:{session.info.grpc_port}", str(tmp_path), 800)
    finally:
        stop.set()
        worker.join()
        session.stop()
    traces = list(tmp_path.glob("plugins/profile/*/*.xplane.pb"))
    assert len(traces) == 1
    assert traces[0].stat().st_size > 0
