"""``make lab``, the README's first command, run as a user runs it: its URL, and the whole process group stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from tests.conftest import ROOT, free_port, wait_until

START_TIMEOUT = 120  # seconds: `make install` (pip, quick when installed) plus JupyterLab start-up


@dataclass
class MakeLab:
    """The running ``make lab``: the URL it printed, its token and port, and its output so far."""

    url: str
    token: str
    port: int
    lines: list[str]


@contextmanager
def make_lab(env: Mapping[str, str] | None = None) -> Iterator[MakeLab]:
    """Run ``make lab`` on a free port with ``CI`` set; yield once it printed its URL and ``GET /api`` answers."""
    port = free_port()
    full_env = {**os.environ, "CI": "true", "TFSERVE_LAB_PORT": str(port), "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("JUPYTER_TOKEN", None)
    process = subprocess.Popen(
        ["make", "lab", f"PORT={port}"],
        cwd=ROOT,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make, the shell and jupyter stop together
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    url_pattern = re.compile(rf"http://127\.0\.0\.1:{port}/lab/tree/notebooks/01_quickstart\.ipynb\?token=(\w+)")

    def serving() -> re.Match[str] | None:
        """The URL line once the API answers too."""
        assert process.poll() is None, "make lab exited early:\n" + "".join(lines[-40:])
        match = next((m for line in list(lines) if (m := url_pattern.search(line))), None)
        return match if match is not None and _api_answers(port) else None

    try:
        try:
            match = wait_until(serving, timeout=START_TIMEOUT, what="make lab's URL and API")
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{''.join(lines)[-4000:]}") from None
        yield MakeLab(match.group(0), match.group(1), port, lines)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        reader.join(timeout=5)


def _api_answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/api", timeout=2).ok
    except requests.ConnectionError:
        return False


def port_is_closed(port: int) -> bool:
    """Whether nothing answers on the port any more."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0
