"""A TensorFlow profiler trace of this process's engine under load, where TensorBoard's Profile tab reads it.

The trace is TensorFlow's own (``tf.profiler.experimental.start``), written as
``LOGDIR/plugins/profile/RUN/HOST.xplane.pb``; its most expensive ops are read
back from the XSpace proto that TensorFlow ships, so a table needs no TensorBoard.
"""

from __future__ import annotations

import html
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OpCost", "ProfileResult", "top_ops", "trace"]

# A kernel execution in the raw host trace: TensorFlow's TraceMe names it "op_name:OpType"
# (other events are the runtime's own: "EagerExecute", "ExecutorState::Process", ...).
_OP_EVENT = re.compile(r"[^:\s]+:[A-Za-z_]\w*")


@dataclass(frozen=True)
class OpCost:
    """One op (by name) and the time its executions took in the trace."""

    name: str
    count: int
    total_ms: float


@dataclass(frozen=True)
class ProfileResult:
    """Where the trace is, and its most expensive ops."""

    logdir: str
    files: Sequence[str]
    seconds: float
    ops: Sequence[OpCost] = field(default_factory=tuple)

    def __repr__(self) -> str:
        lines = [f"profile of {self.seconds:g} s in {self.logdir} ({len(self.files)} trace file(s))"]
        lines += [f"  {op.total_ms:10.2f} ms  {op.count:7d}x  {op.name}" for op in self.ops]
        if not self.ops:
            lines.append("  no op executions in the trace")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(op.name)}</td><td>{op.count}</td><td>{op.total_ms:.2f}</td></tr>" for op in self.ops
        )
        return (
            f"<b>profile of {self.seconds:g} s</b> in <code>{html.escape(self.logdir)}</code>"
            f"<table><thead><tr><th>op</th><th>executions</th><th>total ms</th></tr></thead><tbody>{rows}</tbody></table>"
        )


def trace(logdir: str, seconds: float, *, during: Callable[[Callable[[], None]], None]) -> list[str]:
    """Record ``seconds`` of this process while ``during`` keeps load on the engine; returns the trace files.

    ``during`` gets a callable that runs the capture and must call it while its load runs.
    """
    import tensorflow as tf

    before = set(Path(logdir).glob("plugins/profile/*/*.xplane.pb"))

    def capture() -> None:
        tf.profiler.experimental.start(logdir)
        try:
            time.sleep(seconds)
        finally:
            tf.profiler.experimental.stop()

    during(capture)
    return sorted(str(p) for p in set(Path(logdir).glob("plugins/profile/*/*.xplane.pb")) - before)


def top_ops(files: Sequence[str], limit: int = 10) -> list[OpCost]:
    """The op kernels that took the most time in the traces, by total duration (``op_name:OpType``)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for file in files:
        space = xplane_pb2.XSpace.FromString(Path(file).read_bytes())
        for plane in space.planes:
            ops = {key: meta.name for key, meta in plane.event_metadata.items() if _OP_EVENT.fullmatch(meta.name)}
            for line in plane.lines:
                for event in line.events:
                    name = ops.get(event.metadata_id)
                    if name is not None:
                        totals[name] += event.duration_ps / 1e9
                        counts[name] += 1
    ranked = sorted(totals, key=lambda n: totals[n], reverse=True)[:limit]
    return [OpCost(name, counts[name], totals[name]) for name in ranked]
