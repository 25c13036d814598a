"""End to end: a real ``jupyter lab``, a real kernel serving half_plus_two, the panel in headless Chromium.

The kernel is started through the Jupyter server's REST API and driven over its websocket, so the engine
registers with that kernel's id, exactly as when a user runs a notebook. Chromium is Debian's
(``.ci/install-ui.sh``); Playwright never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--headless",
]
ARTIFACTS = ROOT / "test-artifacts"
LABEXTENSION = ROOT / "tfserve_lab" / "labextension"
VERSION_ROW = '#tfserve-lab-panel [data-model="half_plus_two"] .jp-TfServe-version[data-version="123"]'
RATE_SELECTOR = f"{VERSION_ROW} .jp-TfServe-rps"
SPARK_SELECTOR = f"{VERSION_ROW} .jp-TfServe-spark.jp-mod-rps"
# A sparkline path is "M x,y L x,y ..."; zero draws at y = height - 1 (the stroke's padding), more draws above it.
SPARK_HAS_POINTS = """sel => {
    const svg = document.querySelector(sel);
    const path = svg?.querySelector('path')?.getAttribute('d') ?? '';
    const zero = Number(svg?.getAttribute('height') ?? 0) - 1;
    const ys = path.split(/[ML]/).filter(p => p.trim()).map(p => Number(p.split(',')[1]));
    return ys.filter(y => y < zero).length >= 3;
}"""


@dataclass
class Lab:
    """A running ``jupyter lab`` and how to reach it."""

    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        response = requests.request(method, f"{self.url}/{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _write_isolated_config(config_dir: Path, labext_dir: Path) -> None:
    """Server and lab settings for the test only: our extensions on, news and update checks off."""
    config_dir.mkdir(parents=True)
    # The module form works whether or not the top-level package exposes the hook; registering twice is a no-op.
    server = {"ServerApp": {"jpserver_extensions": {"tfserve_lab.server_extension": True}}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(server))
    (config_dir / "labconfig").mkdir()
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    # Serve the freshly built extension from the checkout (what `jupyter labextension develop` links).
    labext_dir.mkdir(parents=True)
    (labext_dir / "tfserve-lab").symlink_to(LABEXTENSION, target_is_directory=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not (LABEXTENSION / "package.json").is_file():
        pytest.fail(
            f"The labextension is not built at {LABEXTENSION}: run `pip install -e .` (or npm run build in labextension/)."
        )
    port, token = free_port(), secrets.token_hex(16)
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    _write_isolated_config(tmp_path / "config", tmp_path / "labextensions")
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--port={port}",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={token}",
                "--allow-root",  # CI containers run as root; harmless otherwise
                f"--ServerApp.root_dir={root_dir}",
                f"--LabApp.extra_labextensions_path={tmp_path / 'labextensions'}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, proc, log_path)
    try:
        wait_until(lambda: _answers(lab), timeout=90, what="jupyter lab to answer /api/status")
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _answers(lab: Lab) -> bool:
    if lab.proc.poll() is not None:
        raise RuntimeError(f"jupyter lab exited with {lab.proc.returncode}:\n{lab.log()}")
    try:
        return requests.get(f"{lab.url}/api/status", params={"token": lab.token}, timeout=2).ok
    except requests.ConnectionError:
        return False


def execute(lab: Lab, kernel_id: str, code: str, timeout: float = 120.0) -> str:
    """Run ``code`` in a kernel of the server over its websocket; return stdout, raise on an error reply."""
    return asyncio.run(_execute(lab, kernel_id, code, timeout))


async def _execute(lab: Lab, kernel_id: str, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = lab.url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {lab.token}"}))
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "test",
            "session": uuid.uuid4().hex,
            "date": "",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
        "channel": "shell",
        "buffers": [],
    }
    await conn.write_message(json.dumps(request))
    out: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            raw = await asyncio.wait_for(conn.read_message(), max(deadline - time.monotonic(), 0.1))
            if raw is None:
                raise AssertionError("The kernel websocket closed.")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError(f"Kernel error running:\n{code}\n" + "\n".join(content["traceback"]))
            elif kind == "execute_reply":
                assert content["status"] == "ok", content
                return "".join(out)
    finally:
        conn.close()


class Traffic:
    """Predict requests against the engine's REST port from a background thread."""

    def __init__(self, url: str, rate_hz: float = 25.0) -> None:
        self.url, self.period, self.sent, self.failed = url, 1.0 / rate_hz, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.wait(self.period):
                try:
                    ok = session.post(self.url, json={"instances": [1.0, 2.0, 5.0]}, timeout=5).ok
                except requests.RequestException:
                    ok = False
                self.sent += 1
                self.failed += not ok


@pytest.mark.timeout(300)
def test_panel_shows_model_version_and_live_traffic(lab: Lab, testdata: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run .ci/install-ui.sh (Debian's chromium).")
    kernel_id = lab.api("POST", "api/kernels", json={"name": "python3"}).json()["id"]
    base_path = testdata / "saved_model_half_plus_two_cpu"
    # Given: a kernel of this server runs an engine serving half_plus_two.
    execute(
        lab,
        kernel_id,
        "import tfserve_lab.api as tfs\n"
        "r = tfs.start(rest_port=0, grpc_port=0)\n"
        "print(r)\n"
        f"tfs.deploy('half_plus_two', base_path={str(base_path)!r})\n",
    )
    try:
        engines = lab.api("GET", "tfserve-lab/engines").json()["engines"]
        assert [(e["kernel_id"], e["alive"]) for e in engines] == [(kernel_id, True)], engines
        engine = engines[0]
        predict_url = f"http://127.0.0.1:{engine['rest_port']}/v1/models/half_plus_two:predict"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 800})
                page.goto(f"{lab.url}/lab?token={lab.token}")
                # When: the user opens the panel from the left sidebar.
                tab = page.locator('.jp-SideBar [data-id="tfserve-lab-panel"]')
                tab.wait_for(timeout=60_000)
                tab.click()
                panel = page.locator("#tfserve-lab-panel")
                # Then: the model, its version 123 AVAILABLE, and the engine's kernel.
                model = panel.locator('.jp-TfServe-model[data-model="half_plus_two"]')
                expect(model).to_be_visible(timeout=30_000)
                row = model.locator('.jp-TfServe-version[data-version="123"]')
                expect(row.locator(".jp-TfServe-state")).to_have_text("AVAILABLE", timeout=30_000)
                expect(panel.locator(".jp-TfServe-kernel")).to_have_text(f"kernel {kernel_id[:8]}")
                rate = row.locator(".jp-TfServe-rps")
                assert float(rate.get_attribute("data-rps") or 0) == 0.0
                # When: clients send traffic; then the rate rises (the panel polls every 2 s).
                with Traffic(predict_url) as traffic:
                    # The panel re-renders each refresh, so look the cell up afresh every time.
                    page.wait_for_function(
                        "sel => parseFloat(document.querySelector(sel)?.dataset.rps ?? '0') > 0",
                        arg=RATE_SELECTOR,
                        timeout=30_000,
                    )
                    # For the screenshot: wait until the rate's sparkline has three points above zero.
                    page.wait_for_function(SPARK_HAS_POINTS, arg=SPARK_SELECTOR, timeout=30_000)
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "panel.png"))
                    expect(page.locator(".jp-TfServe-status")).to_contain_text("1 model")
                assert traffic.sent > 0
                assert traffic.failed == 0, f"{traffic.failed} of {traffic.sent} predict requests failed"
                assert float(rate.get_attribute("data-rps") or 0) > 0
            finally:
                browser.close()
    finally:
        execute(lab, kernel_id, "tfs.stop()")
        lab.api("DELETE", f"api/kernels/{kernel_id}")
