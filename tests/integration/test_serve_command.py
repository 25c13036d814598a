"""``tfserve-lab serve`` as a process: flags, start-up failures, hot swaps, config reloads, shutdown."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from tests.conftest import ROOT, free_port, wait_until
from tests.integration.server_process import ServerProcess


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfserve_lab", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_version_and_help() -> None:
    assert "tfserve-lab" in run_cli("serve", "--version").stdout
    usage = run_cli("serve", "--help").stdout
    assert "--model_config_file" in usage
    assert "--rest_api_port" in usage


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--frobnicate=1"], "Unknown command line flag 'frobnicate'"),
        (["--platform_config_file=x"], "Flag --platform_config_file is not supported"),
        (["--port=abc", "--model_base_path=/x"], "Illegal value 'abc' specified for flag 'port'"),
        ([], "Both server_options.model_base_path and server_options.model_config_file are empty!"),
    ],
)
def test_bad_flags_fail_with_one_line(args: list[str], needle: str) -> None:
    result = run_cli("serve", *args)
    assert result.returncode != 0
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bad_config_and_missing_base_path_fail_at_start(testdata: Path, tmp_path: Path) -> None:
    port = f"--port={free_port()}"
    bad = run_cli("serve", f"--model_config_file={testdata / 'bad_model_config.txt'}", port)
    assert bad.returncode != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in bad.stderr
    missing = run_cli("serve", f"--model_base_path={tmp_path / 'nowhere'}", "--model_name=m", port)
    assert missing.returncode != 0
    assert f"Could not find base path {tmp_path / 'nowhere'} for servable m" in missing.stderr


class Caller:
    """Calls the REST API in a loop on a thread, recording failures and versions seen."""

    def __init__(self, url: str, body: dict[str, object]) -> None:
        self.url, self.body = url, body
        self.failures: list[str] = []
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                response = session.post(self.url, json=self.body, timeout=30)
                self.calls += 1
                if response.status_code != 200:
                    self.failures.append(response.text)

    def __enter__(self) -> Caller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture
def live(testdata: Path, tmp_path: Path, copy_model: Callable[..., Path]) -> Iterator[tuple[ServerProcess, Path, Path]]:
    base = tmp_path / "models" / "half_plus_two"
    base.mkdir(parents=True)
    shutil.copytree(testdata / "saved_model_half_plus_two_cpu" / "00000123", base / "123")
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{base}" model_platform: "tensorflow" }} }}'
    )
    proc = ServerProcess(
        [
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=1",
            "--file_system_poll_wait_seconds=1",
        ],
        log_path=tmp_path / "server.log",
    )
    try:
        proc.wait_ready("half_plus_two")
        yield proc, base, config
    finally:
        proc.stop()


def versions(proc: ServerProcess, model: str) -> dict[str, str]:
    response = requests.get(f"{proc.url}/v1/models/{model}", timeout=10)
    if response.status_code != 200:
        return {}
    return {s["version"]: s["state"] for s in response.json()["model_version_status"]}


def test_swap_reload_and_graceful_stop(live: tuple[ServerProcess, Path, Path], testdata: Path) -> None:
    proc, base, config = live
    with Caller(f"{proc.url}/v1/models/half_plus_two:predict", {"instances": [1.0]}) as caller:
        # A new version folder is picked up by polling; the old one unloads after it is AVAILABLE.
        shutil.copytree(testdata / "saved_model_half_plus_two_2_versions" / "00000124", base / "124")
        wait_until(
            lambda: versions(proc, "half_plus_two") == {"124": "AVAILABLE", "123": "END"},
            timeout=60,
            what="version 124 to replace 123",
        )

        # The config file gains a model: picked up by the config poll.
        three = testdata / "saved_model_half_plus_three"
        config.write_text(
            config.read_text().rstrip()[:-1]
            + f' config {{ name: "half_plus_three" base_path: "{three}" model_platform: "tensorflow" }} }}'
        )
        wait_until(
            lambda: versions(proc, "half_plus_three") == {"123": "AVAILABLE"},
            timeout=60,
            what="half_plus_three from the config file",
        )

        # An invalid config keeps the last good one.
        config.write_text("model_config_list { config { name: ")
        wait_until(
            lambda: "Keeping the last good model config" in proc.log(),
            timeout=60,
            what="the config poll to refuse the file",
        )
        assert versions(proc, "half_plus_three") == {"123": "AVAILABLE"}

        # HandleReloadConfigRequest removes half_plus_three while the client keeps calling.
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(
            f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{base}" model_platform: "tensorflow" }} }}',
            request.config,
        )
        with grpc.insecure_channel(f"127.0.0.1:{proc.grpc_port}") as channel:
            response = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)
        assert response.status.error_code == 0
        assert versions(proc, "half_plus_three") == {}
    assert caller.calls > 10
    assert caller.failures == []
    assert "Keeping the last good model config" in proc.log()
    assert proc.stop() == 0
    assert "Successfully loaded servable version {name: half_plus_two version: 124}" in proc.log()


def test_bad_grpc_channel_arguments_fail_with_one_line(testdata: Path) -> None:
    result = run_cli(
        "serve", f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}", "--grpc_channel_arguments=oops"
    )
    assert result.returncode != 0
    assert "Invalid --grpc_channel_arguments entry 'oops'" in result.stderr
    assert "Traceback" not in result.stderr
