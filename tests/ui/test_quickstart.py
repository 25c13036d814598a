"""The quickstart as a new user meets it: ``make lab``'s own URL in headless Chromium, Run > Run All Cells, twice.

Both runs share the kernel and the folder (the notebook starts from its own empty model folder, so the
second run must give the same answers). Every cell must finish with an execution count, no cell may show
an error or anything on stderr (``%load_ext`` in particular shows no TensorFlow start-up lines), and the
notebook file on disk is left as committed (autosave is off for the test).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, wait_until
from tests.make_lab import MakeLab, make_lab
from tests.ui.test_panel import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"
RUN_TIMEOUT_MS = 120_000


def _settings(directory: Path) -> dict[str, str]:
    """JupyterLab user settings for the test: no autosave, so the committed notebook stays clean."""
    plugin = directory / "@jupyterlab" / "docmanager-extension"
    plugin.mkdir(parents=True)
    (plugin / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    # Every cell in the page, not only those scrolled into view, so the test can read them all.
    tracker = directory / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return {"JUPYTERLAB_SETTINGS_DIR": str(directory), "JUPYTERLAB_WORKSPACES_DIR": str(directory.parent / "ws")}


def _run_all(page: object, round_: int, after: int) -> int:
    """Run > Run All Cells; wait until every code cell shows an execution count above ``after``; return the last."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()  # type: ignore[attr-defined]
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()  # type: ignore[attr-defined]
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        _wait_for_counts(page, after)
    except PlaywrightTimeout:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"quickstart-run-{round_}-failed.png"), full_page=True)  # type: ignore[attr-defined]
        prompts = page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "ns => ns.map(n => n.textContent)")  # type: ignore[attr-defined]
        raise AssertionError(f"run {round_}: cells did not all run; prompts {prompts}") from None
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'",
        timeout=60_000,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"quickstart-run-{round_}.png"), full_page=True)  # type: ignore[attr-defined]
    counts = page.eval_on_selector_all(  # type: ignore[attr-defined]
        ".jp-CodeCell .jp-InputPrompt", "nodes => nodes.map(n => +n.textContent.match(/\\d+/)[0])"
    )
    return int(max(counts))


def _wait_for_counts(page: object, after: int) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        """after => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p) && +p.match(/\\d+/)[0] > after);
        }""",
        arg=after,
        timeout=RUN_TIMEOUT_MS,
    )


def _wait_for_kernel(lab: MakeLab, timeout: float = 120.0) -> None:
    """Until the server reports the quickstart's kernel started and idle (the page's indicator says idle before)."""

    def idle() -> bool:
        sessions = requests.get(
            f"http://127.0.0.1:{lab.port}/api/sessions", headers={"Authorization": f"token {lab.token}"}, timeout=10
        ).json()
        states = [s["kernel"]["execution_state"] for s in sessions if s["path"].endswith("01_quickstart.ipynb")]
        return states == ["idle"]

    wait_until(idle, timeout=timeout, what="the quickstart's kernel to start and be idle")


def _problems(page: object) -> list[str]:
    """Text of every error or stderr output in the notebook (JupyterLab renders both as stderr)."""
    return page.eval_on_selector_all(  # type: ignore[attr-defined, no-any-return]
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "nodes => nodes.map(n => n.textContent)",
    )


@pytest.mark.timeout(900)
def test_quickstart_runs_twice_from_the_run_menu(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run .ci/install-ui.sh (Debian's chromium).")
    committed = NOTEBOOK.read_bytes()
    models = ROOT / "notebooks" / "models" / "quickstart"
    try:
        with make_lab(_settings(tmp_path / "settings")) as lab, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(lab.url)
                _wait_for_kernel(lab)
                last = 0
                for round_ in (1, 2):
                    last = _run_all(page, round_, last)
                    problems = _problems(page)
                    assert problems == [], f"run {round_}: error or stderr output:\n" + "\n---\n".join(problems)
                    cells = page.locator(".jp-CodeCell")
                    # %load_ext shows nothing the first time (no TensorFlow start-up lines), and IPython's
                    # own "already loaded" note the second.
                    first = cells.nth(0).locator(".jp-OutputArea-output")
                    if round_ == 1:
                        expect(first).to_have_count(0)
                    else:
                        expect(first).to_have_text(re.compile(r"^The tfserve_lab extension is already loaded"))
                    expect(cells.last.locator(".jp-OutputArea-output")).to_contain_text("tfserve engine stopped.")
                    # The swap happened in this run too: version 2 served, version 1 unloaded.
                    swap = page.locator(".jp-CodeCell", has_text='wait_for("my_model", new)')
                    expect(swap.locator(".jp-OutputArea-output")).to_contain_text("AVAILABLE")
                    expect(swap.locator(".jp-OutputArea-output")).to_contain_text("END")
            finally:
                browser.close()
        assert (models / "my_model" / "2" / "saved_model.pb").is_file()
        assert not (models / "my_model" / "3").exists(), "the second run started from an empty folder"
    finally:
        assert NOTEBOOK.read_bytes() == committed, "the test must leave the committed notebook as it was"
        shutil.rmtree(models, ignore_errors=True)
