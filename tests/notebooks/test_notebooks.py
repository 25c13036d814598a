"""The tutorial notebooks, executed top to bottom on a real kernel (nbclient), with their key outputs checked.

As a user runs them: all of them in one folder (a copy of ``notebooks/`` made once), each of them twice,
in two orders (01 02 03 04 05, then 05 04 03 02 01), on free ports (``%tfserve start --rest-port 0
--grpc-port 0``), on the CPU. Every run of every notebook is checked, and none may write to stderr.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = (
    "01_quickstart.ipynb",
    "02_versions_and_ab.ipynb",
    "03_batching_and_metrics.ipynb",
    "04_scale_out.ipynb",
    "05_capture_and_replay.ipynb",
)
CELL_TIMEOUT = 180  # seconds per cell; whole notebooks take seconds to tens of seconds


class Executed:
    """An executed notebook: its cells by tag and the directory it ran in."""

    def __init__(self, nb: nbformat.NotebookNode, cwd: Path, seconds: float) -> None:
        self.nb = nb
        self.cwd = cwd
        self.seconds = seconds

    def cell(self, tag: str) -> nbformat.NotebookNode:
        cells = [c for c in self.nb.cells if tag in c.get("metadata", {}).get("tags", [])]
        assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
        return cells[0]

    def text(self, tag: str, *, stream: str | None = None) -> str:
        """The cell's stdout (or ``stream``) and the text/plain of what it displayed."""
        parts = []
        for output in self.cell(tag).outputs:
            if output.output_type == "stream":
                if output.name == (stream or "stdout"):
                    parts.append(output.text)
            elif output.output_type in ("display_data", "execute_result") and stream is None:
                parts.append(output.get("data", {}).get("text/plain", ""))
        return "\n".join(parts)

    def mimetypes(self, tag: str) -> set[str]:
        return {m for o in self.cell(tag).outputs for m in o.get("data", {})}

    def number(self, tag: str, pattern: str) -> float:
        text = self.text(tag)
        match = re.search(pattern, text)
        assert match, f"{pattern!r} not in the output of {tag!r}:\n{text}"
        return float(match.group(1))


ORDERS = (NAMES, tuple(reversed(NAMES)))
ROUNDS = (1, 2)


def execute(name: str, cwd: Path) -> Executed:
    nb = nbformat.read(cwd / name, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    started = time.monotonic()
    client.execute()  # raises CellExecutionError (with the traceback) on the first failing cell
    seconds = time.monotonic() - started
    print(f"{name}: {seconds:.1f} s")
    return Executed(nb, cwd, seconds)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Executed | BaseException]:
    """Every notebook run, by (name, round): what it printed, or what stopped it."""
    work = tmp_path_factory.mktemp("notebooks") / "notebooks"
    shutil.copytree(NOTEBOOKS, work)
    results: dict[tuple[str, int], Executed | BaseException] = {}
    for round_, order in zip(ROUNDS, ORDERS, strict=True):
        for name in order:
            try:
                results[(name, round_)] = execute(name, work)
            except Exception as exc:  # noqa: BLE001 - reported by that notebook's own tests
                results[(name, round_)] = exc
    return results


def run_of(runs: dict[tuple[str, int], Executed | BaseException], name: str, round_: int) -> Executed:
    result = runs[(name, round_)]
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("round_", ROUNDS)
@pytest.mark.parametrize("name", NAMES)
def test_no_cell_errs_or_writes_to_stderr(
    runs: dict[tuple[str, int], Executed | BaseException], name: str, round_: int
) -> None:
    run = run_of(runs, name, round_)
    for cell in run.nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", output
            assert not (output.output_type == "stream" and output.name == "stderr"), (cell.source, output.text)


# -- the committed files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be stripped in git"
    sources = "\n".join(c.source for c in code)
    assert "%load_ext tfserve_lab" in code[0].source + code[1].source
    assert "--rest-port 0 --grpc-port 0" in sources, "fixed ports collide when notebooks run side by side"
    assert code[-1].source.strip().endswith("%tfserve stop")
    assert nb.metadata.kernelspec.name == "python3"


# -- 01 -----------------------------------------------------------------------------------------


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("round_", ROUNDS)
def test_01_quickstart(runs: dict[tuple[str, int], Executed | BaseException], round_: int) -> None:
    run = run_of(runs, "01_quickstart.ipynb", round_)

    assert "Exported my_model version 1" in run.text("export-v1")
    assert (run.cwd / "models" / "quickstart" / "my_model" / "1" / "saved_model.pb").is_file()
    assert not (run.cwd / "models" / "quickstart" / "my_model" / "3").exists(), "each run starts from an empty folder"
    inspect = run.text("inspect")
    assert "serving_default" in inspect
    assert "(None, 10)" in inspect
    assert "(None, 1)" in inspect
    assert "dense_input" not in inspect  # the tutorial's Keras 2 name is not what Keras 3 exports

    # REST and gRPC answer what Keras predicts.
    assert run.number("rest-predict", r"REST matches Keras: max \|diff\| = (\S+)") < 1e-5
    metadata = run.text("status-metadata")
    assert "'state': 'AVAILABLE'" in metadata
    names = re.search(r"serving_default: input '(\w+)' -> output '(\w+)'", metadata)
    assert names, metadata
    assert names.group(1) in inspect
    assert names.group(2) in inspect
    assert "served by version 1" in run.text("grpc-predict")
    assert run.number("grpc-predict", r"gRPC matches Keras: max \|diff\| = (\S+)") < 1e-5

    # Version 2 replaced version 1 with no gap.
    assert "Exported my_model version 2" in run.text("export-v2")
    table = run.text("status-after-swap")
    assert re.search(r"my_model\s+2\s+AVAILABLE", table), table
    assert re.search(r"my_model\s+1\s+END", table), table
    after = run.text("after-swap")
    assert "{'version': '2', 'state': 'AVAILABLE'" in after
    assert run.number("after-swap", r"retrained Keras model: max \|diff\| = (\S+)") < 1e-5
    assert "tfserve engine stopped." in run.text("stop")


# -- 02 -----------------------------------------------------------------------------------------


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("round_", ROUNDS)
def test_02_versions_and_ab(runs: dict[tuple[str, int], Executed | BaseException], round_: int) -> None:
    run = run_of(runs, "02_versions_and_ab.ipynb", round_)

    routes = run.text("routes")
    for path, version in [
        ("/versions/1", 1),
        ("/versions/2", 2),
        ("/labels/stable", 1),
        ("/labels/canary", 2),
        ("", 2),  # no version named: the newest
    ]:
        assert f"/v1/models/my_model{path}:predict -> version {version}\n" in routes, routes

    split = run.text("split")
    assert re.search(r"1\s+80\s+80\.0%", split), split
    assert re.search(r"2\s+20\s+20\.0%", split), split
    share_v1 = run.number("split-shares", r"\{1: '(\d+)%'") / 100
    share_v2 = run.number("split-shares", r"2: '(\d+)%'\}") / 100
    assert share_v1 + share_v2 == pytest.approx(1.0)
    assert 0.06 <= share_v2 <= 0.36, f"200 requests at 20%: saw {share_v2:.0%}"

    headers = run.text("header-routing")
    assert "model-version: v1 -> served by [1]" in headers
    assert "model-version: v2 -> served by [2]" in headers
    assert "model-version: 2 -> served by [2]" in headers
    assert "model-version: canary -> served by [2]" in headers

    compare = run.text("compare")
    assert "v1 vs v2" in compare, compare
    assert "agreement" in compare
    assert "accuracy" in compare  # --targets was given
    assert run.number("shadow", r"(\d+) shadow records") > 0
    shadow = run.text("compare-shadow")
    assert "shadow" in shadow, shadow
    assert "agreement" in shadow
    assert "tfserve engine stopped." in run.text("stop")


# -- 03 -----------------------------------------------------------------------------------------


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("round_", ROUNDS)
def test_03_batching_and_metrics(runs: dict[tuple[str, int], Executed | BaseException], round_: int) -> None:
    run = run_of(runs, "03_batching_and_metrics.ipynb", round_)

    def levels(tag: str) -> dict[str, tuple[float, float, int]]:
        """The bench table of a cell: level -> (req/s, p99 ms, errors)."""
        rows = re.findall(
            r"^\s*(C=\d+|[\d.]+/s)\s+([\d,.]+)\s+[\d,.]+(?:\s+[\d.]+){3}\s+([\d.]+)\s+(\d+)", run.text(tag), re.M
        )
        return {level: (float(rps.replace(",", "")), float(p99), int(errors)) for level, rps, p99, errors in rows}

    baseline = levels("bench-baseline")
    assert list(baseline) == ["C=1", "C=8", "C=32"], run.text("bench-baseline")
    assert all(rps > 0 and errors == 0 for rps, _, errors in baseline.values())
    assert "image/png" in run.text("bench-baseline") or "<img" in str(run.cell("bench-baseline").outputs)
    assert re.search(r"max_batch_size\s+32\n", run.text("batching-on"))
    batched = levels("bench-batched")
    assert batched["C=32"][2] == 0
    open_loop = levels("bench-open-loop")
    for rate in (200, 1000):
        rps, _, errors = open_loop[f"{rate}/s"]
        assert errors == 0
        assert abs(rps - rate) <= 0.2 * rate, (rate, rps)
    dashboard = run.cell("dashboard")
    assert dashboard.outputs, "the dashboard displays something"

    metrics = run.text("metrics")
    for family in (
        ":tensorflow:serving:request_count",
        ":tensorflow:serving:batching_session:processed_batch_size",
        "tensorflow_serving_request_count",
    ):
        assert f"   {family}\n" in metrics, metrics
    assert run.number("metrics", r":tensorflow:serving:request_count\{status=OK\} = (\S+)") > 100
    assert run.number("batch-sizes", r"(\d+) batches ran") > 0
    assert run.number("batch-sizes", r"([\d.]+) rows per batch") > 1.0, "concurrent requests were merged"

    tune = run.text("tune")
    assert re.search(r"Best of \d+ settings within p99 25 ms: ", tune), tune
    # The file this run wrote (the folder is shared by both rounds: read what the cell printed).
    written = run.text("tuned-bench", stream="stdout")
    assert written.startswith("max_batch_size { value: ")
    assert written.strip() in tune, "the file holds the tune's best setting"
    assert (run.cwd / "batching.pbtxt").read_text().startswith("max_batch_size { value: ")
    assert levels("tuned-bench")["C=32"][2] == 0
    assert re.search(r"capacity [\d,]+ req/s per replica -> replicas (\d+)\.\.(\d+)", run.text("k8s"))
    assert "MatMul" in run.text("profile")
    assert list((run.cwd / "profiles").glob("plugins/profile/*/*.xplane.pb"))
    assert "tfserve engine stopped." in run.text("stop")


# -- 04 -----------------------------------------------------------------------------------------


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("round_", ROUNDS)
def test_04_scale_out(runs: dict[tuple[str, int], Executed | BaseException], round_: int) -> None:
    run = run_of(runs, "04_scale_out.ipynb", round_)

    written = run.text("k8s")
    assert re.search(r"Wrote \d+ files:", written), written
    k8s = run.cwd / "k8s"
    for name in ("all.yaml", "model_config.pbtxt", "monitoring.pbtxt"):
        assert (k8s / name).is_file(), name
        assert f"k8s/{name}" in written
    assert any(p.name.endswith("-deployment.yaml") for p in k8s.iterdir())
    assert "kubectl" in written  # how to copy the versions to the cluster

    documents = [d for d in yaml.safe_load_all((k8s / "all.yaml").read_text()) if d]
    main = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "my-model")
    assert main["spec"]["replicas"] == 3
    assert {"ConfigMap", "Deployment", "Service", "VirtualService"} <= {d["kind"] for d in documents}
    manifests = run.text("k8s-manifests")
    assert "replicas: [3" in manifests
    assert "--model_config_file=" in manifests

    config = run.text("model-config")
    assert "name: my_model" in config
    assert "policy: all" in config
    assert "labels: {'canary': 2, 'stable': 1}" in config

    assert (run.cwd / "k8s-gpu" / "all.yaml").is_file()
    gpu = run.text("k8s-gpu-manifests")
    assert re.search(r"image: \S+-gpu", gpu), gpu
    assert "'nvidia.com/gpu': '1'" in gpu
    assert "tfserve engine stopped." in run.text("stop")


# -- 05 -----------------------------------------------------------------------------------------


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("round_", ROUNDS)
def test_05_capture_and_replay(runs: dict[tuple[str, int], Executed | BaseException], round_: int) -> None:
    run = run_of(runs, "05_capture_and_replay.ipynb", round_)

    assert "client process" in run.text("client")
    assert re.search(r"Capture of my_model: 150 requests from version\(s\) \[1\]", run.text("capture"))
    assert "captured rows: (600, 4)" in run.text("captured-arrays")
    exported = run.text("export-warmup")
    assert "Exported my_model version 2" in exported
    assert "150 warmup record(s) written." in exported
    warmup = run.cwd / "models" / "capture" / "my_model" / "2" / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.is_file()
    assert re.search(r"my_model\s+2\s+AVAILABLE", run.text("both-served"))
    compared = run.text("compare-capture")
    assert "on captured live inputs (600 samples)" in compared
    assert re.search(r"agreement with live\s+\S+\s+v1 100\.00% · v2 [\d.]+%", compared), compared
    replay = re.search(r"^\s*[\d.]+/s\s+([\d.]+)\s+[\d.]+(?:\s+[\d.]+){4}\s+(\d+)", run.text("replay"), re.M)
    assert replay, run.text("replay")
    assert int(replay.group(2)) == 0
    rollout = run.text("rollout")
    assert re.search(r"my_model\s+2\s+AVAILABLE", rollout)
    assert re.search(r"my_model\s+1\s+END", rollout)
    assert "saved 150 requests to captures/live.tfrecord; loaded 150" in run.text("save-load")
    assert "same inputs: True" in run.text("save-load")
    assert "tfserve engine stopped." in run.text("stop")
