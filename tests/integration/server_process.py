"""Runs ``tfserve-lab serve`` as a real subprocess on free ports, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from tests.conftest import ROOT, free_port, wait_until


class ServerProcess:
    """A ``python -m tfserve_lab serve`` child with its REST and gRPC ports."""

    def __init__(self, args: Sequence[str], *, log_path: Path, rest: bool = True, grpc_port: int | None = None) -> None:
        self.rest_port = free_port() if rest else 0
        self.grpc_port = grpc_port or free_port()
        self.log_path = log_path
        flags = [f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", *args]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfserve_lab", "serve", *flags],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, model: str, timeout: float = 90.0) -> None:
        """Wait until the model answers its status URL; fail at once if the server exits."""

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/v1/models/{model}", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        try:
            wait_until(answers, timeout=timeout, what=f"{model} to answer its status URL")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the server's log:\n{self.log()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
