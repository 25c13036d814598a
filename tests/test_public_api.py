"""The package's public surface: light import, extension hooks, one version everywhere, the typed facade."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from typing import Any

import pytest

import tfserve_lab
from tests.conftest import ROOT
from tfserve_lab.errors import ConfigError, ErrorCode, TfServeError


def test_version_matches_labextension() -> None:
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["version"] == tfserve_lab.__version__


def test_import_is_light() -> None:
    code = "import sys, tfserve_lab; print(sorted(m for m in ('tensorflow', 'tornado', 'grpc', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_jupyter_hooks() -> None:
    assert tfserve_lab._jupyter_server_extension_points() == [{"module": "tfserve_lab.server_extension"}]
    assert tfserve_lab._jupyter_labextension_paths() == [{"src": "labextension", "dest": "tfserve-lab"}]
    assert sorted(tfserve_lab.__all__) == tfserve_lab.__all__


# What notebooks, the README, the magics and users' code call today, as ``tfs.NAME``.
FACADE = (
    "MODELS_DIR",
    "DeployResult",
    "EngineStatus",
    "ModelStatus",
    "batching",
    "bench",
    "capture",
    "compare",
    "compare_shadow",
    "current",
    "deploy",
    "export",
    "inspect",
    "k8s",
    "label",
    "live_stats",
    "parse_labels",
    "parse_weights",
    "predict",
    "profile",
    "reload",
    "resolve_version",
    "set_batching",
    "shadow",
    "shadow_records",
    "split",
    "split_weights",
    "start",
    "status",
    "stop",
    "tune",
    "undeploy",
    "version_or_label",
)


def test_facade_is_light_and_complete() -> None:
    code = (
        "import sys, tfserve_lab.api as tfs; "
        "heavy = ('tensorflow', 'tornado', 'grpc', 'IPython', 'ipywidgets', 'matplotlib', 'prometheus_client'); "
        "print(sorted(m for m in heavy if m in sys.modules)); print(' '.join(tfs.__all__))"
    )
    loaded, names = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert loaded == "[]"
    assert set(FACADE) <= set(names.split())


def test_facade_functions_are_typed() -> None:
    import tfserve_lab.api as tfs

    functions = [getattr(tfs, name) for name in tfs.__all__ if inspect.isfunction(getattr(tfs, name))]
    assert len(functions) >= 25
    for function in functions:
        annotations = function.__annotations__
        assert "return" in annotations, function.__name__
        assert annotations["return"] != "Any", function.__name__
        missing = [p for p in inspect.signature(function).parameters if p not in annotations]
        assert missing == [], function.__name__
    assert tfs.current.__annotations__["return"] == "ServingSession"


def test_current_without_an_engine_names_the_way_out() -> None:
    import tfserve_lab.api as tfs

    with pytest.raises(TfServeError) as raised:
        tfs.current()
    assert raised.value.message == "No engine is running: start one with %tfserve start."
    assert raised.value.code is ErrorCode.FAILED_PRECONDITION
    assert tfs.status().info is None


@pytest.mark.parametrize(
    ("text", "weights"),
    [
        ("1=90 2=10", {1: 90, 2: 10}),
        ("1=90, canary=10", {1: 90, "canary": 10}),
        (["stable=100"], {"stable": 100}),
        ("", {}),
    ],
)
def test_one_parser_for_version_percent(text: str | list[str], weights: dict[int | str, int]) -> None:
    import tfserve_lab.api as tfs

    assert tfs.parse_weights(text) == weights


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tfs: tfs.parse_weights("1=90 2=x"), "Expected VERSION=PERCENT, got '2=x' (as in 1=90 2=10)."),
        (lambda tfs: tfs.parse_weights(["=10"]), "Expected VERSION=PERCENT, got '=10' (as in 1=90 2=10)."),
        (lambda tfs: tfs.parse_weights(["1=-5"]), "Expected VERSION=PERCENT, got '1=-5' (as in 1=90 2=10)."),
        (
            lambda tfs: tfs.parse_labels(["stable=x"]),
            "Expected LABEL=VERSION, got 'stable=x' (as in stable=1 canary=2).",
        ),
        (lambda tfs: tfs.parse_labels("stable"), "Expected LABEL=VERSION, got 'stable' (as in stable=1 canary=2)."),
    ],
)
def test_version_text_errors_name_the_piece(call: Any, message: str) -> None:
    import tfserve_lab.api as tfs

    with pytest.raises(tfs.VersionSyntaxError) as raised:
        call(tfs)
    assert raised.value.message == message
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT


def test_one_reading_of_version_or_label() -> None:
    import tfserve_lab.api as tfs
    from tfserve_lab.deploy.options import TrafficSplit

    assert tfs.version_or_label("12") == 12
    assert tfs.version_or_label("canary") == "canary"
    assert tfs.version_or_label("v1") == "v1"  # a label: only the model-version header reads v1 as 1
    assert tfs.parse_labels("stable=1 canary=2") == {"stable": 1, "canary": 2}
    assert TrafficSplit.parse("m:1=90, 2=10").weights == {1: 90, 2: 10}
    # The manifests route by number: the same parser reads a label, which the k8s split then refuses.
    with pytest.raises(ConfigError, match="write it as MODEL:VERSION=PERCENT"):
        TrafficSplit.parse("m:canary=100")
