"""--rest_api_timeout_in_ms on inference POSTs: 504 in TF Serving's shape, the queue left clean, serving goes on.

The engine runs in this process with a Python servable and a batching timeout far longer than the REST
timeout, so a lone request waits in its batch queue until its REST deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from tfserve_lab.config import BatchingConfig, ServerOptions
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import SignatureInfo
from tfserve_lab.results import Started
from tfserve_lab.server import ServingSession

SIG = SignatureInfo(
    "tensorflow/serving/predict", {"x": tensor_info("x", shape=(-1,))}, {"y": tensor_info("y", shape=(-1,))}
)


def _loader(path: str) -> CallableServable:
    return CallableServable({"serving_default": (SIG, lambda i: {"y": np.asarray(i["x"], np.float32) * 2})})


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ServingSession]:
    (tmp_path / "m" / "1").mkdir(parents=True)
    options = ServerOptions(
        port=0,
        grpc_port_enabled=True,
        rest_api_port=0,
        rest_api_enabled=True,
        host="127.0.0.1",
        model_name="m",
        model_base_path=str(tmp_path / "m"),
        file_system_poll_wait_seconds=0,
        monitoring_enabled=True,
        rest_api_timeout_in_ms=300,
        enable_batching=True,
        # A batch waits 3 s for company, ten times the REST timeout; 4 rows close it at once.
        batching=BatchingConfig(max_batch_size=4, batch_timeout_micros=3_000_000, num_batch_threads=1),
    )
    serving = ServingSession(options, loader=_loader)
    assert isinstance(serving.start(), Started)
    yield serving
    serving.stop()


def _url(session: ServingSession, path: str) -> str:
    assert session.info is not None
    return f"http://127.0.0.1:{session.info.rest_port}{path}"


def test_a_request_past_its_deadline_gets_504_and_leaves_its_batch(session: ServingSession) -> None:
    url = _url(session, "/v1/models/m:predict")
    started = time.monotonic()
    late = requests.post(url, json={"instances": [1.0]}, timeout=10)
    waited = time.monotonic() - started
    assert late.status_code == 504
    assert late.json() == {"error": "Request timed out."}
    assert 0.25 < waited < 2.5  # the REST deadline, not the 3 s batch timeout

    # The timed-out row left the queue: four new rows fill a batch of exactly four and come back at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda v: requests.post(url, json={"instances": [v]}, timeout=10), [1.0, 2.0, 3.0, 4.0])
        )
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json() for a in answers] == [{"predictions": [v * 2]} for v in (1.0, 2.0, 3.0, 4.0)]

    metrics = requests.get(_url(session, "/monitoring/prometheus/metrics"), timeout=10).text
    assert ':tensorflow:serving:request_count{model_name="m",status="DEADLINE_EXCEEDED"} 1' in metrics
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 4' in metrics
