"""Compare two versions of a served model on the same inputs, or over recorded shadow traffic."""

from __future__ import annotations

import base64
import html
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tfserve_lab import api
from tfserve_lab.core.types import DEFAULT_SIGNATURE, ModelSpec
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

__all__ = ["CompareReport", "OutputStats", "compare", "compare_shadow", "output_stats"]

RTOL = 1e-5
ATOL = 1e-6
MAX_POINTS = 5000  # charts plot at most this many points per series; the numbers use every sample


@dataclass(frozen=True)
class OutputStats:
    """How two versions' answers for one output differ.

    ``rule`` says how agreement was judged, per sample:

    * ``"argmax"``: the last dimension is > 1 (class scores or logits): the arg-max classes are equal.
    * ``"threshold 0.5"``: one value per sample (last dimension 1, or a vector) and both versions' values
      lie in [0, 1] (a sigmoid): both fall on the same side of 0.5.
    * ``"allclose"``: anything else (regression): every value is within ``rtol=1e-5, atol=1e-6``.

    ``accuracy_*`` is set when labels were given and the rule is a classification rule; ``mse_*`` when labels
    were given for any other output.
    """

    name: str
    rule: str
    agreement: float
    mean_abs_diff: float
    max_abs_diff: float
    accuracy_a: float | None = None
    accuracy_b: float | None = None
    mse_a: float | None = None
    mse_b: float | None = None


@dataclass(frozen=True)
class CompareReport:
    """Agreement, differences, label metrics and latency of version ``a`` against version ``b``.

    Latency samples are one per engine call (a batch of up to ``batch_size`` rows, or one shadowed request),
    in milliseconds.
    """

    model: str
    version_a: int
    version_b: int
    samples: int
    outputs: tuple[OutputStats, ...]
    latency_ms_a: tuple[float, ...]
    latency_ms_b: tuple[float, ...]
    source: str = "data"
    predictions_a: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    predictions_b: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # Per output, each version's agreement with the answers the live server gave (a capture's outputs).
    live_agreement: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def latency(self, which: str, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of version ``which`` ("a" or "b")'s latencies, in ms."""
        values = self.latency_ms_a if which == "a" else self.latency_ms_b
        return float(np.percentile(values, q)) if values else None

    def rows(self) -> list[tuple[str, ...]]:
        """The report as table rows: (metric, output, value)."""
        rows: list[tuple[str, ...]] = []
        for out in self.outputs:
            rows += [
                ("agreement", out.name, f"{out.agreement:.2%} ({out.rule})"),
                ("mean |diff|", out.name, f"{out.mean_abs_diff:.6g}"),
                ("max |diff|", out.name, f"{out.max_abs_diff:.6g}"),
            ]
            if out.accuracy_a is not None:
                rows.append(
                    (
                        "accuracy",
                        out.name,
                        f"v{self.version_a} {out.accuracy_a:.2%} · v{self.version_b} {out.accuracy_b:.2%}",
                    )
                )
            if out.mse_a is not None:
                rows.append(("MSE", out.name, f"v{self.version_a} {out.mse_a:.6g} · v{self.version_b} {out.mse_b:.6g}"))
        for output, (agree_a, agree_b) in sorted(self.live_agreement.items()):
            rows.append(
                ("agreement with live", output, f"v{self.version_a} {agree_a:.2%} · v{self.version_b} {agree_b:.2%}")
            )
        for which, version in (("a", self.version_a), ("b", self.version_b)):
            p50, p95 = self.latency(which, 50), self.latency(which, 95)
            text = "-" if p50 is None or p95 is None else f"p50 {p50:.2f} ms · p95 {p95:.2f} ms"
            rows.append(("latency", f"v{version}", text))
        return rows

    @property
    def title(self) -> str:
        """One line naming the model, the versions and the sample count."""
        where = {"shadow": "recorded shadow traffic", "capture": "captured live inputs"}.get(
            self.source, "the same inputs"
        )
        return f"{self.model}: v{self.version_a} vs v{self.version_b} on {where} ({self.samples} samples)"

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

    def __repr__(self) -> str:
        rows = self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(2)] if rows else [0, 0]
        lines = [self.title] + [f"{m.ljust(widths[0])}  {o.ljust(widths[1])}  {v}" for m, o, v in rows]
        return "\n".join(lines)


def output_stats(name: str, a: np.ndarray, b: np.ndarray, labels: np.ndarray | None = None) -> OutputStats:
    """Compare two versions' answers for one output (same shape, one row per sample); see ``OutputStats``.

    Args:
        name: The output's name.
        a: Version a's answers.
        b: Version b's answers.
        labels: True classes (indices, or one-hot like the scores) or targets, one row per sample.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InvalidArgument(
            f"Output {name} has shape {list(a.shape)} in one version and {list(b.shape)} in the other."
        )
    n = a.shape[0] if a.ndim else 1
    diff = np.abs(a - b)
    rule = _rule(a, b)
    if rule == "argmax":
        same = (a.argmax(axis=-1) == b.argmax(axis=-1)).reshape(n, -1).all(axis=1)
    elif rule == "threshold 0.5":
        same = ((a > 0.5) == (b > 0.5)).reshape(n, -1).all(axis=1)
    else:
        same = np.isclose(a, b, rtol=RTOL, atol=ATOL).reshape(n, -1).all(axis=1)
    stats: dict[str, Any] = {}
    if labels is not None:
        y = np.asarray(labels)
        if y.shape[0] != n:
            raise InvalidArgument(f"Labels have {y.shape[0]} rows but output {name} has {n}.")
        if rule == "argmax":
            classes = y.argmax(axis=-1) if y.shape == a.shape else y.reshape(a.shape[:-1])
            stats["accuracy_a"] = float(np.mean(a.argmax(axis=-1) == classes))
            stats["accuracy_b"] = float(np.mean(b.argmax(axis=-1) == classes))
        elif rule == "threshold 0.5":
            truth = y.reshape(a.shape) > 0.5
            stats["accuracy_a"] = float(np.mean((a > 0.5) == truth))
            stats["accuracy_b"] = float(np.mean((b > 0.5) == truth))
        else:
            target = y.astype(np.float64).reshape(a.shape)
            stats["mse_a"] = float(np.mean((a - target) ** 2))
            stats["mse_b"] = float(np.mean((b - target) ** 2))
    return OutputStats(
        name,
        rule,
        float(np.mean(same)) if n else 1.0,
        float(diff.mean()) if diff.size else 0.0,
        float(diff.max()) if diff.size else 0.0,
        **stats,
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
    """Run versions ``a`` and ``b`` of ``name`` on the same inputs through the engine and compare them.

    Each batch goes to ``a`` then ``b`` (interleaved, so load drifts hit both alike); every call is timed, after
    one untimed warm-up call per version.

    Args:
        name: The served model.
        a: A version number or label.
        b: Another version number or label.
        data: An array (one input) or a dict of arrays by input name; rows are samples.
        labels: True classes or targets: an array for a one-output model, or a dict by output name.
        batch_size: Rows per engine call.
        repeats: Calls per batch and version; more give more latency samples (answers come from the first).
        live: What the live server answered to these inputs (a capture's outputs), by output name: the
            report adds each version's agreement with it.

    Raises:
        TfServeError: When the model or a version is not served, or the inputs do not fit the signature.
    """
    if batch_size < 1 or repeats < 1:
        raise InvalidArgument("batch_size and repeats must be positive.")
    version_a, version_b = _resolve(name, a), _resolve(name, b)
    single = not isinstance(data, Mapping)  # one array for a one-input signature, else arrays by input name
    columns = {k: np.asarray(v) for k, v in ({"": data} if single else dict(data)).items()}
    n = next(iter(columns.values())).shape[0] if columns else 0
    if n == 0:
        raise InvalidArgument("Compare needs at least one sample.")
    first = {k: v[:batch_size] for k, v in columns.items()}
    for version in (version_a, version_b):
        # One untimed call each: a version's first call pays one-off setup that is not its serving latency.
        api.predict(name, first[""] if single else first, version=version)
    outputs: dict[int, list[dict[str, np.ndarray]]] = {version_a: [], version_b: []}
    latency: dict[int, list[float]] = {version_a: [], version_b: []}
    for start in range(0, n, batch_size):
        chunk = {k: v[start : start + batch_size] for k, v in columns.items()}
        batch = chunk[""] if single else chunk
        for repeat in range(repeats):
            for version in (version_a, version_b):
                started = time.perf_counter()
                result = api.predict(name, batch, version=version)
                latency[version].append((time.perf_counter() - started) * 1000.0)
                if repeat == 0:
                    outputs[version].append(_as_dict(name, version, result))
    pred_a, pred_b = _concat(outputs[version_a]), _concat(outputs[version_b])
    report = _report(
        name, version_a, version_b, n, pred_a, pred_b, labels, latency[version_a], latency[version_b], "data"
    )
    if live is None:
        return report
    agreement = {
        key: (output_stats(key, pred_a[key], live[key]).agreement, output_stats(key, pred_b[key], live[key]).agreement)
        for key in sorted(set(pred_a) & set(live))
    }
    return replace(report, source="capture", live_agreement=agreement)


def compare_shadow(name: str) -> CompareReport:
    """The same report over live traffic recorded while shadowing was on (``api.shadow``).

    Uses the records with the newest record's (live version, shadow version) pair, so a split or a change of
    candidate does not mix versions. Latencies are each call's model runtime, without protocol overhead.

    Raises:
        TfServeError: FAILED_PRECONDITION when nothing was recorded for ``name``.
    """
    records = api.shadow_records(name)
    if not records:
        raise TfServeError(
            f"No shadow traffic recorded for {name}: turn shadowing on (%tfserve shadow {name} --candidate V) "
            "and send requests.",
            code=ErrorCode.FAILED_PRECONDITION,
        )
    pair = (records[-1].live_version, records[-1].shadow_version)
    chosen = [r for r in records if (r.live_version, r.shadow_version) == pair]
    pred_a = _concat([dict(r.live_outputs) for r in chosen])
    pred_b = _concat([dict(r.shadow_outputs) for r in chosen])
    n = next(iter(pred_a.values())).shape[0] if pred_a else 0
    lat_a = [r.live_runtime_s * 1000.0 for r in chosen]
    lat_b = [r.shadow_runtime_s * 1000.0 for r in chosen]
    return _report(name, pair[0], pair[1], n, pred_a, pred_b, None, lat_a, lat_b, "shadow")


def _report(
    name: str,
    version_a: int,
    version_b: int,
    n: int,
    pred_a: dict[str, np.ndarray],
    pred_b: dict[str, np.ndarray],
    labels: Any,
    lat_a: list[float],
    lat_b: list[float],
    source: str,
) -> CompareReport:
    if labels is not None and not isinstance(labels, Mapping):
        if len(pred_a) != 1:
            raise InvalidArgument(f"{name} has {len(pred_a)} outputs: pass labels as a dict by output name.")
        labels = {next(iter(pred_a)): labels}
    if set(pred_a) != set(pred_b):
        raise InvalidArgument(f"Versions {version_a} and {version_b} of {name} have different outputs; cannot compare.")
    stats = tuple(
        output_stats(key, pred_a[key], pred_b[key], None if labels is None else labels.get(key))
        for key in sorted(pred_a)
    )
    return CompareReport(name, version_a, version_b, n, stats, tuple(lat_a), tuple(lat_b), source, pred_a, pred_b)


def _rule(a: np.ndarray, b: np.ndarray) -> str:
    if a.ndim >= 2 and a.shape[-1] > 1:
        return "argmax"
    in_unit = a.size > 0 and min(a.min(), b.min()) >= 0.0 and max(a.max(), b.max()) <= 1.0
    return "threshold 0.5" if in_unit else "allclose"


def _resolve(name: str, key: int | str) -> int:
    """A version number from a number, a digit string or a label of ``name``."""
    if isinstance(key, int):
        return key
    if key.isdigit():
        return int(key)
    labels = api.current().engine.registry.labels(name)
    if key not in labels:
        raise InvalidArgument(f"Unrecognized servable version label: {key}")
    return int(labels[key])


def _as_dict(name: str, version: int, result: Any) -> dict[str, np.ndarray]:
    """``api.predict`` gives a bare array for one output; name it after the signature's output."""
    if isinstance(result, Mapping):
        return {k: np.asarray(v) for k, v in result.items()}
    try:
        signatures = api.current().engine.metadata(ModelSpec(name, version)).signatures
        outputs = list(signatures[DEFAULT_SIGNATURE].outputs)
    except (TfServeError, KeyError):
        outputs = []
    return {outputs[0] if len(outputs) == 1 else "output": np.asarray(result)}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return {}
    counts = Counter(frozenset(p) for p in parts)
    if len(counts) > 1:
        raise InvalidArgument("The versions answered with different outputs across calls; cannot compare.")
    return {key: np.concatenate([np.atleast_1d(p[key]) for p in parts], axis=0) for key in parts[0]}


def _latency_histograms(ax: Any, samples: tuple[tuple[float, ...], ...], versions: tuple[int, int]) -> None:
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
            ax.hist(clipped, bins=edges, alpha=0.5, color=color, label=f"v{version}")
    if merged.max() > top:
        ax.set_xlabel(f"ms per call (last bin: all over {top:.2f})")
    ax.legend()


def _thin(values: np.ndarray) -> np.ndarray:
    """Every k-th value so charts stay fast on large inputs (the same indices for both versions)."""
    if values.size <= MAX_POINTS:
        return values
    return values[:: int(np.ceil(values.size / MAX_POINTS))]
