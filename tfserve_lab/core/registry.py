"""Loaded versions per model: the load/unload state machine and servable handles.

One lock guards every model's records. Requests take a handle (a reference
count on one AVAILABLE version) on the event loop; loads and unloads happen
on the watcher thread, and an unload waits until the last handle on its
version is released, so no request in flight ever loses its servable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.events import VersionChanged
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.types import DEFAULT_SIGNATURE, ModelSpec, SignatureInfo, VersionState, VersionStatus
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, ServableNotFound

__all__ = ["ModelEntry", "Registry", "ServableHandle", "VersionRecord"]


@dataclass
class VersionRecord:
    """What the registry knows of one version of one model."""

    version: int
    path: str
    state: VersionState = VersionState.START
    error_code: ErrorCode = ErrorCode.OK
    error_message: str = ""
    servable: Servable | None = None
    in_flight: int = 0
    attempts: int = 0
    next_attempt_at: float = 0.0

    def status(self) -> VersionStatus:
        """The row GetModelStatus reports."""
        return VersionStatus(self.version, self.state, self.error_code, self.error_message)


@dataclass
class ModelEntry:
    """One configured model and the versions it has had."""

    config: ModelConfig
    records: dict[int, VersionRecord] = field(default_factory=dict)
    removed: bool = False

    def available(self) -> list[int]:
        """AVAILABLE versions, newest last."""
        return sorted(v for v, r in self.records.items() if r.state is VersionState.AVAILABLE)

    def latest_available(self) -> int | None:
        """The newest AVAILABLE version (what a request without a version gets)."""
        available = VersionState.AVAILABLE
        return max((v for v, r in self.records.items() if r.state is available), default=None)


class ServableHandle:
    """A lease on one AVAILABLE version; release it (or use ``with``) when done."""

    __slots__ = ("_record", "_registry", "model", "servable", "version")

    def __init__(self, registry: Registry, model: str, record: VersionRecord) -> None:
        self._registry = registry
        self._record: VersionRecord | None = record
        self.model = model
        self.version = record.version
        assert record.servable is not None
        self.servable: Servable = record.servable

    def signature(self, name: str) -> tuple[str, SignatureInfo]:
        """Resolve a signature key ("" means serving_default)."""
        key = name or DEFAULT_SIGNATURE
        info = self.servable.signatures.get(key)
        if info is None:
            raise FailedPrecondition(f'Serving signature key "{key}" not found.')
        return key, info

    def release(self) -> None:
        """Give the lease back; idempotent."""
        record, self._record = self._record, None
        if record is not None:
            self._registry._release(record)

    def __enter__(self) -> ServableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Registry:
    """Models, their version records, and which version serves a request."""

    def __init__(
        self,
        *,
        on_event: Callable[[VersionChanged], None] | None = None,
        allow_labels_for_unavailable: bool = False,
    ) -> None:
        # Held directly (the RLock's C-level enter/exit); the condition over it is for begin_unload's wait.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._models: dict[str, ModelEntry] = {}
        self._on_event = on_event
        self._allow_unavailable_labels = allow_labels_for_unavailable

    # -- configuration -------------------------------------------------------

    def set_models(self, models: Sequence[ModelConfig]) -> None:
        """Make ``models`` the configured set; models no longer listed are marked removed.

        Their labels take effect through ``set_labels``, which checks them, as TF Serving swaps in a
        label map only once every label in it checks out: until then a label keeps the version it had,
        and a label the config no longer names is gone.
        """
        wanted = {m.name: m for m in models}
        with self._lock:
            for name, entry in self._models.items():
                entry.removed = name not in wanted
            for name, model in wanted.items():
                current = self._models.get(name)
                if current is None or current.config.base_path != model.base_path:
                    if current is not None:
                        # A new base path is a new model; the old versions go when unloaded.
                        current.removed = True
                        self._models[f"\0old:{name}:{id(current)}"] = current
                    self._models[name] = ModelEntry(model.with_labels({}))
                else:
                    kept = current.config.version_labels
                    current.config = model.with_labels({k: v for k, v in kept.items() if k in model.version_labels})
                    current.removed = False

    def set_labels(self, name: str, labels: Mapping[str, int]) -> None:
        """Replace a model's version labels, checking each points at a servable version.

        With ``allow_labels_for_unavailable`` a label may name a version not AVAILABLE yet, unless it
        is an existing label moving to another version (TF Serving's rule: traffic on a label never
        moves to a version that cannot serve it).
        """
        with self._lock:
            entry = self._entry(name)
            available = set(entry.available())
            current = entry.config.version_labels
            for label, version in labels.items():
                unmoved = current.get(label, version) == version
                if version not in available and not (self._allow_unavailable_labels and unmoved):
                    raise FailedPrecondition(
                        f"Request to assign label to version {version} of model {name}, which is not "
                        "currently available for inference"
                    )
            entry.config = entry.config.with_labels(labels)

    def configs(self) -> list[ModelConfig]:
        """The configured models, in configuration order."""
        with self._lock:
            return [e.config for k, e in self._models.items() if not e.removed and not k.startswith("\0")]

    def entries(self) -> list[tuple[str, ModelEntry]]:
        """Every entry, removed ones included (the watcher unloads those)."""
        with self._lock:
            return list(self._models.items())

    def drop(self, key: str) -> None:
        """Forget a removed entry once all its versions are unloaded."""
        with self._lock:
            entry = self._models.get(key)
            if entry is not None and entry.removed:
                del self._models[key]

    # -- requests ------------------------------------------------------------

    def acquire(self, spec: ModelSpec) -> ServableHandle:
        """A handle on the version ``spec`` asks for.

        Raises:
            ServableNotFound: no such model, or the version is not AVAILABLE.
            InvalidArgument: an unknown version label.
        """
        with self._lock:
            entry = self._models.get(spec.name)
            if entry is None or entry.removed:
                raise ServableNotFound(f"Servable not found for request: {_describe(spec)}")
            version = spec.version
            if spec.label is not None:
                version = entry.config.version_labels.get(spec.label)
                if version is None:
                    raise InvalidArgument(f"Unrecognized servable version label: {spec.label}")
            if version is None:
                latest = entry.latest_available()
                record = entry.records[latest] if latest is not None else None
            else:
                record = entry.records.get(version)
            if record is None or record.state is not VersionState.AVAILABLE:
                raise ServableNotFound(f"Servable not found for request: {_describe(spec, version)}")
            record.in_flight += 1
            return ServableHandle(self, spec.name, record)

    def _release(self, record: VersionRecord) -> None:
        with self._lock:
            record.in_flight -= 1
            # Only begin_unload waits, and only on a version it has marked UNLOADING.
            if record.in_flight == 0 and record.state is VersionState.UNLOADING:
                self._cond.notify_all()

    def statuses(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus rows, newest version first as TF Serving lists them."""
        with self._lock:
            entry = self._models.get(name)
            if entry is None or entry.removed:
                raise ServableNotFound(f"Could not find any versions of model {name}")
            if version is not None:
                record = entry.records.get(version)
                if record is None:
                    raise ServableNotFound(f"Could not find version {version} of model {name}")
                return [record.status()]
            if not entry.records:
                raise ServableNotFound(f"Could not find any versions of model {name}")
            return [entry.records[v].status() for v in sorted(entry.records, reverse=True)]

    def labels(self, name: str) -> dict[str, int]:
        """A model's version labels."""
        with self._lock:
            return dict(self._entry(name).config.version_labels)

    def _entry(self, name: str) -> ModelEntry:
        entry = self._models.get(name)
        if entry is None or entry.removed:
            raise ServableNotFound(f"Servable not found for request: Latest({name})")
        return entry

    # -- transitions, driven by the watcher thread ----------------------------

    def record(self, entry: ModelEntry, version: int, path: str) -> VersionRecord:
        """The record of a version, created in START when first aspired."""
        with self._lock:
            record = entry.records.get(version)
            if record is None or (
                record.state is VersionState.END and record.servable is None and not record.error_message
            ):
                record = VersionRecord(version, path)
                entry.records[version] = record
                self._emit(entry, record)
            return record

    def mark(self, entry: ModelEntry, record: VersionRecord, state: VersionState, **extra: float | str) -> None:
        """Move a record to ``state`` and tell observers."""
        with self._lock:
            record.state = state
            self._cond.notify_all()
        self._emit(entry, record, **extra)

    def set_servable(self, entry: ModelEntry, record: VersionRecord, servable: Servable, **extra: float) -> None:
        """A load finished: the version is AVAILABLE."""
        with self._lock:
            record.servable = servable
            record.error_code, record.error_message = ErrorCode.OK, ""
            record.state = VersionState.AVAILABLE
        self._emit(entry, record, **extra)

    def set_failed(
        self, entry: ModelEntry, record: VersionRecord, code: ErrorCode, message: str, *, final: bool
    ) -> None:
        """A load attempt failed; a final failure ends the version with its error."""
        with self._lock:
            record.error_code, record.error_message = code, message
            record.state = VersionState.END if final else VersionState.START
        self._emit(entry, record)

    def begin_unload(self, entry: ModelEntry, record: VersionRecord, timeout: float | None = None) -> Servable | None:
        """Stop new requests on a version, wait for those in flight, return its servable."""
        with self._lock:
            record.state = VersionState.UNLOADING
        self._emit(entry, record)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while record.in_flight > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            servable, record.servable = record.servable, None
        return servable

    def _emit(self, entry: ModelEntry, record: VersionRecord, **extra: float | str) -> None:
        if self._on_event is not None:
            self._on_event(
                VersionChanged(entry.config.name, record.version, record.state, error=record.error_message, **extra)  # type: ignore[arg-type]
            )


def _describe(spec: ModelSpec, version: int | None = None) -> str:
    version = spec.version if version is None else version
    if version is None:
        return f"Latest({spec.name})"
    return f"Specific({spec.name}, {version})"
