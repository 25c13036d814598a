"""Two versions of a served model compared on the same inputs, or over the live traffic recorded while shadowing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tfserve_lab.api import engine_calls
from tfserve_lab.api.compare_stats import OutputStats, output_stats
from tfserve_lab.api.traffic import resolve_version
from tfserve_lab.core.types import ModelSpec
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

__all__ = ["Comparison", "compare", "compare_shadow"]


@dataclass(frozen=True)
class Comparison:
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
        """The comparison as table rows: (metric, output, value)."""
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

    def __repr__(self) -> str:
        rows = self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(2)] if rows else [0, 0]
        lines = [self.title] + [f"{m.ljust(widths[0])}  {o.ljust(widths[1])}  {v}" for m, o, v in rows]
        return "\n".join(lines)


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
) -> Comparison:
    """Run versions ``a`` and ``b`` of ``name`` on the same inputs through the engine and compare them.

    Each batch goes to ``a`` then ``b`` (interleaved, so load drifts hit both alike); every call is timed, after
    one untimed warm-up call per version.

    Args:
        name: The served model.
        a: A version number or label (a string of digits is a number).
        b: Another version number or label.
        data: An array (one input) or a dict of arrays by input name; rows are samples.
        labels: True classes or targets: an array for a one-output model, or a dict by output name.
        batch_size: Rows per engine call.
        repeats: Calls per batch and version; more give more latency samples (answers come from the first).
        live: What the live server answered to these inputs (a capture's outputs), by output name: the
            comparison adds each version's agreement with it.

    Raises:
        TfServeError: When the model or a version is not served, or the inputs do not fit the signature.
    """
    if batch_size < 1 or repeats < 1:
        raise InvalidArgument("batch_size and repeats must be positive.")
    version_a, version_b = resolve_version(name, a), resolve_version(name, b)
    single = not isinstance(data, Mapping)  # one array for a one-input signature, else arrays by input name
    columns = {k: np.asarray(v) for k, v in ({"": data} if single else dict(data)).items()}
    n = next(iter(columns.values())).shape[0] if columns else 0
    if n == 0:
        raise InvalidArgument("Compare needs at least one sample.")
    versions = (version_a, version_b)
    first = {k: v[:batch_size] for k, v in columns.items()}
    for version in versions:
        # One untimed call each: a version's first call pays one-off setup that is not its serving latency.
        engine_calls.predict_outputs(ModelSpec(name, version), first[""] if single else first)
    outputs: dict[int, list[dict[str, np.ndarray]]] = {version_a: [], version_b: []}
    latency: dict[int, list[float]] = {version_a: [], version_b: []}
    for start in range(0, n, batch_size):
        chunk = {k: v[start : start + batch_size] for k, v in columns.items()}
        batch = chunk[""] if single else chunk
        for repeat in range(repeats):
            for version in versions:
                started = time.perf_counter()
                result = engine_calls.predict_outputs(ModelSpec(name, version), batch)
                latency[version].append((time.perf_counter() - started) * 1000.0)
                if repeat == 0:
                    outputs[version].append({k: np.asarray(v) for k, v in result.items()})
    pred_a, pred_b = _concat(outputs[version_a]), _concat(outputs[version_b])
    comparison = _compared(
        name, version_a, version_b, n, pred_a, pred_b, labels, latency[version_a], latency[version_b], "data"
    )
    if live is None:
        return comparison
    agreement = {
        key: (output_stats(key, pred_a[key], live[key]).agreement, output_stats(key, pred_b[key], live[key]).agreement)
        for key in sorted(set(pred_a) & set(live))
    }
    return replace(comparison, source="capture", live_agreement=agreement)


def compare_shadow(name: str) -> Comparison:
    """The same comparison over live traffic recorded while shadowing was on (``api.shadow``).

    Uses the records with the newest record's (live version, shadow version) pair, so a split or a change of
    candidate does not mix versions. Latencies are each call's model runtime, without protocol overhead.

    Raises:
        TfServeError: FAILED_PRECONDITION when nothing was recorded for ``name``.
    """
    records = engine_calls.shadow_log(name)
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
    return _compared(name, pair[0], pair[1], n, pred_a, pred_b, None, lat_a, lat_b, "shadow")


def _compared(
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
) -> Comparison:
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
    return Comparison(name, version_a, version_b, n, stats, tuple(lat_a), tuple(lat_b), source, pred_a, pred_b)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return {}
    counts = Counter(frozenset(p) for p in parts)
    if len(counts) > 1:
        raise InvalidArgument("The versions answered with different outputs across calls; cannot compare.")
    return {key: np.concatenate([np.atleast_1d(p[key]) for p in parts], axis=0) for key in parts[0]}
