"""The in-kernel engine while a cell holds the GIL: external clients' latency and the cell's own speed.

    python -m bench.busy_cell [--seconds 5] [--repeats 3] [--json out.json]

A real Jupyter kernel (jupyter_client) starts the engine with ``%tfserve start`` and serves the seed
model; the load generator (``bench.loadgen``, its own processes) sends single-row REST predicts from 4
closed-loop clients. Each repeat measures, in turn:
- the busy cell alone (``sum(i * i for i in range(10000))`` in a loop) before the engine starts;
- the busy cell with the engine running and no requests;
- the load with the kernel idle;
- the load while the busy cell runs, and the cell's speed meanwhile.

It does this for the engine's default GIL setting and with the interpreter's own switch interval
(``%tfserve start --switch-interval-ms 5``), and reports medians and the ratios the issue tracks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty
from typing import Any

from bench.models import model_dir

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
BUSY = "sum(i * i for i in range(10000))"


class Kernel:
    """A Jupyter kernel to run cells in, reading what they print."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=str(cwd), env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 300.0) -> str:
        """Execute ``code``; return its stdout (raises with the traceback on an error)."""
        msg_id = self.client.execute(code)
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)

    def start_busy(self, seconds: float) -> str:
        """Start a cell that runs the busy loop for ``seconds`` and prints its rate; returns its id."""
        return str(self.client.execute(_busy_code(seconds)))

    def result_of(self, msg_id: str, timeout: float = 120.0) -> str:
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def _busy_code(seconds: float) -> str:
    return (
        "import time as _t\n"
        f"_end = _t.perf_counter() + {seconds}\n_n = 0\n_began = _t.perf_counter()\n"
        f"while _t.perf_counter() < _end:\n    {BUSY}\n    _n += 1\n"
        "print(_n / (_t.perf_counter() - _began))\n"
    )


def _load(url: str, seconds: float, warmup: float, out: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "bench.loadgen", "--target", "rest", "--url", url, "--model", "seed", "--rows", "1",
        "--concurrency", "4", "--seconds", str(seconds), "--warmup", str(warmup), "--json", str(out),
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return result


def _measure(kernel: Kernel, switch_ms: float | None, seconds: float, work: Path) -> dict[str, float]:
    """One repeat of the four measurements for one GIL setting."""
    row: dict[str, float] = {}
    row["cell_alone"] = float(kernel.run(_busy_code(seconds)))
    flag = "" if switch_ms is None else f" --switch-interval-ms {switch_ms}"
    base = model_dir("seed")
    kernel.run(
        f"%tfserve start --rest-port 0 --grpc-port 0{flag}\n"
        f"from tfserve_lab import api\napi.deploy('seed', {str(base)!r})\n"
        "print(api.current().info.rest_url)"
    )
    url = kernel.run("print(api.current().info.rest_url, end='')")
    row["switch_interval_ms"] = float(kernel.run("import sys; print(sys.getswitchinterval() * 1e3)"))
    time.sleep(1.0)
    row["cell_engine_idle"] = float(kernel.run(_busy_code(seconds)))
    idle = _load(url, seconds, 1.0, work / "idle.json")
    busy_id = kernel.start_busy(seconds + 3.0)  # covers the generator's start-up, warmup and window
    time.sleep(0.5)
    busy = _load(url, seconds, 1.0, work / "busy.json")
    row["cell_under_load"] = float(kernel.result_of(busy_id))
    kernel.run("%tfserve stop")
    for name, load in (("idle", idle), ("busy", busy)):
        row[f"{name}_req_per_s"] = load["req_per_s"]
        row[f"{name}_p50_ms"] = load["p50_ms"]
        row[f"{name}_p99_ms"] = load["p99_ms"]
        row[f"{name}_errors"] = load["errors"]
    return row


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    median = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    median["p99_busy_vs_idle"] = median["busy_p99_ms"] / median["idle_p99_ms"]
    median["throughput_busy_vs_idle"] = median["busy_req_per_s"] / median["idle_req_per_s"]
    median["cell_slowdown_engine_idle"] = 1 - median["cell_engine_idle"] / median["cell_alone"]
    median["cell_slowdown_under_load"] = 1 - median["cell_under_load"] / median["cell_alone"]
    return median


def render(results: dict[str, dict[str, float]]) -> str:
    """The markdown table for RESULTS.md and the README."""
    lines = [
        "| GIL setting | switch interval | idle p50 / p99 ms | busy p50 / p99 ms | busy p99 / idle p99 "
        "| idle / busy req/s | busy / idle req/s | cell slowed, engine idle | cell slowed, under load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, m in results.items():
        lines.append(
            f"| {name} | {m['switch_interval_ms']:.2f} ms | {m['idle_p50_ms']:.2f} / {m['idle_p99_ms']:.2f} "
            f"| {m['busy_p50_ms']:.2f} / {m['busy_p99_ms']:.2f} | {m['p99_busy_vs_idle']:.2f}x "
            f"| {m['idle_req_per_s']:,.0f} / {m['busy_req_per_s']:,.0f} | {m['throughput_busy_vs_idle']:.0%} "
            f"| {m['cell_slowdown_engine_idle']:+.1%} | {m['cell_slowdown_under_load']:+.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both GIL settings, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.busy_cell", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds of each load and cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="", help="write the medians and every repeat here")
    parser.add_argument(
        "--intervals-ms", default="", help="comma-separated switch intervals to try besides the default and 5 ms"
    )
    args = parser.parse_args(argv)
    model_dir("seed")
    settings: dict[str, float | None] = {"engine default": None, "interpreter's 5 ms": 5.0}
    for value in filter(None, args.intervals_ms.split(",")):
        settings[f"{float(value):g} ms"] = float(value)
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory(prefix="tfserve-busy-") as tmp:
        work = Path(tmp)
        kernel = Kernel(work)
        try:
            kernel.run("%load_ext tfserve_lab")
            for repeat in range(args.repeats):
                for name, switch_ms in settings.items():
                    row = _measure(kernel, switch_ms, args.seconds, work)
                    raw[name].append(row)
                    print(f"repeat {repeat + 1} {name}: " + json.dumps({k: round(v, 3) for k, v in row.items()}))
        finally:
            kernel.stop()
    results = {name: _summary(rows) for name, rows in raw.items()}
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": results, "raw": raw}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
