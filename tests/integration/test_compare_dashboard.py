"""Compare reports, the live dashboard and traffic splits against a real engine serving two Keras versions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from matplotlib.collections import PathCollection

from tests.conftest import wait_until
from tfserve_lab import api
from tfserve_lab.config import ServerOptions
from tfserve_lab.notebook.charts import dashboard_figure, figure_png
from tfserve_lab.notebook.compare import CompareReport, compare, compare_shadow, output_stats
from tfserve_lab.notebook.dashboard import Dashboard, parse_weights
from tfserve_lab.results import Started

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 300


@dataclass
class Served:
    """The running engine's models and what Keras itself predicts for ``x``."""

    x: np.ndarray
    classes: np.ndarray  # true classes for the classifier
    targets: np.ndarray  # true targets for the regressor
    clf: dict[int, Any]  # version -> Keras model
    reg: dict[int, Any]


def _model(units: int, activation: str | None, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    # A fixed input name: Keras numbers unnamed inputs per process (keras_tensor, keras_tensor_2, ...), and the
    # shadow copy is sent by input alias, so versions must share it.
    inputs = keras.Input((4,), name="features")
    return keras.Sequential([inputs, keras.layers.Dense(units, activation=activation)])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from tfserve_lab.export import export_model

    root = tmp_path_factory.mktemp("compare")
    clf = {1: _model(3, "softmax", 1), 2: _model(3, "softmax", 2)}
    reg = {1: _model(1, None, 1), 2: _model(1, None, 2)}
    for name, models in (("clf", clf), ("reg", reg)):
        for version, model in models.items():
            export_model(model, name, base_path=str(root / name), version=version)
    # Server-side batching on, so the dashboard's batch-size histogram has data.
    options = ServerOptions(
        port=0, grpc_port_enabled=True, rest_api_port=0, rest_api_enabled=True, host="127.0.0.1", enable_batching=True
    )
    assert isinstance(api.start(options=options), Started)
    try:
        for name in ("clf", "reg"):
            api.deploy(name, str(root / name), policy="all")
        # A third name on the regressor's repository, whose traffic only the dashboard test sends.
        api.deploy("dash", str(root / "reg"), policy="all")
        rng = np.random.default_rng(0)
        yield Served(
            x=rng.normal(size=(N, 4)).astype(np.float32),
            classes=rng.integers(0, 3, size=N),
            targets=rng.normal(size=(N, 1)).astype(np.float32),
            clf=clf,
            reg=reg,
        )
    finally:
        api.stop()


def _keras(models: dict[int, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return models[1].predict(x, verbose=0).astype(np.float64), models[2].predict(x, verbose=0).astype(np.float64)


def _check_classifier(report: CompareReport, p1: np.ndarray, p2: np.ndarray, classes: np.ndarray | None) -> None:
    (out,) = report.outputs
    assert out.rule == "argmax"
    assert out.agreement == pytest.approx(np.mean(p1.argmax(1) == p2.argmax(1)))
    assert 0.0 < out.agreement < 1.0  # differently seeded models: a test of the numbers, not a degenerate case
    assert out.mean_abs_diff == pytest.approx(np.abs(p1 - p2).mean(), abs=1e-6)
    assert out.max_abs_diff == pytest.approx(np.abs(p1 - p2).max(), abs=1e-6)
    if classes is not None:
        assert out.accuracy_a == pytest.approx(np.mean(p1.argmax(1) == classes))
        assert out.accuracy_b == pytest.approx(np.mean(p2.argmax(1) == classes))
        assert out.mse_a is None


def test_compare_classifier_matches_numpy(served: Served) -> None:
    report = compare("clf", 1, 2, served.x, served.classes, batch_size=64, repeats=2)
    p1, p2 = _keras(served.clf, served.x)
    assert (report.version_a, report.version_b, report.samples) == (1, 2, N)
    _check_classifier(report, p1, p2, served.classes)
    calls = 2 * int(np.ceil(N / 64))  # batches x repeats, per version
    assert len(report.latency_ms_a) == len(report.latency_ms_b) == calls
    assert report.latency("a", 50) == pytest.approx(np.percentile(report.latency_ms_a, 50))
    assert report.latency("b", 95) == pytest.approx(np.percentile(report.latency_ms_b, 95))
    text = repr(report)
    assert "agreement" in text
    assert "accuracy" in text
    assert "p95" in text


def test_compare_widget_lists_and_runs(served: Served) -> None:
    from tfserve_lab.notebook.compare_widget import CompareWidget

    namespace = {"x": served.x, "y": served.classes, "not_an_array": 3, "_hidden": served.x}
    widget = CompareWidget(namespace, "clf")
    assert set(widget.model.options) >= {"clf", "reg", "dash"}
    assert widget.model.value == "clf"
    assert [value for _, value in widget.version_a.options] == [1, 2]
    assert list(widget.data.options) == ["x", "y"]
    assert list(widget.labels.options) == ["(none)", "x", "y"]
    widget.data.value, widget.labels.value = "x", "y"
    widget.version_a.value, widget.version_b.value = 1, 2
    report = widget.run()
    assert report is not None
    _check_classifier(report, *_keras(served.clf, served.x), served.classes)
    widget.data.value = "y"  # classes are no model input: one line, no exception
    assert widget.run() is None
    assert widget.message.value


def test_compare_regressor_mse_labels_and_chart(served: Served) -> None:
    api.label("reg", {"stable": 1, "canary": 2})
    report = compare("reg", "stable", "canary", served.x, served.targets, batch_size=128)
    p1, p2 = _keras(served.reg, served.x)
    (out,) = report.outputs
    assert (report.version_a, report.version_b) == (1, 2)
    assert out.rule == "allclose"
    assert out.agreement == pytest.approx(np.mean(np.isclose(p1, p2, rtol=1e-5, atol=1e-6)))
    assert out.mean_abs_diff == pytest.approx(np.abs(p1 - p2).mean(), abs=1e-5)
    assert out.max_abs_diff == pytest.approx(np.abs(p1 - p2).max(), abs=1e-5)
    assert out.mse_a == pytest.approx(np.mean((p1 - served.targets) ** 2), rel=1e-4)
    assert out.mse_b == pytest.approx(np.mean((p2 - served.targets) ** 2), rel=1e-4)
    assert out.accuracy_a is None

    fig = report.figure()
    scatter, hist, latency = fig.axes
    points = [c for c in scatter.collections if isinstance(c, PathCollection)]
    assert len(points[0].get_offsets()) == N
    np.testing.assert_allclose(points[0].get_offsets()[:, 1], p2[:, 0], rtol=1e-4, atol=1e-5)
    assert sum(p.get_height() for p in hist.patches) == N
    assert sum(p.get_height() for p in latency.patches) == len(report.latency_ms_a) + len(report.latency_ms_b)
    png = figure_png(fig)
    assert png.startswith(PNG_MAGIC)
    page = report._repr_html_()
    assert "data:image/png;base64," in page
    assert "MSE" in page


def test_agreement_rules() -> None:
    a = np.array([[0.2], [0.7], [0.55], [0.1]])
    b = np.array([[0.4], [0.9], [0.45], [0.6]])
    sigmoid = output_stats("p", a, b, labels=np.array([0, 1, 1, 1]))
    assert sigmoid.rule == "threshold 0.5"
    assert sigmoid.agreement == 0.5
    assert (sigmoid.accuracy_a, sigmoid.accuracy_b) == (0.75, 0.75)
    scores = output_stats("s", np.eye(3)[[0, 1, 2]], np.eye(3)[[0, 2, 2]], labels=np.eye(3)[[0, 1, 1]])
    assert (scores.rule, scores.agreement, scores.accuracy_a, scores.accuracy_b) == ("argmax", 2 / 3, 2 / 3, 1 / 3)
    regression = output_stats("r", np.array([1.0, 2.0, -3.0]), np.array([1.0, 2.5, -3.0 + 1e-9]))
    assert (regression.rule, regression.agreement, regression.max_abs_diff) == ("allclose", 2 / 3, 0.5)
    assert parse_weights("1=90, canary=10") == {1: 90, "canary": 10}


def test_compare_shadow_over_live_traffic(served: Served) -> None:
    api.split("clf", {1: 100})  # unversioned traffic goes to v1, so v2 can shadow it
    api.shadow("clf", 2)
    before = len(api.shadow_records("clf"))
    try:
        for start in range(0, 200, 10):
            api.predict("clf", served.x[start : start + 10])
        wait_until(lambda: len(api.shadow_records("clf")) >= before + 20, timeout=10, what="20 shadow records")
    finally:
        api.shadow("clf", None)
        api.split("clf", None)
    report = compare_shadow("clf")
    assert (report.source, report.version_a, report.version_b, report.samples) == ("shadow", 1, 2, 200)
    p1, p2 = _keras(served.clf, served.x[:200])
    _check_classifier(report, p1, p2, None)
    assert len(report.latency_ms_b) == 20
    assert figure_png(report.figure()).startswith(PNG_MAGIC)


def _lines(fig: Any, title: str) -> dict[str, np.ndarray]:
    ax = next(a for a in fig.axes if a.get_title() == title)
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


def test_dashboard_charts_and_controls(served: Served) -> None:
    board = Dashboard("dash", autostart=False)
    for i in range(30):
        api.predict("dash", served.x[i : i + 5], version=1)
    for i in range(10):
        api.predict("dash", served.x[i : i + 5], version=2)
    assert board.refresh()
    assert board.refresh_count == 1
    fig = board.figure
    rates = _lines(fig, "requests/s and errors/s")
    assert rates["v1 requests/s"].sum() == 30
    assert rates["v2 requests/s"].sum() == 10
    assert rates["v1 errors/s"].sum() == rates["v2 errors/s"].sum() == 0
    assert {"v1 p50", "v1 p99", "v2 p50", "v2 p99"} <= set(_lines(fig, "latency p50 / p99"))
    batches = next(a for a in fig.axes if a.get_title().startswith("batch sizes"))
    heights = {c.get_label(): sum(p.get_height() for p in c) for c in batches.containers}
    assert heights == {"v1": 30, "v2": 10}  # sequential calls: one batch each, of 5 rows (bound 8)
    assert [t.get_text() for t in batches.get_xticklabels()] == ["≤8"]
    assert bytes(board.image.value).startswith(PNG_MAGIC)
    assert "AVAILABLE" in board.table.value

    board.split_text.value = "1=90 2=10"
    board.split_apply.click()
    assert api.current().engine.router.split("dash") == {1: 90, 2: 10}
    board.split_text.value = "1=x"
    board.split_apply.click()
    assert "VERSION=PERCENT" in board.message.value
    board.split_off.click()
    assert api.current().engine.router.split("dash") == {}

    snapshot = api.current().stats.snapshot()
    assert figure_png(dashboard_figure(snapshot, "dash", split={1: 90, 2: 10})).startswith(PNG_MAGIC)
    assert figure_png(dashboard_figure(snapshot, "nothing-here")).startswith(PNG_MAGIC)
    board.close()


def test_dashboard_refreshes_while_the_kernel_is_busy(served: Served) -> None:
    board = Dashboard("dash")  # the refresher thread starts now
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            api.predict("dash", served.x[:8], version=1)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        wait_until(lambda: board.refresh_count >= 1, timeout=10, what="the dashboard's first refresh")
        before = board.refresh_count
        time.sleep(2.6)  # the "cell" is busy: nothing yields to the kernel's loop
        assert board.refresh_count - before >= 2
    finally:
        stop.set()
        sender.join()
    assert _lines(board.figure, "requests/s and errors/s")["v1 requests/s"].sum() > 0
    board.close()
    assert not board.running


def test_split_shares_and_explicit_versions(served: Served) -> None:
    x0 = served.x[:1]
    v1, v2 = (api.predict("clf", x0, version=v) for v in (1, 2))
    assert not np.allclose(v1, v2)

    def served_by(result: np.ndarray) -> int:
        return 1 if np.allclose(result, v1, rtol=1e-6) else 2 if np.allclose(result, v2, rtol=1e-6) else 0

    api.split("clf", {1: 90, 2: 10})
    try:
        seen = [served_by(api.predict("clf", x0)) for _ in range(2000)]
        assert 0 not in seen
        assert abs(seen.count(1) / 2000 - 0.90) <= 0.03
        assert {served_by(api.predict("clf", x0, version=2)) for _ in range(100)} == {2}
        assert {served_by(api.predict("clf", x0, version=1)) for _ in range(100)} == {1}
    finally:
        api.split("clf", None)
    assert served_by(api.predict("clf", x0)) == 2  # without a split the newest version serves


def test_magics_and_dashboard_stop_with_engine(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.testing import globalipapp

    from tfserve_lab.notebook.display import Failure

    started_here = not hasattr(globalipapp.start_ipython, "already_called")
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    if started_here:
        # start_ipython() returns None after its first call, and test_magics.py's fixture uses its result:
        # clear the flag so that a later call hands that module the same (singleton) shell again.
        del globalipapp.start_ipython.already_called
    shell.run_line_magic("load_ext", "tfserve_lab")
    board = None
    try:
        shell.user_ns.update(x=served.x, y=served.targets)
        report = shell.run_line_magic("tfserve", "compare reg 1 2 --data x --targets y --batch-size 100")
        assert isinstance(report, CompareReport)
        p1, p2 = _keras(served.reg, served.x)
        assert report.outputs[0].mse_a == pytest.approx(np.mean((p1 - served.targets) ** 2), rel=1e-4)
        assert report.outputs[0].mse_b == pytest.approx(np.mean((p2 - served.targets) ** 2), rel=1e-4)
        shadowed = shell.run_line_magic("tfserve", "compare clf --shadow")
        assert isinstance(shadowed, CompareReport)
        assert shadowed.source == "shadow"
        for line, message in (
            ("compare reg 1 --data x", "give two versions"),
            ("compare reg 1 2 --data nope", "name 'nope' is not defined"),
            ("compare reg 1 2 --shadow", "give only NAME"),
            ("dashboard nope", "Servable not found"),
        ):
            assert isinstance(shell.run_line_magic("tfserve", line), Failure)
            assert message in capsys.readouterr().err
        board = shell.run_line_magic("tfserve", "dashboard reg")
        assert isinstance(board, Dashboard)
        wait_until(lambda: board.refresh_count >= 1, timeout=10, what="the dashboard's first refresh")
        assert board.running
    finally:
        shell.run_line_magic("unload_ext", "tfserve_lab")  # stops the engine, as a kernel's %unload_ext does
    assert board is not None
    board._thread.join(timeout=5)
    assert not board.running
    assert "engine stopped" in board.message.value
    board.close()
