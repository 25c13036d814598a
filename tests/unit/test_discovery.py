"""Engine info files: typed round-trip, 0600 atomic writes, stale and bad files, kernel ids."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from tfserve_lab.protocol import discovery
from tfserve_lab.protocol.discovery import EngineRecord, list_engines, remove_info_file, write_info_file


def record(**changes: object) -> EngineRecord:
    base = EngineRecord(
        engine_id="e1",
        pid=os.getpid(),
        kernel_id="5d0c4f1e-0000-4000-8000-000000000001",
        host="127.0.0.1",
        rest_port=8501,
        grpc_port=8500,
        metrics_path="/monitoring/prometheus/metrics",
        started_at=1700000000.5,
        version="0.1.0",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class TestEngineRecord:
    def test_round_trip(self) -> None:
        original = record(kernel_id=None)
        assert EngineRecord.from_json(original.to_json()) == original

    def test_unknown_keys_are_ignored(self) -> None:
        data = json.loads(record().to_json()) | {"added_in_a_later_version": [1, 2]}
        assert EngineRecord.from_json(json.dumps(data)) == record()

    def test_integer_start_time_becomes_float(self) -> None:
        data = json.loads(record().to_json()) | {"started_at": 17}
        assert EngineRecord.from_json(json.dumps(data)).started_at == 17.0

    @pytest.mark.parametrize(
        "text",
        [
            "[]",
            "not json",
            json.dumps({"engine_id": "e1"}),
            json.dumps(json.loads(record().to_json()) | {"rest_port": "8501"}),
            json.dumps(json.loads(record().to_json()) | {"pid": True}),
            json.dumps(json.loads(record().to_json()) | {"kernel_id": 3}),
        ],
    )
    def test_malformed_records_raise_value_error(self, text: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError is a ValueError too
            EngineRecord.from_json(text)


class TestInfoFiles:
    def test_write_is_private_and_named_by_pid_and_id(self, tmp_path: Path) -> None:
        path = write_info_file(record(), runtime_dir=tmp_path)
        assert path.name == f"tfserve-lab-{os.getpid()}-e1.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert EngineRecord.from_json(path.read_text()) == record()
        assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left behind"

    def test_write_defaults_to_jupyter_runtime_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
        path = write_info_file(record())
        assert path.parent == tmp_path / "rt"
        assert list_engines() == [record()]

    def test_rewrite_replaces(self, tmp_path: Path) -> None:
        write_info_file(record(rest_port=1), runtime_dir=tmp_path)
        write_info_file(record(rest_port=2), runtime_dir=tmp_path)
        assert [r.rest_port for r in list_engines(tmp_path)] == [2]

    def test_remove_is_idempotent(self, tmp_path: Path) -> None:
        path = write_info_file(record(), runtime_dir=tmp_path)
        remove_info_file(path)
        remove_info_file(path)
        assert list_engines(tmp_path) == []

    def test_list_sorts_by_start_time(self, tmp_path: Path) -> None:
        write_info_file(record(engine_id="late", started_at=2.0), runtime_dir=tmp_path)
        write_info_file(record(engine_id="early", started_at=1.0), runtime_dir=tmp_path)
        assert [r.engine_id for r in list_engines(tmp_path)] == ["early", "late"]

    def test_list_skips_bad_files_and_unrelated_files(self, tmp_path: Path) -> None:
        write_info_file(record(), runtime_dir=tmp_path)
        (tmp_path / "tfserve-lab-1-broken.json").write_text("{")
        (tmp_path / "kernel-abc.json").write_text(record(engine_id="not-ours").to_json())
        assert [r.engine_id for r in list_engines(tmp_path)] == ["e1"]
        assert (tmp_path / "tfserve-lab-1-broken.json").exists(), "unparsable files are skipped, not deleted"

    def test_list_deletes_files_of_dead_processes(self, tmp_path: Path) -> None:
        stale = write_info_file(record(engine_id="gone", pid=dead_pid()), runtime_dir=tmp_path)
        write_info_file(record(), runtime_dir=tmp_path)
        assert [r.engine_id for r in list_engines(tmp_path)] == ["e1"]
        assert not stale.exists()

    def test_missing_directory_lists_nothing(self, tmp_path: Path) -> None:
        assert list_engines(tmp_path / "absent") == []


class TestKernelId:
    def test_none_outside_a_kernel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
        assert discovery.kernel_id_from_connection_file() is None

    @pytest.mark.parametrize(
        ("connection_file", "expected"),
        [
            ("/run/jupyter/kernel-5d0c4f1e-aaaa.json", "5d0c4f1e-aaaa"),
            ("/tmp/some-other-name.json", None),
        ],
    )
    def test_derived_from_the_connection_file(
        self, monkeypatch: pytest.MonkeyPatch, connection_file: str, expected: str | None
    ) -> None:
        fake = types.ModuleType("ipykernel")
        fake.get_connection_file = lambda: connection_file  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ipykernel", fake)
        assert discovery.kernel_id_from_connection_file() == expected

    def test_none_when_ipykernel_is_loaded_but_no_kernel_runs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def not_in_kernel() -> str:
            raise RuntimeError("app not specified, and not in a running Kernel")

        fake = types.ModuleType("ipykernel")
        fake.get_connection_file = not_in_kernel  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ipykernel", fake)
        assert discovery.kernel_id_from_connection_file() is None


def test_module_stays_light() -> None:
    code = (
        "import sys, tfserve_lab.protocol.discovery; "
        "heavy = [m for m in ('tornado', 'tensorflow', 'IPython', 'ipykernel', 'jupyter_server') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "[]"
