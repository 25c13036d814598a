"""Every ``%tfserve`` subcommand through IPython's InteractiveShell, with real TensorFlow models."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import get_ipython, start_ipython

from tests.conftest import wait_until
from tfserve_lab import api
from tfserve_lab.notebook.display import Failure, Table


@pytest.fixture(scope="module")
def ip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    import keras

    # start_ipython returns None once the global shell exists (another module may have started it).
    shell = start_ipython() or get_ipython()
    work = tmp_path_factory.mktemp("magics")
    shell.run_line_magic("cd", str(work))
    shell.run_line_magic("load_ext", "tfserve_lab")
    keras.utils.set_random_seed(0)
    shell.user_ns["model"] = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    shell.user_ns["x"] = np.random.default_rng(0).random((4, 10), dtype=np.float32)
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "tfserve_lab")


def tfserve(shell: InteractiveShell, line: str) -> object:
    return shell.run_line_magic("tfserve", line)


def test_full_journey(ip: InteractiveShell, capsys: pytest.CaptureFixture[str], testdata: Path) -> None:
    started = tfserve(ip, "start --rest-port 0 --grpc-port 0")
    assert isinstance(started, Table)
    assert started.title == "tfserve engine started"
    again = tfserve(ip, "start --rest-port 0 --grpc-port 0")
    assert isinstance(again, Table)
    assert again.title == "tfserve engine already running"
    url = api.current().info.rest_url

    first = tfserve(ip, "export model seed --warmup-data x")
    assert isinstance(first, Table)
    assert "version 1" in first.title
    assert "1 warmup record(s) written." in repr(first)
    assert (Path("models/seed/1/assets.extra/tf_serving_warmup_requests")).is_file()
    second = tfserve(ip, "export model seed")
    assert "version 2" in second.title  # type: ignore[attr-defined]

    shown = tfserve(ip, "inspect seed --version 1")
    assert "serving_default" in repr(shown)
    assert "(None, 10)" in repr(shown)

    capsys.readouterr()
    status = tfserve(ip, "deploy seed --policy all")
    assert [(r[0], r[1], r[2]) for r in status.rows] == [("seed", 2, "AVAILABLE"), ("seed", 1, "AVAILABLE")]  # type: ignore[attr-defined]
    shown = capsys.readouterr().out  # the steps, as lines outside a kernel (a progress bar in one)
    assert "Deploying seed: seed version 1: warmup 1/1" in shown
    assert "Deploying seed: seed version 1: AVAILABLE" in shown
    expected = ip.user_ns["model"].predict(ip.user_ns["x"], verbose=0)
    np.testing.assert_allclose(tfserve(ip, "predict seed x --version 1"), expected, rtol=1e-5)
    rest = requests.post(
        f"{url}/v1/models/seed/versions/2:predict", json={"instances": ip.user_ns["x"].tolist()}, timeout=30
    )
    np.testing.assert_allclose(rest.json()["predictions"], expected, rtol=1e-5)

    labelled = tfserve(ip, "label seed stable=1 canary=2")
    assert ("seed", 1, "AVAILABLE", "stable", "") in labelled.rows  # type: ignore[attr-defined]
    np.testing.assert_allclose(tfserve(ip, "predict seed x --label canary"), expected, rtol=1e-5)

    after = tfserve(ip, "undeploy seed --version 1")
    assert [(r[1], r[2]) for r in after.rows] == [(2, "AVAILABLE"), (1, "END")]  # type: ignore[attr-defined]

    ip.run_cell_magic(
        "tfserve_config",
        "",
        f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{testdata / "saved_model_half_plus_two_cpu"}" model_platform: "tensorflow" }} }}',
    )
    ip.user_ns["xs"] = np.array([[1.0], [2.0]], np.float32)
    np.testing.assert_allclose(tfserve(ip, "predict half_plus_two xs"), [[2.5], [3.0]])
    assert [m.name for m in api.status().models] == ["half_plus_two"]

    live = tfserve(ip, "deploy model live")  # a live Keras model: exported and served in one step
    assert ("live", 1, "AVAILABLE", "", "") in live.rows  # type: ignore[attr-defined]

    capsys.readouterr()
    tfserve(ip, "stop")
    assert "stopped" in capsys.readouterr().out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/models/live", timeout=5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("predict nope x", "No engine is running"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("export nothere m", "name 'nothere' is not defined in this notebook"),
        ("export x m", "Cannot export a ndarray"),
        ("inspect /does/not/exist", "No SavedModel or model named '/does/not/exist'"),
        ("deploy ghost", "/models/ghost for servable ghost."),
        ("label m stable=x", "Expected LABEL=VERSION, got 'stable=x'"),
        ("shadow m", "give --candidate VERSION|LABEL to start shadowing, or --off to end it"),
        ("compare m 1 2 --data x --labels x", "compare --labels is now --targets"),
        ("start --rest-port abc", "invalid int value: 'abc'"),
    ],
)
def test_user_errors_print_one_line(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    result = tfserve(ip, line)
    assert isinstance(result, Failure)
    assert not result
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_errors_while_running_and_busy_port(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], copy_model, testdata: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert isinstance(tfserve(ip, f"start --rest-port {port} --grpc-port 0"), Failure)
        assert f"Port {port} (REST) is already in use" in capsys.readouterr().err
    tfserve(ip, "start --rest-port 0 --grpc-port 0")
    try:
        broken = copy_model("saved_model_half_plus_two_cpu", "broken")
        shutil.rmtree(broken / "00000123" / "variables")
        (broken / "00000123" / "saved_model.pb").write_bytes(b"not a proto")
        capsys.readouterr()
        failed = tfserve(ip, f"deploy broken --base-path {broken}")
        # The failed load is reported in one line with TensorFlow's reason; the status waits for a retry.
        assert isinstance(failed, Failure)
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("tfserve: broken version 123 failed to load: ")
        assert "Can't parse" in line
        row = tfserve(ip, "status").rows[0]  # type: ignore[attr-defined]
        assert row[2] in ("START", "END")
        assert "Can't parse" in row[4]
        for line, message in [
            ("predict broken x", "Servable not found for request: Latest(broken)"),
            ("predict nope x", "Servable not found for request: Latest(nope)"),
            ("undeploy nope", "Servable not found for request: Latest(nope)"),
            ("predict broken x --version 3", "Specific(broken, 3)"),
        ]:
            capsys.readouterr()
            assert isinstance(tfserve(ip, line), Failure)
            assert message in capsys.readouterr().err
    finally:
        tfserve(ip, "stop")


def test_one_vocabulary_base_path_models_dir_and_the_empty_folder_message(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    tfserve(ip, "start --rest-port 0 --grpc-port 0")
    try:
        # --models-dir is the parent of the model repositories; --base-path is TF Serving's base_path.
        exported = tfserve(ip, "export model vocab --models-dir zoo")
        assert "version 1" in exported.title  # type: ignore[attr-defined]
        assert Path("zoo/vocab/1/saved_model.pb").is_file()
        tfserve(ip, "export model vocab --base-path zoo/vocab")
        assert Path("zoo/vocab/2/saved_model.pb").is_file()
        capsys.readouterr()
        # The parent folder given as a base path serves nothing: say so in TF Serving's words.
        status = tfserve(ip, "deploy vocab --base-path zoo")
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [
            f"tfserve: No versions of servable vocab found under base path {Path('zoo').resolve()}. Did you forget "
            "to name your leaf directory as a number (eg. '/1/')? Did you mean zoo/vocab?"
        ]
        assert ("vocab", "-", "no versions yet", "", "") in status.rows  # type: ignore[attr-defined]
        # A SavedModel folder given as a base path: it needs a numbered folder.
        tfserve(ip, "deploy vocab --base-path zoo/vocab/1")
        assert "is itself a SavedModel: put it in a numbered folder such as" in capsys.readouterr().err
        served = tfserve(ip, "deploy vocab --models-dir zoo")
        assert [r[:3] for r in served.rows] == [("vocab", 2, "AVAILABLE")]  # type: ignore[attr-defined]
        out = capsys.readouterr().out
        assert "Deploying vocab: vocab version 2: AVAILABLE" in out  # progress lines outside a kernel
        shown = tfserve(ip, "inspect vocab --models-dir zoo --version 1")
        assert "zoo/vocab/1" in shown.title  # type: ignore[attr-defined]
        # --no-wait returns before the load; the version then becomes AVAILABLE on its own.
        tfserve(ip, "export model later --models-dir zoo")
        tfserve(ip, "deploy later --models-dir zoo --no-wait")
        wait_until(
            lambda: ("later", 1, "AVAILABLE", "", "") in tfserve(ip, "status").rows,  # type: ignore[attr-defined]
            timeout=60,
            what="later to become AVAILABLE",
        )
    finally:
        tfserve(ip, "stop")


def test_help_shows_the_vocabulary(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    tfserve(ip, "help")
    out = capsys.readouterr().out
    for words in ("--base-path  TF Serving's base_path", "--models-dir the folder holding one base path per model"):
        assert words in out
    for command in ("export", "inspect", "deploy"):
        tfserve(ip, f"{command} --help")
        text = capsys.readouterr().out
        assert "--models-dir" in text
        assert "--base-path" in text


def test_the_switch_interval_is_short_while_the_engine_runs_and_restored_after(ip: InteractiveShell) -> None:
    import sys

    before = sys.getswitchinterval()
    tfserve(ip, "start --rest-port 0 --grpc-port 0")
    assert sys.getswitchinterval() == pytest.approx(3e-5)
    tfserve(ip, "stop")
    assert sys.getswitchinterval() == before
    tfserve(ip, "start --rest-port 0 --grpc-port 0 --switch-interval-ms 0")
    assert sys.getswitchinterval() == before  # 0 keeps Python's own
    tfserve(ip, "stop")
    tfserve(ip, "start --rest-port 0 --grpc-port 0 --switch-interval-ms 0.5")
    assert sys.getswitchinterval() == pytest.approx(5e-4)
    ip.run_line_magic("unload_ext", "tfserve_lab")
    assert sys.getswitchinterval() == before
    ip.run_line_magic("load_ext", "tfserve_lab")
