"""Runs one load level in worker processes and measures it in windows until two agree.

Stable windows as Triton's perf_analyzer takes them: after the warm-up, the
load is measured in consecutive windows of ``window_s``; once the last two
agree within ``stability`` (relative difference of their throughput and of
their mean latency) the level is done, and its row is the two windows
together; after ``max_windows`` it is reported as not stable. The caller's
thread only sleeps and reads pipes; the clients are in their own processes.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from tfserve_lab.errors import ErrorCode, TfServeError
from tfserve_lab.loadtest.results import BenchRow
from tfserve_lab.loadtest.worker import Job

__all__ = ["Collected", "Load", "run_level", "running_load"]

_READY_TIMEOUT_S = 60.0
_POLL_S = 0.25


@dataclass(frozen=True)
class Load:
    """Where the requests go and what they are."""

    protocol: str
    host: str
    port: int
    payload: bytes
    rows: int
    auth_token: str = ""
    # A replay: more requests, sent in turn after ``payload``.
    more_payloads: tuple[bytes, ...] = ()


class _Worker:
    def __init__(self, job: Job, work: Path, index: int) -> None:
        job_file = work / f"job-{index}.json"
        job_file.write_text(json.dumps(asdict(job)))
        self.stderr_path = work / f"worker-{index}.log"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfserve_lab.loadtest.worker", str(job_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        if not text:
            log = self.stderr_path.read_text(errors="replace").strip().splitlines()
            raise TfServeError(
                f"A load-generator process exited: {log[-1] if log else 'no message'}", code=ErrorCode.INTERNAL
            )
        result: dict[str, Any] = json.loads(text)
        return result

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        try:
            self.process.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # the worker is gone already
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()  # type: ignore[union-attr]
        self._stderr.close()


class Collected:
    """Every finished request of the level so far (finish time, latency, ok)."""

    def __init__(self) -> None:
        self.finished: list[np.ndarray] = []
        self.latency: list[np.ndarray] = []
        self.ok: list[np.ndarray] = []
        self.first_error = ""

    def add(self, reply: dict[str, Any]) -> None:
        self.finished.append(np.frombuffer(base64.b64decode(reply["finished"]), dtype=np.float64))
        self.latency.append(np.frombuffer(base64.b64decode(reply["latency"]), dtype=np.float64))
        self.ok.append(np.frombuffer(base64.b64decode(reply["ok"]), dtype=np.int8))
        self.first_error = self.first_error or reply.get("first_error", "")

    def window(self, begin: float, end: float) -> tuple[np.ndarray, int]:
        """Latencies (s) of the requests that finished in [begin, end), and how many of them failed."""
        finished, latency, ok = (
            np.concatenate(x) if x else np.empty(0) for x in (self.finished, self.latency, self.ok)
        )
        inside = (finished >= begin) & (finished < end)
        good = inside & (ok == 1)
        return latency[good], int(np.count_nonzero(inside & (ok == 0)))


def _stats(latencies: np.ndarray, errors: int, seconds: float, rows: int) -> dict[str, float]:
    count = len(latencies)
    ms = latencies * 1e3
    p50, p90, p95, p99 = (float(v) for v in np.percentile(ms, [50, 90, 95, 99])) if count else (math.nan,) * 4
    return {
        "requests_per_second": count / seconds,
        "rows_per_second": count * rows / seconds,
        "p50_ms": p50,
        "p90_ms": p90,
        "p95_ms": p95,
        "p99_ms": p99,
        "mean_ms": float(ms.mean()) if count else math.nan,
        "errors": errors,
    }


def _agree(a: dict[str, float], b: dict[str, float], stability: float) -> bool:
    def close(x: float, y: float) -> bool:
        mean = (x + y) / 2
        return mean > 0 and abs(x - y) / mean <= stability

    return close(a["requests_per_second"], b["requests_per_second"]) and close(a["mean_ms"], b["mean_ms"])


@contextmanager
def running_load(
    load: Load, *, concurrency: int | None = None, rate: float | None = None, processes: int = 2
) -> Iterator[Callable[[Collected], None]]:
    """Load the target from worker processes for the duration of the block; yields the poll function.

    The caller's own thread only writes to and reads from the workers' pipes, so a bench run in a
    kernel starts no thread there.
    """
    if (concurrency is None) == (rate is None):
        raise ValueError("give a concurrency or a rate")
    count = max(1, min(processes, concurrency or processes))
    with tempfile.TemporaryDirectory(prefix="tfserve-bench-") as tmp:
        work = Path(tmp)
        payload_file = work / "payload.bin"
        payload_file.write_bytes(load.payload + b"".join(load.more_payloads))
        sizes = (len(load.payload), *(len(p) for p in load.more_payloads)) if load.more_payloads else ()
        common = Job(
            load.protocol, load.host, load.port, str(payload_file), auth_token=load.auth_token, payload_sizes=sizes
        )
        if concurrency is not None:
            jobs = [replace(common, clients=concurrency // count + (i < concurrency % count)) for i in range(count)]
        else:
            assert rate is not None
            jobs = [replace(common, rate=rate / count) for _ in range(count)]
        workers = [_Worker(job, work, index) for index, job in enumerate(jobs)]
        last: Collected | None = None

        def poll(collected: Collected) -> None:
            nonlocal last
            last = collected
            for worker in workers:
                worker.send("poll")
                collected.add(worker.line())

        try:
            deadline = time.monotonic() + _READY_TIMEOUT_S
            for worker in workers:
                if not worker.line().get("ready") or time.monotonic() > deadline:
                    raise TfServeError("A load-generator process did not start.", code=ErrorCode.INTERNAL)
            yield poll
            for worker in workers:
                worker.send("stop")
            for worker in workers:
                final = worker.line()
                if last is not None:
                    last.add(final)
        finally:
            for worker in workers:
                worker.close()


def run_level(
    load: Load,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    warmup_s: float = 1.0,
    window_s: float = 5.0,
    stability: float = 0.10,
    max_windows: int = 4,
    processes: int = 2,
    progress: Callable[[str], None] | None = None,
) -> BenchRow:
    """Measure one closed-loop concurrency or one open-loop rate.

    Args:
        load: The target and the request to send.
        concurrency: Clients in the closed loop (each sends when its last answer came).
        rate: Requests per second in the open loop (sent on schedule, answered or not).
        warmup_s: Seconds of load before the first window.
        window_s: Seconds a window lasts.
        stability: How close the last two windows must be (0.10: within 10%).
        max_windows: Windows at most before the level is reported as not stable.
        processes: Worker processes the clients or the rate are spread over.
        progress: Called with a line of text after each window.
    """
    if (concurrency is None) == (rate is None):
        raise ValueError("give a concurrency or a rate")
    label = f"concurrency {concurrency}" if concurrency is not None else f"rate {rate:g}/s"
    with running_load(load, concurrency=concurrency, rate=rate, processes=processes) as poll:
        collected = Collected()
        begin = time.perf_counter() + warmup_s
        windows: list[dict[str, float]] = []
        stable = False
        end = begin
        while len(windows) < max_windows:
            end = begin + window_s
            while time.perf_counter() < end:
                time.sleep(min(_POLL_S, max(0.0, end - time.perf_counter())))
                poll(collected)
            latencies, errors = collected.window(begin, end)
            windows.append(_stats(latencies, errors, window_s, load.rows))
            last = windows[-1]
            if progress is not None:
                progress(
                    f"{label}: window {len(windows)}, {last['requests_per_second']:,.0f} req/s, "
                    f"p50 {last['p50_ms']:.2f} ms, p99 {last['p99_ms']:.2f} ms"
                )
            if len(windows) >= 2 and _agree(windows[-2], last, stability):
                stable = True
                break
            begin = end
    # The level's row is its last two windows together (what the workers sent at "stop" included).
    first_window_start = end - window_s * min(2, len(windows))
    latencies, errors = collected.window(first_window_start, end)
    summary = _stats(latencies, errors, end - first_window_start, load.rows)
    return BenchRow(
        concurrency=concurrency,
        rate=rate,
        requests_per_second=summary["requests_per_second"],
        rows_per_second=summary["rows_per_second"],
        p50_ms=summary["p50_ms"],
        p90_ms=summary["p90_ms"],
        p95_ms=summary["p95_ms"],
        p99_ms=summary["p99_ms"],
        errors=int(summary["errors"]),
        windows=len(windows),
        stable=stable,
        first_error=collected.first_error,
    )
