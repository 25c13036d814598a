"""EngineMetrics: TF Serving's exact exposition lines, the tutorial's families, isolation and threads."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY, Counter, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tfserve_lab.core.events import BatchRun, RequestDone, VersionChanged
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode
from tfserve_lab.metrics.engine_metrics import EngineMetrics
from tfserve_lab.metrics.histograms import exponential_buckets

# TF Serving's Exponential(10, 1.8, 33) limits as its exporter prints them (research notes, metrics.md).
# fmt: off
TF_LATENCY_LIMITS = [
    "10", "18", "32.4", "58.32", "104.976", "188.957", "340.122",
    "612.22", "1102", "1983.59", "3570.47", "6426.84", "11568.3", "20823",
    "37481.3", "67466.4", "121440", "218591", "393464", "708235", "1.27482e+06",
    "2.29468e+06", "4.13043e+06", "7.43477e+06", "1.33826e+07", "2.40887e+07", "4.33596e+07", "7.80473e+07",
    "1.40485e+08", "2.52873e+08", "4.55172e+08", "8.19309e+08", "1.47476e+09", "+Inf",
]
# fmt: on


def request(
    code: ErrorCode = ErrorCode.OK,
    *,
    model: str = "m",
    version: int | None = 1,
    method: str = "predict",
    protocol: str = "rest",
    latency_s: float = 0.001,
    runtime_s: float = 0.0,
    examples: int = 0,
) -> RequestDone:
    return RequestDone(model, version, "serving_default", method, protocol, code, latency_s, runtime_s, examples)


def lines(metrics: EngineMetrics) -> list[str]:
    return metrics.render().decode().splitlines()


def families(metrics: EngineMetrics) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(metrics.render().decode())}


def value(family: Metric, sample_name: str, **labels: str) -> float:
    found = [s.value for s in family.samples if s.name == sample_name and s.labels == labels]
    assert len(found) == 1, (sample_name, labels, family.samples)
    return found[0]


def test_request_count_lines_are_tf_servings_exactly() -> None:
    metrics = EngineMetrics()
    for _ in range(3):
        metrics.observe(request())
    metrics.observe(request(ErrorCode.NOT_FOUND, version=None))
    page = lines(metrics)
    assert "# TYPE :tensorflow:serving:request_count counter" in page
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 3' in page
    assert ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1' in page
    assert not any(line.startswith("# HELP :") or ":request_count_total" in line for line in page)
    assert metrics.render_tf_serving().endswith("} 3\n")


def test_request_latency_is_microseconds_with_tfs_buckets_and_upper_bound_rule() -> None:
    metrics = EngineMetrics()
    metrics.observe(request(latency_s=0.000025))  # 25 us -> bucket (18, 32.4)
    metrics.observe(request(latency_s=0.000018))  # exactly a limit: TF puts it in the next bucket
    metrics.observe(request(ErrorCode.INVALID_ARGUMENT, latency_s=0.5))  # failures have no latency in TF
    page = lines(metrics)
    prefix = ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",le='
    buckets = [line for line in page if line.startswith(prefix)]
    assert [line[len(prefix) :].split('"')[1] for line in buckets] == TF_LATENCY_LIMITS
    assert f'{prefix}"10"}} 0' in page
    assert f'{prefix}"18"}} 0' in page
    assert f'{prefix}"32.4"}} 2' in page
    assert f'{prefix}"+Inf"}} 2' in page
    assert ':tensorflow:serving:request_latency_sum{model_name="m",API="predict",entrypoint="REST"} 43' in page
    assert ':tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"} 2' in page


def test_api_and_entrypoint_labels_follow_tf_serving() -> None:
    metrics = EngineMetrics()
    metrics.observe(request(method="classify", protocol="grpc"))
    metrics.observe(request(method="regress", protocol="rest"))
    metrics.observe(request(method="predict", protocol="python"))
    latency = families(metrics)[":tensorflow:serving:request_latency"]
    keys = {(s.labels["API"], s.labels["entrypoint"]) for s in latency.samples}
    assert keys == {("Classify", "GRPC"), ("regress", "REST"), ("Predict", "PYTHON")}


def test_examples_and_runtime_latency() -> None:
    metrics = EngineMetrics()
    metrics.observe(request(method="classify", protocol="grpc", examples=3, runtime_s=0.0005))
    metrics.observe(request(method="predict", examples=8))  # Predict takes tensors, not tf.Examples
    page = lines(metrics)
    assert ':tensorflow:serving:request_example_count_total{model="m"} 3' in page
    assert ':tensorflow:serving:request_example_counts_bucket{model="m",le="2"} 0' in page
    assert ':tensorflow:serving:request_example_counts_bucket{model="m",le="4"} 1' in page
    assert ':tensorflow:serving:request_example_counts_bucket{model="m",le="16384"} 1' in page
    assert ':tensorflow:serving:request_example_counts_count{model="m"} 1' in page
    assert ':tensorflow:serving:runtime_latency_sum{model_name="m",API="Classify",runtime="TF1"} 500' in page
    assert ':tensorflow:serving:runtime_latency_count{model_name="m",API="Predict",runtime="TF1"} 1' not in page


def test_batching_families() -> None:
    metrics = EngineMetrics(thread_pool_name="model_server_batch_threads")
    metrics.observe(BatchRun("m", 1, "serving_default", input_size=3, padded_size=4, queuing_s=0.00015, runtime_s=0.01))
    page = lines(metrics)
    batching = ":tensorflow:serving:batching_session:"
    assert f'{batching}input_batch_size_bucket{{le="2"}} 0' in page
    assert f'{batching}input_batch_size_bucket{{le="4"}} 1' in page
    assert f"{batching}input_batch_size_sum{{}} 3" in page
    assert f'{batching}processed_batch_size_bucket{{le="4"}} 0' in page  # 4 is a limit: next bucket
    assert f'{batching}processed_batch_size_bucket{{le="8"}} 1' in page
    assert f'{batching}padding_size_bucket{{execution_batch_size="4",le="1"}} 0' in page
    assert f'{batching}padding_size_bucket{{execution_batch_size="4",le="2"}} 1' in page
    pool = 'thread_pool_name="model_server_batch_threads"'
    assert f'{batching}queuing_latency_bucket{{{pool},le="144"}} 0' in page
    assert f'{batching}queuing_latency_bucket{{{pool},le="172.8"}} 1' in page
    assert f'{batching}queuing_latency_bucket{{{pool},le="1.09205e+06"}} 1' in page
    assert f"{batching}wrapped_run_count{{}} 1" in page
    assert len([line for line in page if line.startswith(f"{batching}queuing_latency_bucket")]) == 53


def test_load_warmup_and_failed_attempts() -> None:
    metrics = EngineMetrics(model_path=lambda model, version: f"/models/{model}/{version:08d}")
    metrics.observe(VersionChanged("m", 1, VersionState.START))
    metrics.observe(VersionChanged("m", 1, VersionState.LOADING))
    metrics.observe(VersionChanged("m", 1, VersionState.START, error="boom"))  # retry later
    metrics.observe(VersionChanged("m", 1, VersionState.LOADING, error="boom"))
    metrics.observe(VersionChanged("m", 1, VersionState.AVAILABLE, load_latency_s=1.5, warmup_latency_s=0.2))
    metrics.observe(VersionChanged("m", 1, VersionState.AVAILABLE, load_latency_s=1.5))  # a repeat: no new load
    metrics.observe(VersionChanged("m", 2, VersionState.LOADING))
    metrics.observe(VersionChanged("m", 2, VersionState.END, error="bad"))
    metrics.observe(VersionChanged("m", 2, VersionState.END, error="bad"))  # repeated error, not an attempt
    page = lines(metrics)
    one, two = 'model_path="/models/m/00000001"', 'model_path="/models/m/00000002"'
    assert f':tensorflow:cc:saved_model:load_attempt_count{{{one},status="success"}} 1' in page
    assert f':tensorflow:cc:saved_model:load_attempt_count{{{one},status="fail"}} 1' in page
    assert f':tensorflow:cc:saved_model:load_attempt_count{{{two},status="fail"}} 1' in page
    assert f":tensorflow:cc:saved_model:load_latency{{{one}}} 1500000" in page
    assert f':tensorflow:serving:model_warmup_latency_count{{{one},status="OK"}} 1' in page
    assert f':tensorflow:serving:model_warmup_latency_sum{{{one},status="OK"}} 200000' in page
    load = families(metrics)["tensorflow_serving_model_load_latency_seconds"]
    assert value(load, "tensorflow_serving_model_load_latency_seconds", model="m", version="1") == 1.5


def test_tf_families_sorted_by_internal_name_and_only_when_used() -> None:
    metrics = EngineMetrics()
    assert metrics.render_tf_serving() == "\n"
    metrics.observe(request(method="classify", examples=2))
    metrics.observe(BatchRun("m", 1, "serving_default", 2, 2, 0.0, 0.0))
    metrics.observe(VersionChanged("m", 1, VersionState.LOADING))
    metrics.observe(VersionChanged("m", 1, VersionState.AVAILABLE, load_latency_s=0.1))
    types = [line.split()[2] for line in lines(metrics) if line.startswith("# TYPE :")]
    assert types == [
        ":tensorflow:cc:saved_model:load_attempt_count",
        ":tensorflow:cc:saved_model:load_latency",
        ":tensorflow:serving:batching_session:input_batch_size",
        ":tensorflow:serving:batching_session:padding_size",
        ":tensorflow:serving:batching_session:processed_batch_size",
        ":tensorflow:serving:batching_session:queuing_latency",
        ":tensorflow:serving:batching_session:wrapped_run_count",
        ":tensorflow:serving:request_count",
        ":tensorflow:serving:request_example_count_total",
        ":tensorflow:serving:request_example_counts",
        ":tensorflow:serving:request_latency",
    ]


def test_tutorial_families_carry_model_version_signature_method_protocol_status() -> None:
    metrics = EngineMetrics()
    for _ in range(2):
        metrics.observe(request(latency_s=0.003))
    metrics.observe(request(ErrorCode.UNAVAILABLE, protocol="grpc", latency_s=0.005))
    metrics.observe(BatchRun("m", 1, "serving_default", 5, 8, 0.0, 0.0))
    page = lines(metrics)
    # The literal names the tutorial's PromQL selects exist as samples.
    for name in (
        "tensorflow_serving_request_count{",
        "tensorflow_serving_request_latency_bucket{",
        "tensorflow_serving_batch_size_bucket{",
    ):
        assert any(line.startswith(name) for line in page), name
    parsed = families(metrics)
    ok = {"model": "m", "version": "1", "signature": "serving_default", "method": "predict", "protocol": "rest"}
    count = parsed["tensorflow_serving_request_count"]
    assert count.type == "unknown"
    assert value(count, "tensorflow_serving_request_count", **ok, status="OK") == 2
    assert value(count, "tensorflow_serving_request_count", **(ok | {"protocol": "grpc"}), status="UNAVAILABLE") == 1
    latency = parsed["tensorflow_serving_request_latency"]
    name = "tensorflow_serving_request_latency_bucket"
    assert value(latency, name, **ok, status="OK", le="0.0025") == 0
    assert value(latency, name, **ok, status="OK", le="0.005") == 2
    # Prometheus' le is "<=": 5 ms lands in le="0.005".
    assert value(latency, name, **(ok | {"protocol": "grpc"}), status="UNAVAILABLE", le="0.005") == 1
    assert value(latency, "tensorflow_serving_request_latency_count", **ok, status="OK") == 2
    batch = parsed["tensorflow_serving_batch_size"]
    labels = {"model": "m", "version": "1", "signature": "serving_default"}
    assert value(batch, "tensorflow_serving_batch_size_bucket", **labels, le="4.0") == 0
    assert value(batch, "tensorflow_serving_batch_size_bucket", **labels, le="8.0") == 1
    assert "tensorflow_serving_model_load_latency_seconds" in parsed


def test_two_instances_do_not_mix_and_the_global_registry_stays_clean() -> None:
    first, second = EngineMetrics(), EngineMetrics()
    first.observe(request(model="a"))
    second.observe(request(model="b"))
    assert 'model_name="b"' not in first.render().decode()
    assert 'model_name="a"' not in second.render().decode()
    assert first.registry is not second.registry
    assert b"tensorflow_serving" not in generate_latest(REGISTRY)


def test_registry_refuses_a_clashing_metric() -> None:
    metrics = EngineMetrics()
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("tensorflow_serving_batch_size", "clash", registry=metrics.registry)


def test_label_values_are_escaped_and_parse_back() -> None:
    metrics = EngineMetrics()
    name = 'we"ird\\name\nx'
    metrics.observe(request(model=name))
    page = metrics.render().decode()
    assert ':tensorflow:serving:request_count{model_name="we\\"ird\\\\name\\nx",status="OK"} 1' in page
    count = {f.name: f for f in text_string_to_metric_families(page)}[":tensorflow:serving:request_count"]
    assert count.samples[0].labels["model_name"] == name


def test_threads_feeding_events_keep_exact_totals() -> None:
    metrics = EngineMetrics()
    threads, per_thread = 8, 1500

    def feed(index: int) -> None:
        protocol = "rest" if index % 2 else "grpc"
        for _ in range(per_thread):
            metrics.observe(request(protocol=protocol))
            metrics.observe(BatchRun("m", 1, "serving_default", 2, 2, 0.0, 0.0))

    workers = [threading.Thread(target=feed, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    page = lines(metrics)
    total = threads * per_thread
    assert f':tensorflow:serving:request_count{{model_name="m",status="OK"}} {total}' in page
    assert f":tensorflow:serving:batching_session:wrapped_run_count{{}} {total}" in page
    parsed = families(metrics)
    count = parsed["tensorflow_serving_request_count"]
    assert sum(s.value for s in count.samples) == total


def test_exponential_buckets_match_tf() -> None:
    assert [f"{x:g}" for x in exponential_buckets(10, 1.8, 33)] == TF_LATENCY_LIMITS[:-1]
    assert exponential_buckets(1, 2, 15)[-1] == 16384
