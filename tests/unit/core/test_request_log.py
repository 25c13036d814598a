"""The engine's request log: sampling, a full queue that drops and counts, reloads that change logging."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from tfserve_lab.config import ModelConfig, RequestLogging
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.events import RequestLogDropped
from tfserve_lab.core.request_log import LoggedRequest, QueueSink, RequestLog
from tfserve_lab.core.requests import ArrayInputs
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, SignatureInfo
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.metrics.engine_metrics import EngineMetrics

SIG = SignatureInfo("tensorflow/serving/predict", {"x": tensor_info("x:0")}, {"y": tensor_info("y:0")})


def double(path: str) -> CallableServable:
    return CallableServable({"serving_default": (SIG, lambda i: {"y": i["x"] * 2})})


class Sinks:
    """Log sinks made for the engine, each writing into a list, optionally slowly."""

    def __init__(self, delay_s: float = 0.0, maxsize: int = 10_000) -> None:
        self.delay_s, self.maxsize = delay_s, maxsize
        self.made: list[tuple[str, RequestLogging, list[LoggedRequest], QueueSink]] = []

    def __call__(self, model: str, config: RequestLogging) -> QueueSink:
        written: list[LoggedRequest] = []

        def write(record: LoggedRequest) -> None:
            time.sleep(self.delay_s)
            written.append(record)

        sink = QueueSink(write, maxsize=self.maxsize)
        self.made.append((model, config, written, sink))
        return sink


def engine_with(tmp_path: Path, sinks: Sinks, rate: float = 1.0) -> tuple[Engine, ModelConfig]:
    (tmp_path / "m" / "1").mkdir(parents=True, exist_ok=True)
    engine = Engine(double, EngineOptions(watcher=WatcherOptions(poll_wait_seconds=0), log_sink_factory=sinks))
    config = ModelConfig("m", str(tmp_path / "m"), logging=RequestLogging(rate, str(tmp_path / "log")))
    engine.load([config])
    return engine, config


def predict(engine: Engine, count: int) -> float:
    """``count`` predicts; returns the slowest one's seconds."""

    async def run() -> float:
        slowest = 0.0
        for i in range(count):
            started = time.perf_counter()
            result = await engine.predict(ModelSpec("m"), ArrayInputs({"x": np.array([[float(i)]], np.float32)}))
            slowest = max(slowest, time.perf_counter() - started)
            assert float(result.outputs["y"][0, 0]) == 2.0 * i
        return slowest

    return asyncio.run(run())


def test_every_request_is_recorded_with_what_was_sent_and_answered(tmp_path: Path) -> None:
    sinks = Sinks()
    engine, _ = engine_with(tmp_path, sinks)
    predict(engine, 20)
    engine.stop()  # flushes the sinks
    ((model, config, written, sink),) = sinks.made
    assert (model, config.sampling_rate, len(written), sink.dropped) == ("m", 1.0, 20, 0)
    assert [float(r.inputs["x"][0, 0]) for r in written] == [float(i) for i in range(20)]
    assert all(float(r.outputs["y"][0, 0]) == 2 * float(r.inputs["x"][0, 0]) for r in written)
    assert {(r.version, r.signature, r.method) for r in written} == {(1, "serving_default", "predict")}


def test_a_full_queue_drops_records_counts_them_and_fails_no_request(tmp_path: Path) -> None:
    sinks = Sinks(delay_s=0.05, maxsize=2)  # a sink far slower than the requests
    engine, _ = engine_with(tmp_path, sinks)
    dropped_events: list[RequestLogDropped] = []
    metrics = EngineMetrics()
    engine.add_observer(lambda e: dropped_events.append(e) if isinstance(e, RequestLogDropped) else None)
    engine.add_observer(metrics.observe)
    slowest = predict(engine, 50)  # every one answers (asserted inside)
    assert slowest < 0.05, "a request never waits for the sink"
    sink = sinks.made[0][3]
    assert sink.dropped > 0
    assert len(dropped_events) == sink.dropped
    assert f'tfserve_lab_request_log_dropped_total{{model="m"}} {float(sink.dropped)}' in metrics.render().decode()
    engine.stop()
    assert len(sinks.made[0][2]) + sink.dropped == 50


def test_reloads_turn_logging_off_on_and_change_the_rate(tmp_path: Path) -> None:
    sinks = Sinks()
    engine, config = engine_with(tmp_path, sinks)
    predict(engine, 5)
    engine.load([ModelConfig("m", config.base_path)])  # logging_config removed
    predict(engine, 5)
    assert len(sinks.made) == 1
    assert len(sinks.made[0][2]) == 5, "the first sink was flushed and closed at the reload"
    assert not engine.request_log.active
    engine.load([ModelConfig("m", config.base_path, logging=RequestLogging(0.5, str(tmp_path / "again")))])
    assert engine.request_log.configured()["m"][0] == 0.5
    predict(engine, 200)
    engine.stop()
    assert 60 <= len(sinks.made[1][2]) <= 140  # binomial(200, 0.5)


def test_a_tap_collects_its_own_sample_beside_the_configured_log() -> None:
    request_log = RequestLog(seed=1)
    tap = request_log.tap("m", rate=1.0, count=3)
    made = []

    def make(rate: float) -> LoggedRequest:
        made.append(rate)
        return LoggedRequest("m", 1, "s", "predict", {}, {}, sampling_rate=rate)

    for _ in range(5):
        request_log.offer("m", make)
    assert len(tap.records) == 3
    assert tap.full.is_set()
    request_log.untap("m", tap)
    assert not request_log.active
    request_log.offer("m", make)
    assert len(made) == 5  # nothing is built for nobody
