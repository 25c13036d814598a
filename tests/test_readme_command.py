"""The README's first command, ``make lab``, really starts JupyterLab on the quickstart notebook.

It runs on a free port (``make lab PORT=N``; ``TFSERVE_LAB_PORT`` works too) with ``CI`` set (so
``--no-browser``), waits (bounded) for the URL with its token and for ``GET /api`` to answer, then
stops the whole process group.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import requests

from tests.make_lab import START_TIMEOUT, make_lab, port_is_closed

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


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
    with make_lab() as lab:
        answer = requests.get(f"http://127.0.0.1:{lab.port}/api", timeout=10)
        assert answer.ok, f"GET /api answered {answer.status_code}"
        assert "version" in answer.json()
        # The printed URL opens the quickstart; the server's root is the repository.
        assert requests.get(lab.url, timeout=10).status_code == 200
        notebook = requests.get(
            f"http://127.0.0.1:{lab.port}/api/contents/notebooks/01_quickstart.ipynb",
            params={"content": "0"},
            headers={"Authorization": f"token {lab.token}"},
            timeout=10,
        )
        assert notebook.status_code == 200, notebook.text
        assert notebook.json()["type"] == "notebook"
        # ...and nothing is served without the token.
        assert requests.get(f"http://127.0.0.1:{lab.port}/api/contents", timeout=10).status_code == 403
    assert port_is_closed(lab.port), "JupyterLab still answers after the process group was stopped"
