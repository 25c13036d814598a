"""The README's first command, ``make lab``, really starts JupyterLab on the quickstart notebook.

It runs on a free port (``make lab PORT=N``; ``TFSERVE_LAB_PORT`` works too) with ``CI`` set (so
``--no-browser``), waits (bounded) for the URL with its token and for ``GET /api`` to answer, then
stops the whole process group.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START_TIMEOUT = 120  # seconds: `make install` (pip, quick when installed) plus JupyterLab start-up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_commands() -> list[str]:
    """The commands of the README's first fenced block, comments dropped."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert blocks, "README has no fenced code block"
    return [line.split("#", 1)[0].strip() for line in blocks[0].splitlines() if line.split("#", 1)[0].strip()]


def test_readme_two_commands_are_make_lab_and_make_test() -> None:
    assert readme_commands() == ["make lab", "make test"]


@pytest.mark.timeout(START_TIMEOUT + 60)
def test_make_lab_starts_jupyterlab_on_the_quickstart() -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed: the README's commands need it")
    assert readme_commands()[0] == "make lab"
    port = free_port()
    env = {**os.environ, "CI": "true", "TFSERVE_LAB_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("JUPYTER_TOKEN", None)
    process = subprocess.Popen(
        ["make", "lab", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make, the shell and jupyter stop together
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    url_pattern = re.compile(rf"http://127\.0\.0\.1:{port}/lab/tree/notebooks/01_quickstart\.ipynb\?token=(\w+)")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        url = token = None
        api_answer = None
        while time.monotonic() < deadline:
            assert process.poll() is None, "make lab exited early:\n" + "".join(lines[-40:])
            if url is None:
                match = next((m for line in list(lines) if (m := url_pattern.search(line))), None)
                if match:
                    url, token = match.group(0), match.group(1)
            if url is not None:
                try:
                    api_answer = requests.get(f"http://127.0.0.1:{port}/api", timeout=2)
                except requests.ConnectionError:
                    api_answer = None
                if api_answer is not None and api_answer.ok:
                    break
            time.sleep(0.5)
        output = "".join(lines)
        assert url is not None, f"no JupyterLab URL with a token within {START_TIMEOUT} s:\n{output[-4000:]}"
        assert api_answer is not None, f"GET /api did not answer within {START_TIMEOUT} s"
        assert api_answer.ok, f"GET /api answered {api_answer.status_code}"
        assert "version" in api_answer.json()

        # The printed URL opens the quickstart; the server's root is the repository.
        assert requests.get(url, timeout=10).status_code == 200
        notebook = requests.get(
            f"http://127.0.0.1:{port}/api/contents/notebooks/01_quickstart.ipynb",
            params={"content": "0"},
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
        assert notebook.status_code == 200, notebook.text
        assert notebook.json()["type"] == "notebook"
        # ...and nothing is served without the token.
        assert requests.get(f"http://127.0.0.1:{port}/api/contents", timeout=10).status_code == 403
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        reader.join(timeout=5)
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "JupyterLab still answers after the process group was stopped"
