"""Dashboard charts as matplotlib Figures built from a LiveStats snapshot (no pyplot: no global state, any thread)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfserve_lab.metrics.stats import UNRESOLVED_VERSION

__all__ = ["dashboard_figure", "figure_png", "version_label"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def version_label(version: str) -> str:
    """How a snapshot's version key reads in legends: ``v1``, or ``no version`` for refused requests."""
    return "no version" if version == UNRESOLVED_VERSION else f"v{version}"


def _versions(stats: Mapping[str, Any]) -> list[str]:
    # Numeric order (v2 before v10); requests refused before a version was chosen go last.
    return sorted(stats, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def _nan(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def dashboard_figure(snapshot: Mapping[str, Any], model: str, *, split: Mapping[int, int] | None = None) -> Figure:
    """Four panels for one model, every version in its own color.

    Top left: requests/s (solid) and errors/s (dashed) per version over the window. Top right: latency p50
    (solid) and p99 (dotted) per version over the window. Bottom left: p50/p95/p99 per version over the whole
    window, as grouped bars. Bottom right: how many batches of each size (power-of-two bound) each version ran.

    Args:
        snapshot: ``LiveStats.snapshot()``.
        model: The model to chart.
        split: The traffic split in force (``{version: weight}``), shown in the title.

    Returns:
        A Figure with an Agg canvas attached; render it with ``figure_png``.
    """
    fig = Figure(figsize=(11, 6.2), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    (rate, latency), (percentiles, batches) = fig.subplots(2, 2)
    versions_stats: Mapping[str, Any] = snapshot.get("models", {}).get(model, {}).get("versions", {})
    versions = _versions(versions_stats)
    colors = {v: _COLORS[i % len(_COLORS)] for i, v in enumerate(versions)}

    for version in versions:
        series = versions_stats[version]["series"]
        if not series["t"]:
            continue
        ago = np.asarray(series["t"], dtype=np.float64) - series["t"][-1]
        label = version_label(version)
        rate.plot(ago, series["rps"], color=colors[version], label=f"{label} requests/s")
        rate.plot(ago, series["eps"], color=colors[version], linestyle="--", label=f"{label} errors/s")
        if version != UNRESOLVED_VERSION:
            latency.plot(ago, _nan(series["p50_ms"]), color=colors[version], label=f"{label} p50")
            latency.plot(ago, _nan(series["p99_ms"]), color=colors[version], linestyle=":", label=f"{label} p99")
    rate.set(title="requests/s and errors/s", xlabel="seconds ago", ylabel="per second")
    latency.set(title="latency p50 / p99", xlabel="seconds ago", ylabel="ms")
    for ax in (rate, latency):
        if ax.get_lines():
            ax.legend(fontsize="small", loc="upper left")
            ax.set_ylim(bottom=0)
        else:
            _empty(ax, "no requests in the window")

    served = [v for v in versions if v != UNRESOLVED_VERSION]
    width = 0.8 / max(1, len(served))
    for i, version in enumerate(served):
        ms = versions_stats[version]["latency_ms"]
        values = [ms[q] if ms[q] is not None else 0.0 for q in ("p50", "p95", "p99")]
        percentiles.bar(np.arange(3) + i * width, values, width, color=colors[version], label=version_label(version))
    percentiles.set_xticks(np.arange(3) + width * (len(served) - 1) / 2, ["p50", "p95", "p99"])
    percentiles.set(title=f"latency over the last {snapshot.get('window_s', 60)} s", ylabel="ms")
    if served:
        percentiles.legend(fontsize="small")
    else:
        _empty(percentiles, "no versions yet")

    counts: Mapping[str, Mapping[str, int]] = snapshot.get("batch_sizes", {}).get(model, {})
    bounds = sorted({int(b) for per in counts.values() for b in per})
    with_batches = _versions(counts)
    width = 0.8 / max(1, len(with_batches))
    for i, version in enumerate(with_batches):
        heights = [counts[version].get(str(b), 0) for b in bounds]
        color = colors.get(version, _COLORS[i % len(_COLORS)])
        batches.bar(np.arange(len(bounds)) + i * width, heights, width, color=color, label=version_label(version))
    batches.set_xticks(np.arange(len(bounds)) + width * (len(with_batches) - 1) / 2, [f"≤{b}" for b in bounds])
    batches.set(title="batch sizes (rows per model call)", ylabel="batches")
    if with_batches:
        batches.legend(fontsize="small")
    else:
        _empty(batches, "no batches: server-side batching is off or idle")

    weights = f" · split {', '.join(f'v{v}={w}' for v, w in sorted(split.items()))}" if split else ""
    fig.suptitle(f"{model}{weights}")
    return fig


def figure_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """Render a Figure to PNG bytes on an Agg canvas (attached here when the Figure has none)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi)
    return buffer.getvalue()
