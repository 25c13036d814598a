"""The anchors the engine is measured against, each runnable as its own process.

    python -m bench.anchors inprocess --model mlp --json out.json   # compute limit and engine overhead
    python -m bench.anchors echo-rest --port 8601 --model seed       # protocol limit, tornado
    python -m bench.anchors echo-grpc --port 8600 --model seed       # protocol limit, grpcio (grpc.aio)
    python -m bench.anchors naive-rest --port 8602 --model seed      # tornado calling the model per request
    python -m bench.anchors naive-grpc --port 8603 --model seed      # grpc.aio calling the model per request

The echo servers parse the request as a server must (JSON to a float32 array; ``tensor_content`` to an
array) and answer a constant of the right shape without a model. ``echo-rest --json-lib stdlib`` parses
with the stdlib ``json`` instead of orjson (the 118 req/s reference of the issue). The naive servers are
what one writes without a serving engine: parse, call the signature on the event loop, encode.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.loadgen import make_batch
from bench.models import INPUT_NAME, MODELS, model_dir, version_dir

__all__ = ["main"]

_SIGNATURE = "serving_default"


def _quiet_tensorflow() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


# -- the in-process limit and the engine's own overhead ------------------------------------------


def _per_call(fn: Callable[[], Any], seconds: float, rounds: int) -> float:
    """Median over ``rounds`` rounds of the mean seconds a call takes (after a few warm calls)."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(rounds):
        count, started = 0, time.perf_counter()
        deadline = started + seconds / rounds
        while True:
            fn()
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        times.append((now - started) / count)
    return statistics.median(times)


def _slice(fn: Callable[[], Any], seconds: float) -> float:
    """Mean seconds a call takes over a slice of ``seconds``."""
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        fn()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return (now - started) / count


async def _aslice(one: Callable[[], Any], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        await one()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return (now - started) / count


def inprocess(model: str, batches: list[int], seconds: float, engine_batch: int) -> dict[str, Any]:
    """Bare signature calls at each batch size, then servable.run and Engine.predict at ``engine_batch``.

    "public" is ``fn(x=tensor)`` and ``.numpy()`` of the output; "flat" is the concrete function's
    ``_call_flat`` with its captured inputs; "atomic" is the atomic function under it, which is what
    ``_call_flat`` calls when no gradient tape or distribution strategy is active (the engine's call).
    All take a numpy batch in and give numpy out, as a server must; the limit is the fastest of them.
    """
    tf = _quiet_tensorflow()
    loaded = tf.saved_model.load(str(version_dir(model)))
    fn = loaded.signatures[_SIGNATURE]
    output = next(iter(fn.structured_outputs))
    captured = fn.captured_inputs
    atomic_fn = fn._inference_function
    result: dict[str, Any] = {"model": model, "signature": {}, "engine": {}}
    rounds = 5
    for batch in batches:
        x = make_batch(model, batch)

        def public(x: np.ndarray = x) -> Any:
            return fn(**{INPUT_NAME: tf.convert_to_tensor(x)})[output].numpy()

        def flat(x: np.ndarray = x) -> Any:
            return fn._call_flat([tf.convert_to_tensor(x)], captured)[output].numpy()

        def atomic(x: np.ndarray = x) -> Any:
            return atomic_fn.call_preflattened([tf.convert_to_tensor(x), *captured])[output].numpy()

        row = {
            "public_s": _per_call(public, seconds, rounds),
            "flat_s": _per_call(flat, seconds, rounds),
            "atomic_s": _per_call(atomic, seconds, rounds),
        }
        row["best_s"] = min(row["public_s"], row["flat_s"], row["atomic_s"])
        row["rows_per_s"] = batch / row["best_s"]
        result["signature"][str(batch)] = row
        print(f"{model} signature batch {batch}: {row}", flush=True)

    if engine_batch in batches:
        result["rest_decode"] = rest_decode(model, engine_batch, seconds, rounds)
        print(f"{model} REST decode of {engine_batch} rows: {result['rest_decode']}", flush=True)

    from tfserve_lab.config import ModelConfig, ServerOptions
    from tfserve_lab.core.engine import Engine, EngineOptions
    from tfserve_lab.core.loop import EngineLoop
    from tfserve_lab.core.requests import ArrayInputs
    from tfserve_lab.core.servables.saved_model import load_saved_model
    from tfserve_lab.core.types import ModelSpec
    from tfserve_lab.server import default_loader

    engines = []
    for label, batching in (("engine", None), ("engine_batching", _batching_config(engine_batch))):
        engine = Engine(default_loader(ServerOptions()), EngineOptions(batching=batching))
        engine.load([ModelConfig(model, str(model_dir(model)))])
        engines.append((label, engine, EngineLoop()))
    servable = load_saved_model(str(version_dir(model)), warmup=False)
    for batch in sorted({1, engine_batch}):
        x = make_batch(model, batch)
        inputs = {INPUT_NAME: x}

        def bare(x: np.ndarray = x) -> Any:
            return atomic_fn.call_preflattened([tf.convert_to_tensor(x), *captured])[output].numpy()

        # Every variant is timed in each round, in turn, so that the load of a shared machine
        # falls on all of them alike; the medians over the rounds are compared.
        variants: dict[str, Callable[[float], float]] = {
            "signature": functools.partial(_slice, bare),
            "servable_run": functools.partial(_slice, functools.partial(servable.run, _SIGNATURE, inputs)),
        }
        for label, engine, loop in engines:

            async def one(engine: Engine = engine, inputs: dict[str, Any] = inputs) -> Any:
                return await engine.predict(ModelSpec(model), ArrayInputs(inputs, _SIGNATURE))

            # The engine's own cost: calls awaited on the engine loop, no thread hop per call.
            variants[f"{label}_loop"] = lambda s, one=one, loop=loop: loop.run_sync(_aslice(one, s))
            # What api.predict pays: a hop from this thread onto the engine loop and back per call.
            variants[f"{label}_bridge"] = functools.partial(_slice, lambda one=one, loop=loop: loop.run_sync(one()))
        times: dict[str, list[float]] = {name: [] for name in variants}
        for variant in variants.values():
            variant(0.05)  # warm
        # Many short rounds: the machine's slow phases then fall on every variant alike (7 rounds of 1.4 s
        # gave overheads from +6% to +23% for the same code; 25 rounds of 0.4 s hold within a few %).
        rounds_here = 25
        for _ in range(rounds_here):
            for name, variant in variants.items():
                times[name].append(variant(seconds * 2 / rounds_here))
        rows: dict[str, float] = {f"{name}_s": statistics.median(values) for name, values in times.items()}
        base = rows["signature_s"]
        rows.update({f"{k[:-2]}_overhead": v / base - 1 for k, v in list(rows.items()) if k != "signature_s"})
        result["engine"][str(batch)] = rows
        print(f"{model} engine batch {batch}: {rows}", flush=True)
    servable.close()
    for _, engine, loop in engines:
        loop.close()
        engine.stop()
    return result


def rest_decode(model: str, rows: int, seconds: float, rounds: int) -> dict[str, float]:
    """Seconds to decode one ``instances`` body: stdlib json, orjson, and the engine's REST codec."""
    import orjson

    from bench.loadgen import rest_request
    from tfserve_lab.core.servables.saved_model import load_saved_model
    from tfserve_lab.protocol.rest import codec

    request = rest_request("http://127.0.0.1:1", model, make_batch(model, rows))
    body = request.split(b"\r\n\r\n", 1)[1]
    servable = load_saved_model(str(version_dir(model)), warmup=False)
    info = servable.signatures[_SIGNATURE]
    servable.close()

    def stdlib() -> Any:
        return np.asarray(json.loads(body)["instances"], dtype=np.float32)

    def fast() -> Any:
        return np.asarray(orjson.loads(body)["instances"], dtype=np.float32)

    def engine() -> Any:
        return codec.decode_predict_request(body, info).inputs  # what the REST handler runs

    decoded = engine()[INPUT_NAME]
    assert decoded.shape == (rows, MODELS[model].inputs), decoded.shape
    return {
        "body_bytes": len(body),
        "stdlib_s": _per_call(stdlib, seconds, rounds),
        "orjson_s": _per_call(fast, seconds, rounds),
        "engine_s": _per_call(engine, seconds, rounds),
    }


def _batching_config(batch: int) -> Any:
    from tfserve_lab.config import BatchingConfig

    return BatchingConfig(
        max_batch_size=max(32, batch), batch_timeout_micros=1000, num_batch_threads=2, max_enqueued_batches=1000
    )


# -- echo and naive servers ----------------------------------------------------------------------


def _constant_rest_answers(model: str) -> Callable[[int], bytes]:
    width = MODELS[model].hidden[-1][0]
    cache: dict[int, bytes] = {}

    def answer(rows: int) -> bytes:
        if rows not in cache:
            cache[rows] = json.dumps({"predictions": [[0.5] * width] * rows}).encode()
        return cache[rows]

    return answer


def serve_rest(port: int, model: str, mode: str, json_lib: str) -> None:
    """A one-route tornado app on one IOLoop: echo (constant answer) or naive (the model per request)."""
    import orjson
    import tornado.httpserver
    import tornado.ioloop
    import tornado.web

    loads: Callable[[bytes], Any] = orjson.loads if json_lib == "orjson" else json.loads
    width = MODELS[model].inputs
    answer = _constant_rest_answers(model)
    call = _naive_call(model) if mode == "naive" else None

    class Predict(tornado.web.RequestHandler):
        def post(self, name: str) -> None:
            doc = loads(self.request.body)
            x = np.asarray(doc["instances"], dtype=np.float32)
            if x.ndim != 2 or x.shape[1] != width:
                self.set_status(400)
                self.finish(b'{"error": "bad shape"}')
                return
            self.set_header("Content-Type", "application/json")
            if call is None:
                self.finish(answer(x.shape[0]))
            else:
                self.finish(json.dumps({"predictions": call(x).tolist()}))

    app = tornado.web.Application([(r"/v1/models/([^/:]+):predict", Predict)])
    server = tornado.httpserver.HTTPServer(app, max_body_size=256 << 20)
    server.listen(port, "127.0.0.1")
    print(f"{mode}-rest {model} listening on 127.0.0.1:{port}", flush=True)
    tornado.ioloop.IOLoop.current().start()


def _naive_call(model: str) -> Callable[[np.ndarray], np.ndarray]:
    """The naive servers' model call: the public signature call per request, warmed once."""
    tf = _quiet_tensorflow()
    loaded = tf.saved_model.load(str(version_dir(model)))
    fn = loaded.signatures[_SIGNATURE]
    output = next(iter(fn.structured_outputs))

    def call(x: np.ndarray) -> np.ndarray:
        return fn(**{INPUT_NAME: tf.constant(x)})[output].numpy()

    call(np.zeros((1, MODELS[model].inputs), np.float32))
    return call


def serve_grpc(port: int, model: str, mode: str) -> None:
    """A grpc.aio PredictionService: echo (constant answer) or naive (the model per request)."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    width = MODELS[model].inputs
    out_width = MODELS[model].hidden[-1][0]
    cache: dict[int, Any] = {}
    tf: Any = _quiet_tensorflow() if mode == "naive" else None  # its tensor <-> proto helpers
    call = _naive_call(model) if mode == "naive" else None

    def constant(rows: int) -> Any:
        response = cache.get(rows)
        if response is None:
            response = cache[rows] = predict_pb2.PredictResponse()
            response.model_spec.name = model
            response.model_spec.signature_name = _SIGNATURE
            response.model_spec.version.value = 1
            tensor = response.outputs["output_0"]
            tensor.dtype = 1
            tensor.tensor_shape.dim.add(size=rows)
            tensor.tensor_shape.dim.add(size=out_width)
            tensor.tensor_content = np.full((rows, out_width), 0.5, "<f4").tobytes()
        return response

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request: Any, context: Any) -> Any:
            if call is None:
                tensor = request.inputs[INPUT_NAME]
                dims = [d.size for d in tensor.tensor_shape.dim]
                x = np.frombuffer(tensor.tensor_content, dtype="<f4").reshape(dims)
                if x.ndim != 2 or x.shape[1] != width:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad shape")
                return constant(x.shape[0])
            x = tf.make_ndarray(request.inputs[INPUT_NAME])
            response = predict_pb2.PredictResponse()
            response.model_spec.name = model
            response.model_spec.signature_name = _SIGNATURE
            response.model_spec.version.value = 1
            response.outputs["output_0"].CopyFrom(tf.make_tensor_proto(call(x)))
            return response

    async def main() -> None:
        options = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
        server = grpc.aio.server(options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print(f"{mode}-grpc {model} listening on 127.0.0.1:{port}", flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    """Run one anchor (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.anchors", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("inprocess", "echo-rest", "echo-grpc", "naive-rest", "naive-grpc"))
    parser.add_argument("--model", default="seed", choices=sorted(MODELS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--json-lib", choices=("orjson", "stdlib"), default="orjson", help="echo-rest's parser")
    parser.add_argument("--batches", default="1,8,32,128", help="inprocess: batch sizes of the signature calls")
    parser.add_argument("--engine-batch", type=int, default=32, help="inprocess: batch of the engine calls")
    parser.add_argument("--seconds", type=float, default=2.0, help="inprocess: seconds per measurement")
    parser.add_argument("--json", default="", help="inprocess: write the result here")
    args = parser.parse_args(argv)
    if args.kind == "inprocess":
        batches = [int(b) for b in args.batches.split(",") if b]
        result = inprocess(args.model, batches, args.seconds, args.engine_batch)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(result, handle, indent=1)
        return 0
    kind, _, protocol = args.kind.partition("-")
    if protocol == "rest":
        serve_rest(args.port, args.model, kind, args.json_lib)
    else:
        serve_grpc(args.port, args.model, kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
