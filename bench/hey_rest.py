"""The REST per-request cost under Debian's ``hey``, and ``%tfserve bench`` measuring the same load.

    python -m bench.hey_rest [--seconds 5] [--repeats 3] [--json out.json]

The seed model behind ``tfserve-lab serve`` with the seed's own batching file (``max_batch_size 128``,
``batch_timeout_micros 1000``, ``max_enqueued_batches 1000``, ``num_batch_threads`` = CPUs, at most 4),
and the tornado echo server (the protocol limit), each in its own process. ``hey -c 32`` sends
single-row REST predicts to both; then tfserve-lab's own load generator (``tfserve_lab.loadtest``, 32
closed-loop clients) measures the engine under the same load, so its figure can be checked against
hey's. Each repeat runs the three loads in turn; medians are reported. ``bench/setup.sh`` installs hey.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.models import model_dir

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32


def seed_batching_text() -> str:
    threads = min(4, os.cpu_count() or 1)
    return (
        "max_batch_size { value: 128 }\nbatch_timeout_micros { value: 1000 }\n"
        f"max_enqueued_batches {{ value: 1000 }}\nnum_batch_threads {{ value: {threads} }}\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a server exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def hey(url: str, body: Path, seconds: float) -> dict[str, float]:
    """One hey run: requests/s, p50 and p99 (ms), and non-200 answers."""
    command = ["hey", "-c", str(CONCURRENCY), "-z", f"{seconds:g}s", "-m", "POST", "-T", "application/json"]
    out = subprocess.run([*command, "-D", str(body), url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = float(re.search(r"50%+ in ([\d.]+) secs", out).group(1)) * 1e3  # type: ignore[union-attr]
    p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1e3  # type: ignore[union-attr]
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    return {
        "req_per_s": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_200": sum(int(n) for c, n in codes.items() if c != "200"),
    }


def own_bench(port: int, body: bytes, seconds: float) -> dict[str, float]:
    """tfserve-lab's load generator on the same load (32 closed-loop clients, the same body)."""
    from tfserve_lab.loadtest.runner import Load, run_level

    head = (
        f"POST /v1/models/seed:predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    row = run_level(
        Load("rest", "127.0.0.1", port, head + body, 1), concurrency=CONCURRENCY, window_s=seconds / 2, max_windows=4
    )
    return {"req_per_s": row.requests_per_second, "p50_ms": row.p50_ms, "p99_ms": row.p99_ms, "errors": row.errors}


def main(argv: list[str] | None = None) -> int:
    """Start the two servers, run every load per repeat, print the medians, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.hey_rest", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        parser.error("hey is not installed: run bench/setup.sh (Debian's hey package)")
    base = model_dir("seed")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    runs: dict[str, list[dict[str, float]]] = {"hey engine": [], "hey echo": [], "bench engine": []}
    with tempfile.TemporaryDirectory(prefix="tfserve-hey-") as tmp:
        work = Path(tmp)
        (work / "batching.pbtxt").write_text(seed_batching_text())
        body = json.dumps({"instances": [[0.5] * 10]}).encode()
        (work / "body.json").write_bytes(body)
        engine_port, echo_port = _free_port(), _free_port()
        servers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tfserve_lab",
                    "serve",
                    f"--port={_free_port()}",
                    f"--rest_api_port={engine_port}",
                    "--model_name=seed",
                    f"--model_base_path={base}",
                    "--host=127.0.0.1",
                    "--enable_batching",
                    f"--batching_parameters_file={work / 'batching.pbtxt'}",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [sys.executable, "-m", "bench.anchors", "echo-rest", "--model", "seed", "--port", str(echo_port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            _wait_listening(engine_port, servers[0])
            _wait_listening(echo_port, servers[1])
            engine_url = f"http://127.0.0.1:{engine_port}/v1/models/seed:predict"
            echo_url = f"http://127.0.0.1:{echo_port}/v1/models/seed:predict"
            hey(engine_url, work / "body.json", 1.0)  # warm both up
            hey(echo_url, work / "body.json", 1.0)
            for repeat in range(args.repeats):
                runs["hey engine"].append(hey(engine_url, work / "body.json", args.seconds))
                runs["hey echo"].append(hey(echo_url, work / "body.json", args.seconds))
                runs["bench engine"].append(own_bench(engine_port, body, args.seconds))
                print(f"repeat {repeat + 1}: " + json.dumps({k: v[-1] for k, v in runs.items()}), flush=True)
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)
    medians = {name: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for name, rows in runs.items()}
    ratio = medians["hey engine"]["req_per_s"] / medians["hey echo"]["req_per_s"]
    agreement = medians["bench engine"]["req_per_s"] / medians["hey engine"]["req_per_s"]
    print(render(medians, ratio, agreement))
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": medians, "runs": runs, "batching": seed_batching_text()}))
    return 0


def render(medians: dict[str, dict[str, float]], ratio: float, agreement: float) -> str:
    """The markdown rows for RESULTS.md and the README."""
    lines = ["| load generator | server | req/s | p50 ms | p99 ms | errors |", "|---|---|--:|--:|--:|--:|"]
    for name, m in medians.items():
        tool, server = name.split(" ")
        errors = m.get("non_200", m.get("errors", 0))
        lines.append(
            f"| {tool} | {server} | {m['req_per_s']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {errors:.0f} |"
        )
    lines.append("")
    lines.append(f"engine / tornado echo under hey: {ratio:.2f}x; %tfserve bench / hey on the engine: {agreement:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
