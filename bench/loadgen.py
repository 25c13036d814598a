"""Closed-loop load generator: C clients, each sending its next request as soon as its last one answered.

    python -m bench.loadgen --target rest --url http://127.0.0.1:8501 --model seed --rows 1 \
        --concurrency 32 --seconds 5 --json out.json
    python -m bench.loadgen --target grpc --host 127.0.0.1:8500 --model mlp --rows 32 --concurrency 8

REST sends TF Serving's row format (``{"instances": [[...], ...]}``, float32 values as their shortest
text) over keep-alive HTTP/1.1 connections; gRPC calls ``PredictionService/Predict`` through the
official ``tensorflow-serving-api`` stubs with the tensor in ``tensor_content``, one channel per client.
The clients run as coroutines spread over ``--processes`` worker processes (forked after the payload is
built), so the generator is not held to one core by the GIL. Every request and its answer are the same
each time (built once); a client checks its first answer's shape. Only requests that finish inside the
measured window (after ``--warmup`` seconds) count; the report holds req/s, rows/s, p50/p95/p99 latency,
errors and the CPU seconds the generator itself spent, so its share of the machine is known.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

__all__ = ["LoadResult", "main", "run_load"]

_FEATURES = {"seed": 10, "mlp": 784}
_OUTPUTS = {"seed": 1, "mlp": 10}


@dataclass
class LoadResult:
    """What one load run measured (latencies in milliseconds)."""

    target: str
    model: str
    rows: int
    concurrency: int
    seconds: float
    processes: int
    requests: int = 0
    errors: int = 0
    req_per_s: float = 0.0
    rows_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    client_cpu_s: float = 0.0
    first_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- payloads ------------------------------------------------------------------------------------


def make_batch(model: str, rows: int, features: int | None = None) -> np.ndarray:
    """The fixed input rows every request carries (seeded, float32)."""
    width = features or _FEATURES[model]
    return np.random.default_rng(7).random((rows, width), dtype=np.float32)


def rest_request(url: str, model: str, batch: np.ndarray) -> bytes:
    """The whole HTTP/1.1 request, headers and JSON body, as bytes."""
    import orjson

    parts = urlsplit(url)
    body = orjson.dumps({"instances": batch}, option=orjson.OPT_SERIALIZE_NUMPY)
    head = (
        f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def grpc_request(model: str, batch: np.ndarray) -> Any:
    """A ``PredictRequest`` with the batch in ``tensor_content``."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    tensor = request.inputs["x"]
    tensor.dtype = 1  # DT_FLOAT
    for size in batch.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.ascontiguousarray(batch, dtype="<f4").tobytes()
    return request


# -- clients (in the worker processes) -----------------------------------------------------------


class _Window:
    """The measured window and what landed in it."""

    def __init__(self, begin: float, end: float) -> None:
        self.begin = begin
        self.end = end
        self.latencies = array.array("d")
        self.errors = 0
        self.first_error = ""

    def record(self, started: float, ok: bool, error: str = "") -> bool:
        """Count a finished request; False once the window is over (the client stops)."""
        now = time.perf_counter()
        if now > self.end:
            return False
        if now >= self.begin:
            if ok:
                self.latencies.append(now - started)
            else:
                self.errors += 1
                self.first_error = self.first_error or error
        return True


async def _rest_client(host: str, port: int, payload: bytes, rows: int, window: _Window) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    checked = False
    try:
        while True:
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            body = await reader.readexactly(length)
            error = ""
            if status != 200:
                error = f"HTTP {status}: {body[:200]!r}"
            elif not checked:
                predictions = json.loads(body)["predictions"]
                if len(predictions) != rows:
                    error = f"answer has {len(predictions)} rows, sent {rows}"
                checked = True
            if not window.record(started, not error, error):
                return
    finally:
        writer.close()


_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]


async def _grpc_client(target: str, request: Any, rows: int, window: _Window, shared: Any = None) -> None:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    async with (
        contextlib.nullcontext(shared)
        if shared is not None
        else grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
    ) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        checked = False
        while True:
            started = time.perf_counter()
            error = ""
            try:
                response = await stub.Predict(request, timeout=60)
                if not checked:
                    tensor = next(iter(response.outputs.values()))
                    if tensor.tensor_shape.dim[0].size != rows:
                        error = f"answer has {tensor.tensor_shape.dim[0].size} rows, sent {rows}"
                    checked = True
            except grpc.aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            if not window.record(started, not error, error):
                return


def _worker(args: argparse.Namespace, payload: Any, clients: int, begin: float, end: float, conn: Any) -> None:
    """One worker process: ``clients`` coroutines on one event loop until the window ends."""
    window = _Window(begin, end)

    async def main() -> None:
        # Start in step with the other workers (connections open inside the warmup).
        await asyncio.sleep(max(0.0, begin - args.warmup - time.perf_counter()))
        if args.target == "rest":
            parts = urlsplit(args.url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            make: Callable[[], Any] = lambda: _rest_client(host, port, payload, args.rows, window)  # noqa: E731
        else:
            import grpc

            shared = None
            if args.channels == "shared":
                shared = grpc.aio.insecure_channel(args.host, options=_CHANNEL_OPTIONS)
            make = lambda: _grpc_client(args.host, payload, args.rows, window, shared)  # noqa: E731
        results = await asyncio.gather(*(make() for _ in range(clients)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                window.errors += 1
                window.first_error = window.first_error or f"client died: {result!r}"

    try:
        asyncio.run(main())
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(
            {
                "latencies": window.latencies.tobytes(),
                "errors": window.errors,
                "first_error": window.first_error,
                "cpu_s": usage.ru_utime + usage.ru_stime,
            }
        )
        conn.close()


# -- the run -------------------------------------------------------------------------------------


def run_load(args: argparse.Namespace) -> LoadResult:
    """Run the closed loop described by the parsed arguments and summarize it."""
    batch = make_batch(args.model, args.rows, args.features)
    payload = rest_request(args.url, args.model, batch) if args.target == "rest" else grpc_request(args.model, batch)
    processes = max(1, min(args.processes, args.concurrency))
    shares = [args.concurrency // processes + (i < args.concurrency % processes) for i in range(processes)]
    ctx = multiprocessing.get_context("fork")  # the children inherit the imports and the payload
    begin = time.perf_counter() + args.warmup + 0.3 * processes
    end = begin + args.seconds
    workers = []
    for clients in shares:
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_worker, args=(args, payload, clients, begin, end, sender), daemon=True)
        process.start()
        sender.close()
        workers.append((process, receiver))
    latencies = array.array("d")
    errors, cpu, first_error = 0, 0.0, ""
    for process, receiver in workers:
        try:
            report = receiver.recv() if receiver.poll(end - time.perf_counter() + 120) else None
        except EOFError:
            report = None
        process.join(10)
        if report is None:
            errors += 1
            first_error = first_error or f"worker {process.pid} sent no report (exit code {process.exitcode})"
            continue
        latencies.frombytes(report["latencies"])
        errors += report["errors"]
        cpu += report["cpu_s"]
        first_error = first_error or report["first_error"]
    result = LoadResult(args.target, args.model, args.rows, args.concurrency, args.seconds, processes)
    result.requests, result.errors, result.first_error = len(latencies), errors, first_error
    result.client_cpu_s = cpu
    result.extra["window"] = [begin, end]  # perf_counter (CLOCK_MONOTONIC): comparable across processes
    if latencies:
        values = np.frombuffer(latencies, dtype=np.float64) * 1e3
        result.req_per_s = len(values) / args.seconds
        result.rows_per_s = result.req_per_s * args.rows
        result.p50_ms, result.p95_ms, result.p99_ms = (float(v) for v in np.percentile(values, [50, 95, 99]))
        result.mean_ms = float(values.mean())
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("rest", "grpc"), required=True)
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="REST base URL")
    parser.add_argument("--host", default="127.0.0.1:8500", help="gRPC host:port")
    parser.add_argument("--model", default="seed")
    parser.add_argument("--features", type=int, default=None, help="input width (default: the bench model's)")
    parser.add_argument("--rows", type=int, default=1, help="rows per request (R)")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop clients (C)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before the window")
    parser.add_argument("--processes", type=int, default=2, help="worker processes the clients spread over")
    parser.add_argument(
        "--channels",
        choices=("per-client", "shared"),
        default="per-client",
        help="gRPC: a channel per client, or one per worker process",
    )
    parser.add_argument("--json", default="", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if args.features is None and args.model not in _FEATURES:
        parser.error(f"--features is needed for model {args.model!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print one line, write the JSON; exit 1 when any request failed."""
    args = parse_args(argv)
    result = run_load(args)
    print(
        f"{args.target} {args.model} R={args.rows} C={args.concurrency}: {result.req_per_s:.1f} req/s, "
        f"{result.rows_per_s:.1f} rows/s, p50 {result.p50_ms:.2f} ms, p95 {result.p95_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, errors {result.errors}, client CPU {result.client_cpu_s:.2f} s"
        + (f" (first error: {result.first_error})" if result.first_error else "")
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(asdict(result), handle, indent=1)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
