"""Load against a served model from processes of their own: bench, batching tune, and a profile under load."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tfserve_lab.api import engine_calls
from tfserve_lab.api.live_batching import set_batching
from tfserve_lab.api.session import current
from tfserve_lab.core.types import ModelSpec
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

if TYPE_CHECKING:
    from tfserve_lab.capture import Capture
    from tfserve_lab.config import BatchingConfig
    from tfserve_lab.loadtest.profile import ProfileResult
    from tfserve_lab.loadtest.results import BenchResult, BenchRow
    from tfserve_lab.loadtest.runner import Load
    from tfserve_lab.loadtest.tune import TuneResult

__all__ = ["bench", "capacity", "profile", "tune"]

# Requests/s a model sustained within its SLO in the last tune (per replica, for ``k8s(target_rps=...)``).
_capacity: dict[str, float] = {}


def capacity(name: str) -> float | None:
    """The requests/s one replica of model ``name`` sustained within its SLO in the last ``tune`` (None: no tune)."""
    return _capacity.get(name)


def bench(
    name: str,
    *,
    concurrency: Sequence[int] = (1, 8, 32),
    rate: Sequence[float] = (),
    protocol: str = "rest",
    seconds: float = 5.0,
    warmup: float = 1.0,
    rows: int = 1,
    data: Any = None,
    version: int | None = None,
    signature: str = "",
    stability: float = 0.10,
    max_windows: int = 4,
    processes: int = 2,
    progress: Callable[[str], None] | None = None,
    replay: Capture | None = None,
) -> BenchResult:
    """Load-test a served model from processes of their own: closed loop per concurrency, open loop per rate.

    Args:
        name: The served model.
        concurrency: Closed-loop levels: clients that each send as soon as their last answer came.
        rate: Open-loop levels, in requests per second, sent on schedule whatever the answers.
        protocol: ``"rest"`` or ``"grpc"``.
        seconds: Length of a measured window (a level takes two to ``max_windows`` of them).
        warmup: Seconds of load before a level's first window.
        rows: Rows per request.
        data: What to send (an array for one input, a dict by input name); made from the signature's
            dtypes and shapes when None.
        version: Pin a version (default: what unversioned requests get).
        signature: The signature to call (default ``serving_default``).
        stability: Two consecutive windows must agree this closely (throughput and mean latency).
        max_windows: Windows at most per level before it is reported as not stable.
        processes: Load-generator processes (the caller runs no load thread of its own).
        progress: Called with a line of text after each window.
        replay: A ``Capture`` whose requests are sent, in turn, open loop at ``rate`` (default: the rate
            they were captured at); ``concurrency`` then defaults to none.
    """
    from tfserve_lab.loadtest.results import BenchResult
    from tfserve_lab.loadtest.runner import run_level

    if replay is not None:
        load = _replay_load(name, replay, protocol=protocol, version=version)
        rows = load.rows
        if not rate:
            if replay.requests_per_second <= 0:
                raise InvalidArgument("The capture has no rate to replay at (fewer than two requests): give --rate.")
            rate = (round(replay.requests_per_second, 1),)
        if concurrency == (1, 8, 32):
            concurrency = ()
    else:
        load = _bench_load(name, protocol=protocol, rows=rows, data=data, version=version, signature=signature)
    if not concurrency and not rate:
        raise InvalidArgument("give at least one concurrency or rate")
    levels: list[dict[str, Any]] = [{"concurrency": c} for c in concurrency] + [{"rate": float(r)} for r in rate]
    measured = [
        run_level(
            load,
            **level,
            warmup_s=warmup,
            window_s=seconds,
            stability=stability,
            max_windows=max_windows,
            processes=processes,
            progress=progress,
        )
        for level in levels
    ]
    return BenchResult(name, protocol, rows, tuple(measured), seconds, stability)


def _bench_load(name: str, *, protocol: str, rows: int, data: Any, version: int | None, signature: str) -> Load:
    """The target and the one request a bench or a profile sends to model ``name``."""
    from tfserve_lab.loadtest.payload import bench_inputs

    key, sig = engine_calls.signature(ModelSpec(name, version, signature_name=signature))
    return _request_load(name, protocol=protocol, version=version, signature=key, inputs=bench_inputs(sig, rows, data))


def _request_load(name: str, *, protocol: str, version: int | None, signature: str, inputs: Mapping[str, Any]) -> Load:
    from tfserve_lab.loadtest.payload import grpc_payload, rest_payload
    from tfserve_lab.loadtest.runner import Load

    if protocol not in ("rest", "grpc"):
        raise InvalidArgument(f"protocol must be rest or grpc, got {protocol!r}")
    session = current()
    info = session.info
    if info is None:
        raise TfServeError("No engine is running: start one with %tfserve start.", code=ErrorCode.FAILED_PRECONDITION)
    rows = len(next(iter(inputs.values()))) if inputs else 1
    host = "127.0.0.1" if info.host in ("0.0.0.0", "") else info.host.strip("[]")
    token = session.options.auth_token
    if protocol == "rest":
        if not info.rest_port:
            raise TfServeError("The engine serves no REST port to bench.", code=ErrorCode.FAILED_PRECONDITION)
        path = f"/v1/models/{name}" + (f"/versions/{version}" if version is not None else "") + ":predict"
        return Load(
            protocol, host, info.rest_port, rest_payload(host, info.rest_port, path, inputs, token), rows, token
        )
    return Load(protocol, host, info.grpc_port, grpc_payload(name, version, signature, inputs), rows, token)


def _replay_load(name: str, capture: Capture, *, protocol: str, version: int | None) -> Load:
    """Every captured predict request of ``capture``, as the requests of one load."""
    from dataclasses import replace

    records = capture.predict_records
    if not records:
        raise InvalidArgument("The capture holds no predict requests to replay.")
    loads = [
        _request_load(name, protocol=protocol, version=version, signature=r.signature, inputs=dict(r.inputs))
        for r in records
    ]
    rows = round(sum(len(next(iter(r.inputs.values()))) for r in records) / len(records))
    return replace(loads[0], rows=max(1, rows), more_payloads=tuple(load.payload for load in loads[1:]))


def tune(
    name: str,
    *,
    slo_p99_ms: float,
    concurrency: int = 32,
    protocol: str = "rest",
    rows: int = 1,
    data: Any = None,
    budget_s: float = 120.0,
    seconds: float = 2.0,
    allowed_batch_sizes: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search the batching parameters of model ``name`` for the most throughput within a p99 SLO.

    Each trial applies a setting live (``set_batching``) and benches one closed-loop level at
    ``concurrency``. The best setting stays applied; ``result.write("batching.pbtxt")`` saves it.

    Args:
        name: The served model.
        slo_p99_ms: The p99 latency, in ms, a setting must meet to be recommended.
        concurrency: The load to tune for: closed-loop clients.
        protocol: ``"rest"`` or ``"grpc"``.
        rows: Rows per request.
        data: What to send (see ``bench``).
        budget_s: Seconds the whole search may take.
        seconds: Window length of each trial's bench.
        allowed_batch_sizes: Also try padding batches to fixed sizes.
        progress: Called with a line of text after each trial.
    """
    from tfserve_lab.loadtest.tune import tune as search

    def apply(config: BatchingConfig) -> None:
        set_batching(name, config)

    def measure() -> BenchRow:
        result = bench(
            name,
            concurrency=(concurrency,),
            protocol=protocol,
            seconds=seconds,
            warmup=0.5,
            rows=rows,
            data=data,
            max_windows=3,
        )
        return result.rows[0]

    result = search(
        apply,
        measure,
        model=name,
        slo_p99_ms=slo_p99_ms,
        concurrency=concurrency,
        rows=rows,
        budget_s=budget_s,
        threads=os.cpu_count() or 1,
        allowed_batch_sizes=allowed_batch_sizes,
        progress=progress,
    )
    if result.best is not None:
        _capacity[name] = result.best.row.requests_per_second
    return result


def profile(
    name: str,
    *,
    seconds: float = 2.0,
    logdir: str = "profiles",
    concurrency: int = 8,
    protocol: str = "rest",
    rows: int = 1,
    data: Any = None,
) -> ProfileResult:
    """A TensorFlow profiler trace of the engine while bench load (processes of their own) runs against ``name``.

    The trace lands in ``logdir`` as TensorBoard's Profile tab reads it (``tensorboard --logdir
    profiles``); the result lists the most expensive ops.
    """
    from tfserve_lab.loadtest.profile import ProfileResult, top_ops, trace
    from tfserve_lab.loadtest.runner import running_load

    load = _bench_load(name, protocol=protocol, rows=rows, data=data, version=None, signature="")

    def during(capture: Callable[[], None]) -> None:
        from tfserve_lab.loadtest.runner import Collected

        with running_load(load, concurrency=concurrency) as poll:
            collected = Collected()
            time.sleep(0.5)  # the clients connect and warm the path up before the capture
            poll(collected)
            capture()
            poll(collected)

    files = trace(logdir, seconds, during=during)
    return ProfileResult(os.path.abspath(logdir), files, seconds, top_ops(files))
