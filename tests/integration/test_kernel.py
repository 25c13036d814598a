"""The magics in a real Jupyter kernel (nbclient): external clients are served while a cell runs."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import grpc
import nbformat
import requests
import tensorflow as tf
from nbclient import NotebookClient
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.conftest import ROOT, free_port, wait_until


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def external_calls(rest_port: int, grpc_port: int, seconds: float) -> tuple[int, int]:
    """REST and gRPC calls from outside the kernel, for ``seconds``; returns successes of each."""
    rest_ok = grpc_ok = 0
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while time.monotonic() < deadline:
            response = requests.post(
                f"http://127.0.0.1:{rest_port}/v1/models/half_plus_two:predict", json={"instances": [1.0]}, timeout=5
            )
            rest_ok += response.json() == {"predictions": [2.5]}
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "half_plus_two"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0]], dtype=tf.float32))
            grpc_ok += float(tf.make_ndarray(stub.Predict(request, timeout=5).outputs["y"])[0, 0]) == 3.0
    return rest_ok, grpc_ok


def test_engine_in_a_real_kernel_serves_while_cells_run(testdata: Path, tmp_path: Path) -> None:
    rest_port, grpc_port = free_port(), free_port()
    base = testdata / "saved_model_half_plus_two_cpu"
    cells = [
        f"%load_ext tfserve_lab\n%tfserve start --rest-port {rest_port} --grpc-port {grpc_port}",
        f"%tfserve deploy half_plus_two --base-path {base}",
        "import time\nx = __import__('numpy').array([[5.0]], 'float32')\nfor _ in range(30):\n    time.sleep(0.2)\nprint('done')",
        "y = %tfserve predict half_plus_two x\nprint(float(y[0, 0]))",
        "%tfserve nope",
        "%unload_ext tfserve_lab\nimport threading\nprint(sorted(t.name for t in threading.enumerate() if t.name.startswith('tfserve')))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})

    async def run() -> tuple[int, int]:
        async with client.async_setup_kernel(cwd=str(ROOT)):
            for index in range(2):
                await client.async_execute_cell(nb.cells[index], index)
            # External clients call the engine while the kernel is busy with a long cell.
            long_cell = asyncio.ensure_future(client.async_execute_cell(nb.cells[2], 2))
            counts = await asyncio.to_thread(external_calls, rest_port, grpc_port, 3.0)
            assert not long_cell.done(), "the external calls must overlap the running cell"
            await long_cell
            for index in range(3, len(cells)):
                await client.async_execute_cell(nb.cells[index], index)
            return counts

    rest_ok, grpc_ok = asyncio.run(run())
    assert rest_ok > 5
    assert grpc_ok > 5

    def stdout(index: int) -> str:
        return "".join(
            o.get("text", "") for o in nb.cells[index].outputs if o.output_type == "stream" and o.name == "stdout"
        )

    started = json.dumps(nb.cells[0].outputs)
    assert "tfserve engine started" in started
    assert f"127.0.0.1:{rest_port}" in started
    assert stdout(2).strip() == "done"
    assert stdout(3).strip() == "4.5"
    errors = [o for o in nb.cells[4].outputs if o.output_type == "error"]
    assert errors == []
    stderr = "".join(o.get("text", "") for o in nb.cells[4].outputs if o.output_type == "stream" and o.name == "stderr")
    assert "invalid choice: 'nope'" in stderr
    assert "Traceback" not in stderr
    assert stdout(5).strip() == "[]"
    assert port_is_free(rest_port)
    assert port_is_free(grpc_port)


def test_kernel_shutdown_frees_ports(testdata: Path, tmp_path: Path) -> None:
    rest_port, grpc_port = free_port(), free_port()
    code = f"%load_ext tfserve_lab\n%tfserve start --rest-port {rest_port} --grpc-port {grpc_port}"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(tmp_path))
    assert "tfserve engine started" in json.dumps(nb.cells[0].outputs)
    wait_until(
        lambda: port_is_free(rest_port) and port_is_free(grpc_port), timeout=10, what="the kernel's ports to be freed"
    )


def test_bench_tune_and_batching_magics_in_a_real_kernel_leave_its_threads_as_they_were(
    testdata: Path, tmp_path: Path
) -> None:
    base = testdata / "saved_model_half_plus_two_cpu"
    cells = [
        "%load_ext tfserve_lab\n%tfserve start --rest-port 0 --grpc-port 0",
        f"%tfserve deploy half_plus_two --base-path {base}\n%tfserve batching half_plus_two --max-batch-size 8",
        # The engine's own pools make their threads (tfserve-*) as calls need them; bench must add none.
        "import threading\n"
        "def threads():\n    return {(t.ident, t.name) for t in threading.enumerate() if not t.name.startswith('tfserve-')}\n"
        "before = threads()",
        "result = %tfserve bench half_plus_two --concurrency 2 --rate 100 --seconds 0.5 --warmup 0.2\nresult",
        "after = threads()\n"
        "print('threads started:', sorted(after - before), 'ended:', sorted(before - after))\n"
        "print('rows:', [(r.level, r.errors) for r in result.rows])",
        "tuned = %tfserve tune half_plus_two --slo-p99-ms 200 --concurrency 4 --budget 6 --seconds 0.5 --write batching.pbtxt\n"
        "print(tuned.summary())",
        "%tfserve batching half_plus_two",
        "%tfserve stop",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=180, kernel_name="python3").execute(cwd=str(tmp_path))

    def text(index: int) -> str:
        outputs = nb.cells[index].outputs
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)

    assert re.search(r"max_batch_size\s+8\n", text(1)), text(1)
    assert "C=2" in text(3)
    assert "100/s" in text(3)
    assert "threads started: [] ended: []" in text(4)
    assert "rows: [('C=2', 0), ('100/s', 0)]" in text(4)
    assert re.search(r"Best of \d+ settings within p99 200 ms: ", text(5)), text(5)
    assert (tmp_path / "batching.pbtxt").read_text().startswith("max_batch_size { value: ")
    assert "half_plus_two: batching" in text(6)
    for cell in nb.cells:
        assert not any(o.output_type == "error" or o.get("name") == "stderr" for o in cell.outputs), cell
