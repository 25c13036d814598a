"""The compare report in the notebook: ``api.compare``'s numbers as a table with scatter, difference and latency charts."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tfserve_lab import api
from tfserve_lab.api import OutputStats, output_stats

__all__ = ["CompareReport", "OutputStats", "compare", "compare_shadow", "output_stats"]

MAX_POINTS = 5000  # charts plot at most this many points per series; the numbers use every sample


class CompareReport(api.Comparison):
    """An ``api.Comparison`` that shows itself as a table and charts (``figure``) in the notebook."""

    @classmethod
    def of(cls, comparison: api.Comparison) -> CompareReport:
        """The report of ``comparison``."""
        return cls(**{f.name: getattr(comparison, f.name) for f in fields(comparison)})

    def figure(self) -> Figure:
        """Per output: v_a vs v_b scatter and a histogram of v_b - v_a; and both versions' latency histograms."""
        shown = [o.name for o in self.outputs][:4]
        fig = Figure(figsize=(12, 3.4 * max(1, len(shown))), layout="constrained")
        axes = fig.subplots(max(1, len(shown)), 3, squeeze=False)
        for row, name in enumerate(shown):
            a = _thin(np.asarray(self.predictions_a[name], dtype=np.float64).reshape(-1))
            b = _thin(np.asarray(self.predictions_b[name], dtype=np.float64).reshape(-1))
            scatter, hist = axes[row][0], axes[row][1]
            scatter.scatter(a, b, s=8, alpha=0.6, label=name)
            if a.size:
                low, high = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
                scatter.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--", label="y = x")
            scatter.set(xlabel=f"v{self.version_a}", ylabel=f"v{self.version_b}", title=f"{name}: predictions")
            hist.hist(b - a, bins=40, color="tab:purple")
            hist.set(xlabel=f"v{self.version_b} - v{self.version_a}", ylabel="count", title=f"{name}: difference")
            if row:
                fig.delaxes(axes[row][2])
        _latency_histograms(axes[0][2], (self.latency_ms_a, self.latency_ms_b), (self.version_a, self.version_b))
        fig.suptitle(self.title)
        return fig

    def _repr_html_(self) -> str:
        from tfserve_lab.notebook.charts import figure_png

        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows()
        )
        png = base64.b64encode(figure_png(self.figure())).decode("ascii")
        return (
            f"<b>{html.escape(self.title)}</b>"
            "<table><thead><tr><th style='text-align:left'>metric</th><th style='text-align:left'>output</th>"
            f"<th style='text-align:left'>value</th></tr></thead><tbody>{body}</tbody></table>"
            f"<img alt='compare charts' src='data:image/png;base64,{png}'/>"
        )


def compare(
    name: str,
    a: int | str,
    b: int | str,
    data: Any,
    labels: Any = None,
    *,
    batch_size: int = 256,
    repeats: int = 1,
    live: Mapping[str, np.ndarray] | None = None,
) -> CompareReport:
    """``api.compare`` (versions ``a`` and ``b`` of ``name`` on the same inputs), as a report with charts."""
    return CompareReport.of(api.compare(name, a, b, data, labels, batch_size=batch_size, repeats=repeats, live=live))


def compare_shadow(name: str) -> CompareReport:
    """``api.compare_shadow`` (the recorded shadow traffic of ``name``), as a report with charts."""
    return CompareReport.of(api.compare_shadow(name))


def _latency_histograms(ax: Axes, samples: tuple[tuple[float, ...], ...], versions: tuple[int, int]) -> None:
    """Both versions on shared bins; a rare slow call is folded into the last bin rather than squashing the rest."""
    merged = np.concatenate([np.asarray(s, dtype=np.float64) for s in samples])
    ax.set(xlabel="latency per call (ms)", ylabel="calls", title="latency")
    if not merged.size:
        return
    top = float(np.percentile(merged, 99)) if merged.size >= 20 else float(merged.max())
    top = max(top, float(merged.min()) + 1e-3)
    edges = np.linspace(float(merged.min()), top, 31)
    for values, version, color in zip(samples, versions, ("tab:blue", "tab:orange"), strict=True):
        if values:
            clipped = np.minimum(np.asarray(values, dtype=np.float64), top)
            ax.hist(clipped, bins=edges.tolist(), alpha=0.5, color=color, label=f"v{version}")
    if merged.max() > top:
        ax.set_xlabel(f"ms per call (last bin: all over {top:.2f})")
    ax.legend()


def _thin(values: np.ndarray) -> np.ndarray:
    """Every k-th value so charts stay fast on large inputs (the same indices for both versions)."""
    if values.size <= MAX_POINTS:
        return values
    return values[:: int(np.ceil(values.size / MAX_POINTS))]
