"""What a bench measured: one row per load level, shown as a table and a latency-vs-throughput chart."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BenchResult", "BenchRow", "latency_chart_png"]

_COLUMNS = ("requests_per_second", "rows_per_second", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "errors")


@dataclass(frozen=True)
class BenchRow:
    """One load level: a closed-loop ``concurrency`` or an open-loop ``rate`` (requests per second)."""

    concurrency: int | None
    rate: float | None
    requests_per_second: float
    rows_per_second: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    windows: int = 1
    stable: bool = True
    first_error: str = ""

    @property
    def level(self) -> str:
        """``C=8`` or ``500/s``."""
        return f"C={self.concurrency}" if self.concurrency is not None else f"{self.rate:g}/s"


@dataclass(frozen=True)
class BenchResult:
    """Every level of one bench run, and what was sent."""

    model: str
    protocol: str
    rows_per_request: int
    rows: Sequence[BenchRow] = field(default_factory=tuple)
    window_s: float = 5.0
    stability: float = 0.10

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("BenchResult.to_frame needs pandas: pip install pandas") from None
        return pd.DataFrame([asdict(row) for row in self.rows])

    def _table_rows(self) -> list[list[str]]:
        out = []
        for row in self.rows:
            stable = "" if row.stable else f"not stable within {self.stability:.0%} after {row.windows} windows"
            out.append(
                [
                    row.level,
                    f"{row.requests_per_second:,.1f}",
                    f"{row.rows_per_second:,.1f}",
                    *(f"{getattr(row, q):.2f}" for q in ("p50_ms", "p90_ms", "p95_ms", "p99_ms")),
                    str(row.errors),
                    stable or (row.first_error[:80] if row.errors else ""),
                ]
            )
        return out

    _HEADER = ("level", "req/s", "rows/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "errors", "note")

    def __repr__(self) -> str:
        cells = [list(self._HEADER), *self._table_rows()]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self._HEADER))]
        title = f"bench {self.model} over {self.protocol}, {self.rows_per_request} row(s) a request"
        lines = [title, *("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._table_rows()
        )
        title = html.escape(f"bench {self.model} over {self.protocol}, {self.rows_per_request} row(s) a request")
        chart = base64.b64encode(latency_chart_png([(self.protocol, self.rows)])).decode()
        return (
            f"<b>{title}</b><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f'<img src="data:image/png;base64,{chart}" alt="latency against throughput"/>'
        )


def latency_chart_png(series: Sequence[tuple[str, Sequence[BenchRow]]], *, slo_ms: float | None = None) -> bytes:
    """p50 and p99 latency against throughput, one line pair per series, as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, rows in series:
        points = sorted((r.requests_per_second, r.p50_ms, r.p99_ms, r.level) for r in rows if not math.isnan(r.p50_ms))
        if not points:
            continue
        x = [p[0] for p in points]
        (line,) = ax.plot(x, [p[1] for p in points], marker="o", label=f"{name} p50")
        ax.plot(x, [p[2] for p in points], marker="^", linestyle=":", color=line.get_color(), label=f"{name} p99")
        for rps, _, p99, level in points:
            ax.annotate(level, (rps, p99), textcoords="offset points", xytext=(4, 4), fontsize="small")
    if slo_ms is not None:
        ax.axhline(slo_ms, color="tab:red", linestyle="--", label=f"SLO p99 {slo_ms:g} ms")
    ax.set(xlabel="throughput (requests/s)", ylabel="latency (ms)", title="latency against throughput")
    ax.set_ylim(bottom=0)
    if ax.get_lines():
        ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
