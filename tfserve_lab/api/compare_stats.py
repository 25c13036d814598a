"""How two versions' answers for one output differ: the agreement rule, differences, and label metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfserve_lab.errors import InvalidArgument

__all__ = ["ATOL", "RTOL", "OutputStats", "output_stats"]

RTOL = 1e-5
ATOL = 1e-6


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


def _rule(a: np.ndarray, b: np.ndarray) -> str:
    if a.ndim >= 2 and a.shape[-1] > 1:
        return "argmax"
    in_unit = a.size > 0 and min(a.min(), b.min()) >= 0.0 and max(a.max(), b.max()) <= 1.0
    return "threshold 0.5" if in_unit else "allclose"
