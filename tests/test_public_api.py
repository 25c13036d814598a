"""The package's public surface: light import, extension hooks, one version everywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import tfserve_lab
from tests.conftest import ROOT


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
