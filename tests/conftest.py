"""Shared fixtures and helpers: the TF Serving testdata beside the project, free ports, waiting on a condition."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

# jp_fetch and friends for the server-extension tests; declared here since pytest wants plugins at the root.
pytest_plugins = ("pytest_jupyter.jupyter_server",)

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata" / "tf_serving"


def wait_until(condition: Callable[[], T], *, timeout: float = 30.0, what: str = "the condition") -> T:
    """Call ``condition`` until it returns something truthy, and return that.

    Polls every 20 ms: quick enough that a test waits for the state it needs, not for an interval.

    Raises:
        AssertionError: ``timeout`` seconds passed first; the message names ``what`` was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def testdata() -> Path:
    """TF Serving's own test servables, read-only (copy before modifying)."""
    if not TESTDATA.is_dir():
        pytest.fail(f"TF Serving testdata not found at {TESTDATA}: the project expects ../shared beside it")
    return TESTDATA


@pytest.fixture
def copy_model(testdata: Path, tmp_path: Path):
    """Copy a testdata model into tmp_path (writable, bits reset) and return its base path."""

    def copy(name: str, dest: str | None = None) -> Path:
        target = tmp_path / (dest or name)
        shutil.copytree(testdata / name, target, copy_function=shutil.copyfile)
        for path in [target, *target.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return target

    return copy
