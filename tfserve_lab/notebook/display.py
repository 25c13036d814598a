"""Rich (HTML + plain text) displays for what the API returns."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tfserve_lab.api import EngineStatus
from tfserve_lab.config import BatchingConfig
from tfserve_lab.core.types import SignatureInfo, TensorInfo
from tfserve_lab.export import ExportResult, SavedModelInfo
from tfserve_lab.results import AlreadyRunning, LoadFailed, PortInUse, ServerInfo, Started

__all__ = ["Failure", "Table", "render_batching", "render_export", "render_inspect", "render_start", "render_status"]


@dataclass(frozen=True)
class Failure:
    """What a magic returns after a user error: falsy, and shows nothing more (the line was printed)."""

    message: str

    def __bool__(self) -> bool:
        return False

    def _ipython_display_(self) -> None:
        return None


@dataclass(frozen=True)
class Table:
    """A titled table with an HTML and a plain-text form."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    note: str = ""
    # What the table shows, for code that goes on from it (``exported.value.version``).
    value: object = field(default=None, compare=False, repr=False)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(str(h))}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        note = f"<p>{html.escape(self.note)}</p>" if self.note else ""
        return (
            f"<b>{html.escape(self.title)}</b><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
        )

    def __repr__(self) -> str:
        cells = [list(map(str, self.header)), *[[str(c) for c in row] for row in self.rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.header))]
        lines = [self.title]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _endpoints(info: ServerInfo) -> str:
    return f"REST {info.rest_url}  ·  gRPC {info.host}:{info.grpc_port}"


def render_start(result: Started | AlreadyRunning) -> Table:
    """The ports of a started (or already running) engine."""
    title = "tfserve engine started" if isinstance(result, Started) else "tfserve engine already running"
    info = result.info
    rows = [("REST", info.rest_url), ("gRPC", f"{info.host}:{info.grpc_port}")]
    if info.metrics_path:
        rows.append(("Prometheus", info.rest_url + info.metrics_path))
    return Table(title, ("endpoint", "address"), rows)


def start_failure(result: PortInUse | LoadFailed) -> str:
    """The one line for a start that failed."""
    return result.message if isinstance(result, PortInUse) else result.error


def render_status(status: EngineStatus) -> Table:
    """Engine ports and every model's versions, states and labels."""
    if status.info is None:
        return Table("tfserve engine: not running", ("model", "version", "state", "labels", "error"), [])
    rows: list[tuple[object, ...]] = []
    for model in status.models:
        by_version: dict[int, list[str]] = {}
        for label, number in model.labels.items():
            by_version.setdefault(number, []).append(label)
        if not model.versions:
            rows.append((model.name, "-", "no versions yet", "", ""))
        for version in model.versions:
            labels = ",".join(sorted(by_version.get(version.version, [])))
            rows.append((model.name, version.version, version.state.name, labels, version.error_message))
    return Table(f"tfserve engine · {_endpoints(status.info)}", ("model", "version", "state", "labels", "error"), rows)


def _shape(info: TensorInfo) -> str:
    if info.unknown_rank:
        return "unknown rank"
    return "(" + ", ".join("None" if d.size < 0 else str(d.size) for d in info.dims) + ")"


def _signature_rows(signatures: Mapping[str, SignatureInfo]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for key, signature in sorted(signatures.items()):
        if key.startswith("__"):
            continue
        for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
            for alias, tensor in sorted(tensors.items()):
                rows.append((key, signature.method_name, kind, alias, tensor.dtype, _shape(tensor), tensor.name))
    return rows


_SIGNATURE_HEADER = ("signature", "method", "kind", "name", "dtype", "shape", "tensor")


def render_inspect(info: SavedModelInfo) -> Table:
    """Tag sets and signatures, like ``saved_model_cli show --all``."""
    rows = []
    for tags, signatures in info.meta_graphs.items():
        rows += [(",".join(tags), *row) for row in _signature_rows(signatures)]
    return Table(f"SavedModel {info.path}", ("tags", *_SIGNATURE_HEADER), rows)


def render_export(result: ExportResult) -> Table:
    """The version written and its serving signatures."""
    note = f"{result.warmup_records} warmup record(s) written." if result.warmup_records else ""
    return Table(
        f"Exported {result.name} version {result.version} to {result.path}",
        _SIGNATURE_HEADER,
        _signature_rows(result.signatures),
        note,
        value=result,
    )


def render_batching(name: str, config: BatchingConfig | None) -> Table:
    """The batching options a model's requests get now."""
    if config is None:
        return Table(f"{name}: not batched", ("parameter", "value"), [])
    rows = [
        ("max_batch_size", config.max_batch_size),
        ("batch_timeout_micros", config.batch_timeout_micros),
        ("max_enqueued_batches", config.max_enqueued_batches),
        ("num_batch_threads", config.num_batch_threads),
        ("allowed_batch_sizes", ",".join(map(str, config.allowed_batch_sizes)) or "-"),
    ]
    return Table(f"{name}: batching", ("parameter", "value"), rows, value=config)
