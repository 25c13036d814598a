"""Info files announcing running engines in Jupyter's runtime directory (mode 0600), and reading them back.

Each engine writes ``tfserve-lab-<pid>-<engine_id>.json`` when it starts and removes it when it stops; the
Jupyter server extension lists them to find the engines its kernels started. The pattern is TensorBoard's
``manager.py`` (typed round-trip, unknown keys ignored, bad files skipped) in a private directory.

No tensorflow, tornado or IPython imports here: the server extension imports this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "INFO_FILE_GLOB",
    "EngineRecord",
    "default_runtime_dir",
    "info_file_name",
    "kernel_id_from_connection_file",
    "list_engines",
    "pid_alive",
    "remove_info_file",
    "write_info_file",
]

INFO_FILE_PREFIX = "tfserve-lab-"
INFO_FILE_GLOB = f"{INFO_FILE_PREFIX}*.json"


@dataclass(frozen=True)
class EngineRecord:
    """What a running engine tells the Jupyter server about itself."""

    engine_id: str
    pid: int
    kernel_id: str | None
    host: str
    rest_port: int
    grpc_port: int
    metrics_path: str
    started_at: float
    version: str
    # The engine's --auth_token, for the proxy (the file is 0600, like Jupyter's own); never sent to browsers.
    auth_token: str = ""

    def to_json(self) -> str:
        """The record as one JSON object (sorted keys)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EngineRecord:
        """Parse a record, ignoring keys this version does not know.

        Raises:
            ValueError: the text is not a JSON object with every field of the right type.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"An engine info file must hold a JSON object, not {type(data).__name__}.")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in data and field.default is not dataclasses.MISSING:
                continue
            if field.name not in data:
                raise ValueError(f"The engine info file lacks the field {field.name!r}.")
            values[field.name] = _checked(field.name, data[field.name])
        return cls(**values)


_INT_FIELDS = frozenset({"pid", "rest_port", "grpc_port"})
_STR_FIELDS = frozenset({"engine_id", "host", "metrics_path", "version", "auth_token"})


def _checked(name: str, value: Any) -> Any:
    """Validate one field's JSON value against the record's types (bool is not an int here)."""
    if name in _INT_FIELDS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif name in _STR_FIELDS:
        ok = isinstance(value, str)
    elif name == "kernel_id":
        ok = value is None or isinstance(value, str)
    else:  # started_at
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    if not ok:
        raise ValueError(f"The engine info field {name!r} has the wrong type: {value!r}.")
    return value


def default_runtime_dir() -> Path:
    """Jupyter's runtime directory (``JUPYTER_RUNTIME_DIR`` honoured by jupyter_core)."""
    from jupyter_core.paths import jupyter_runtime_dir  # light, but only needed when called

    return Path(jupyter_runtime_dir())


def info_file_name(record: EngineRecord) -> str:
    """``tfserve-lab-<pid>-<engine_id>.json``."""
    return f"{INFO_FILE_PREFIX}{record.pid}-{record.engine_id}.json"


def write_info_file(record: EngineRecord, *, runtime_dir: Path | None = None) -> Path:
    """Atomically write the record's info file, readable by its owner only, and return its path."""
    directory = Path(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / info_file_name(record)
    # mkstemp creates the file 0600 already; write then rename so readers never see half a file.
    fd, tmp = tempfile.mkstemp(prefix=".tfserve-lab-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(record.to_json())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def remove_info_file(path: Path) -> None:
    """Remove an info file; a file already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 probes without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def list_engines(runtime_dir: Path | None = None) -> list[EngineRecord]:
    """The records of live engines, oldest first.

    Unparsable files are skipped; files whose pid is dead are deleted (an engine killed without stopping
    cannot remove its own file).
    """
    directory = Path(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    if not directory.is_dir():
        return []
    records: list[EngineRecord] = []
    for path in sorted(directory.glob(INFO_FILE_GLOB)):
        try:
            record = EngineRecord.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not pid_alive(record.pid):
            remove_info_file(path)
            continue
        records.append(record)
    records.sort(key=lambda r: (r.started_at, r.engine_id))
    return records


def kernel_id_from_connection_file() -> str | None:
    """The id of the Jupyter kernel this process is, or None outside a kernel.

    Jupyter names connection files ``kernel-<id>.json``; ipykernel is imported lazily and only if already
    loaded, so a plain Python process never pays for it.
    """
    import sys

    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel import get_connection_file

        name = Path(get_connection_file()).name
    except (ImportError, RuntimeError, AttributeError, OSError):
        return None
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-") : -len(".json")] or None
    return None
