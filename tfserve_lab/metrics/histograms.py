"""Histogram cells both metrics pages fill: bucket limits, per-bucket counts, TF's exponential limits."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

__all__ = ["Buckets", "HistogramCell", "add_sample", "exponential_buckets", "fill"]


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """TF's ``monitoring::Buckets::Exponential`` limits, without the final DBL_MAX.

    Args:
        scale: The first limit.
        growth: The factor between two limits.
        count: How many limits.

    Returns:
        The limits, made by repeated multiplication as TF makes them, so they print like TF's.
    """
    limits: list[float] = []
    bound = float(scale)
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return tuple(limits)


@dataclass(frozen=True)
class Buckets:
    """Finite upper limits of a histogram; a last +Inf bucket is implied."""

    limits: tuple[float, ...]
    # TF's Histogram::Add uses upper_bound: a value equal to a limit lands in the *next* bucket.
    # Prometheus' `le` is "<=". Each page keeps its own exporter's meaning.
    tf_style: bool

    def index(self, value: float) -> int:
        """The bucket a value lands in, by this exporter's meaning of a limit."""
        if self.tf_style:
            return bisect.bisect_right(self.limits, value)
        return bisect.bisect_left(self.limits, value)


class HistogramCell:
    """Per-bucket (not cumulative) counts and the sum of one histogram cell."""

    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.total = 0.0

    def copy(self) -> HistogramCell:
        """A snapshot that later samples leave unchanged."""
        twin = HistogramCell(0)
        twin.counts, twin.total = list(self.counts), self.total
        return twin


def fill(cell: HistogramCell, buckets: Buckets, value: float) -> None:
    """Count one value into a cell made for ``buckets``."""
    cell.counts[buckets.index(value)] += 1
    cell.total += value


def add_sample(
    cells: dict[tuple[str, ...], HistogramCell], key: tuple[str, ...], buckets: Buckets, value: float
) -> None:
    """Count one value into the cell of ``key``, making the cell on its first value."""
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = HistogramCell(len(buckets.limits) + 1)
    cell.counts[buckets.index(value)] += 1
    cell.total += value
