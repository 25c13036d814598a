"""Searching TF Serving's batching parameters for the most throughput whose p99 meets a latency SLO.

Each trial applies a ``BatchingConfig`` to the live engine (no restart) and
measures it with one bench level. Candidates go from the most promising for
the load (a batch as large as the clients can fill, timeouts from none to a
few milliseconds) to the rest, until the time budget is spent; then the
thread count of the best setting so far is varied. A setting whose p99
misses the SLO is never recommended.
"""

from __future__ import annotations

import base64
import html
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tfserve_lab.batching_params import batching_to_text
from tfserve_lab.config import BatchingConfig
from tfserve_lab.loadtest.results import BenchRow, latency_chart_png

__all__ = ["Trial", "TuneResult", "candidates", "pareto_front", "tune"]


@dataclass(frozen=True)
class Trial:
    """One setting and what the bench measured with it."""

    config: BatchingConfig
    row: BenchRow

    def meets(self, slo_p99_ms: float) -> bool:
        """Whether the trial ran without errors and its p99 is within the SLO."""
        return self.row.errors == 0 and not math.isnan(self.row.p99_ms) and self.row.p99_ms <= slo_p99_ms


@dataclass(frozen=True)
class TuneResult:
    """Every trial, the Pareto front (throughput against p99) and the best setting that meets the SLO."""

    model: str
    slo_p99_ms: float
    trials: Sequence[Trial] = field(default_factory=tuple)
    best: Trial | None = None
    budget_s: float = 0.0

    @property
    def pareto(self) -> list[Trial]:
        """The trials no other trial beats on both throughput and p99."""
        return pareto_front(self.trials)

    @property
    def best_text(self) -> str:
        """The best setting as a ``BatchingParameters`` text proto ("" when none meets the SLO)."""
        return batching_to_text(self.best.config) if self.best is not None else ""

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the best setting as a ``--batching_parameters_file``.

        Raises:
            ValueError: No setting met the SLO.
        """
        if self.best is None:
            raise ValueError(f"No batching setting met the p99 SLO of {self.slo_p99_ms:g} ms: nothing to write.")
        target = Path(path)
        target.write_text(self.best_text)
        return target

    def _rows(self) -> list[list[str]]:
        front = {id(t) for t in self.pareto}
        out = []
        for trial in self.trials:
            c, r = trial.config, trial.row
            marks = ("best" if trial is self.best else "") + (" pareto" if id(trial) in front else "")
            out.append(
                [
                    str(c.max_batch_size),
                    str(c.batch_timeout_micros),
                    str(c.num_batch_threads),
                    ",".join(map(str, c.allowed_batch_sizes)) or "-",
                    f"{r.requests_per_second:,.0f}",
                    f"{r.p99_ms:.2f}",
                    str(r.errors),
                    "yes" if trial.meets(self.slo_p99_ms) else "no",
                    marks.strip(),
                ]
            )
        return out

    _HEADER = ("max_batch_size", "timeout us", "threads", "allowed sizes", "req/s", "p99 ms", "errors", "meets SLO", "")

    def summary(self) -> str:
        """One line: the recommendation, or that nothing met the SLO."""
        if self.best is None:
            return f"No setting of {len(self.trials)} tried met the p99 SLO of {self.slo_p99_ms:g} ms."
        r = self.best.row
        return (
            f"Best of {len(self.trials)} settings within p99 {self.slo_p99_ms:g} ms: "
            f"{r.requests_per_second:,.0f} req/s at p99 {r.p99_ms:.2f} ms."
        )

    def __repr__(self) -> str:
        cells = [list(self._HEADER), *self._rows()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self._HEADER))]
        lines = [f"tune {self.model}: {self.summary()}"]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        if self.best is not None:
            lines += ["", self.best_text.rstrip()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._HEADER)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._rows())
        series = [("trials", [t.row for t in self.trials]), ("pareto", [t.row for t in self.pareto])]
        chart = base64.b64encode(latency_chart_png(series, slo_ms=self.slo_p99_ms)).decode()
        proto = f"<pre>{html.escape(self.best_text)}</pre>" if self.best is not None else ""
        return (
            f"<b>tune {html.escape(self.model)}</b>: {html.escape(self.summary())}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{proto}"
            f'<img src="data:image/png;base64,{chart}" alt="trials: p99 against throughput"/>'
        )


def pareto_front(trials: Sequence[Trial]) -> list[Trial]:
    """Trials not dominated by another (at least as fast and at least as low a p99, better on one), by throughput."""
    valid = [t for t in trials if t.row.errors == 0 and not math.isnan(t.row.p99_ms)]
    front = [
        t
        for t in valid
        if not any(
            o.row.requests_per_second >= t.row.requests_per_second
            and o.row.p99_ms <= t.row.p99_ms
            and (o.row.requests_per_second > t.row.requests_per_second or o.row.p99_ms < t.row.p99_ms)
            for o in valid
        )
    ]
    return sorted(front, key=lambda t: t.row.requests_per_second)


def candidates(
    concurrency: int, rows: int, *, threads: int, allowed_batch_sizes: bool = False
) -> Iterator[BatchingConfig]:
    """Settings in the order a tune tries them: first batches the load can fill, then the rest of the grid."""
    full = max(1, concurrency * rows)
    sizes = sorted({s for s in (full, 8, 16, 32, 64, 128, 256) if s >= rows} | {max(rows, full // 2)})
    timeouts = (0, 500, 1000, 2000, 5000)

    def config(size: int, timeout: int) -> BatchingConfig:
        allowed = (*(s for s in (8, 16, 32, 64, 128, 256) if s < size), size) if allowed_batch_sizes else ()
        return BatchingConfig(
            max_batch_size=size,
            batch_timeout_micros=timeout,
            max_enqueued_batches=1000,
            num_batch_threads=threads,
            allowed_batch_sizes=allowed,
        )

    seen: set[tuple[int, int]] = set()
    first = [(full, t) for t in (1000, 2000, 500, 5000, 0)] + [(max(rows, full // 2), 1000)]
    for size, timeout in [*first, *((s, t) for s in sizes for t in timeouts)]:
        if (size, timeout) not in seen and size >= rows:
            seen.add((size, timeout))
            yield config(size, timeout)


def tune(
    apply: Callable[[BatchingConfig], None],
    measure: Callable[[], BenchRow],
    *,
    model: str,
    slo_p99_ms: float,
    concurrency: int,
    rows: int,
    budget_s: float,
    threads: int,
    allowed_batch_sizes: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Try settings under ``budget_s`` seconds; the best is the fastest that meets the SLO (re-applied at the end).

    Args:
        apply: Applies a setting to the live engine.
        measure: Benches the engine as it is now.
        model: For the report.
        slo_p99_ms: The p99 latency a setting must meet to be recommended.
        concurrency: The load's clients (sizes the first candidates).
        rows: Rows per request.
        budget_s: Seconds the tune may take; it stops starting trials after this.
        threads: ``num_batch_threads`` to start from (then 1 and twice it are tried).
        allowed_batch_sizes: Also search ``allowed_batch_sizes`` (padding to fixed sizes).
        progress: Called with a line of text after each trial.
    """
    started = time.monotonic()
    trials: list[Trial] = []

    def run(config: BatchingConfig) -> Trial:
        apply(config)
        trial = Trial(config, measure())
        trials.append(trial)
        if progress is not None:
            verdict = "meets" if trial.meets(slo_p99_ms) else "misses"
            progress(
                f"trial {len(trials)}: max_batch_size {config.max_batch_size}, timeout {config.batch_timeout_micros} us, "
                f"{config.num_batch_threads} threads: {trial.row.requests_per_second:,.0f} req/s, "
                f"p99 {trial.row.p99_ms:.2f} ms ({verdict} the SLO)"
            )
        return trial

    def best() -> Trial | None:
        good = [t for t in trials if t.meets(slo_p99_ms)]
        return max(good, key=lambda t: t.row.requests_per_second) if good else None

    per_trial: list[float] = []
    grid = candidates(concurrency, rows, threads=threads, allowed_batch_sizes=allowed_batch_sizes)
    for config in grid:
        remaining = budget_s - (time.monotonic() - started)
        if trials and remaining < (sum(per_trial) / len(per_trial)) * 1.2 + 1.0:
            break
        began = time.monotonic()
        run(config)
        per_trial.append(time.monotonic() - began)
        if len(trials) >= 6 and best() is not None and remaining < budget_s / 2:
            break  # keep half the budget for the thread counts of the best setting
    leader = best()
    if leader is not None:
        for count in sorted({1, threads * 2} - {leader.config.num_batch_threads}):
            if time.monotonic() - started + (sum(per_trial) / len(per_trial)) > budget_s:
                break
            run(replace(leader.config, num_batch_threads=count))
    chosen = best()
    if chosen is not None:
        apply(chosen.config)
    return TuneResult(model, slo_p99_ms, tuple(trials), chosen, budget_s)
