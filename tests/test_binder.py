"""binder/ (what mybinder.org reads) agrees with pyproject.toml and covers what the notebooks import."""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Top-level modules the notebooks import -> the distribution that provides them.
MODULE_DISTRIBUTIONS = {
    "numpy": "numpy",
    "requests": "requests",
    "keras": "tensorflow",  # Keras 3 comes with tensorflow
    "tensorflow": "tensorflow",
    "grpc": "grpcio",
    "tensorflow_serving": "tensorflow-serving-api",
    "google": "protobuf",
    "prometheus_client": "prometheus-client",
    "matplotlib": "matplotlib",
    "yaml": "pyyaml",
    "IPython": "ipython",
    "tfserve_lab": "tfserve-lab",  # postBuild installs the repository itself
}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def environment() -> dict:
    return yaml.safe_load((BINDER / "environment.yml").read_text(encoding="utf-8"))


def binder_pip() -> dict[str, Requirement]:
    pips = [d["pip"] for d in environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "environment.yml needs one pip: section"
    requirements = [Requirement(line) for line in pips[0]]
    by_name = {canonicalize_name(r.name): r for r in requirements}
    assert len(by_name) == len(requirements), "a package is listed twice in binder/environment.yml"
    return by_name


def conda_packages() -> dict[str, str]:
    """conda name -> version spec ('' when none)."""
    packages = {}
    for dep in environment()["dependencies"]:
        if isinstance(dep, str):
            name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", dep.strip()).groups()
            # conda's `python=3.11` means "3.11.*"; keep the version part.
            packages[name] = spec[1:] if spec.startswith("=") and not spec.startswith("==") else spec
    return packages


def test_binder_files_exist() -> None:
    assert (BINDER / "environment.yml").is_file()
    post_build = BINDER / "postBuild"
    assert post_build.is_file()
    assert post_build.read_text(encoding="utf-8").startswith("#!"), "postBuild needs a shebang"
    assert os.access(post_build, os.X_OK), "postBuild must be executable (git keeps the bit)"


def test_every_runtime_dependency_is_installed_with_pyprojects_specifier() -> None:
    binder = binder_pip()
    for line in pyproject()["project"]["dependencies"]:
        wanted = Requirement(line)
        got = binder.get(canonicalize_name(wanted.name))
        assert got is not None, f"{wanted.name} (pyproject.toml) is missing from binder/environment.yml"
        assert got.specifier == wanted.specifier, f"{wanted.name}: binder has {got}, pyproject.toml {wanted}"
        assert got.extras == wanted.extras, f"{wanted.name}: extras differ"


def test_binder_lists_nothing_pyproject_does_not_know() -> None:
    project = pyproject()["project"]
    known = {canonicalize_name(Requirement(line).name): Requirement(line) for line in project["dependencies"]}
    for lines in project.get("optional-dependencies", {}).values():
        known.update({canonicalize_name(Requirement(line).name): Requirement(line) for line in lines})
    for name, requirement in binder_pip().items():
        assert name in known, f"binder installs {name}, which pyproject.toml does not declare"
        assert requirement.specifier == known[name].specifier, f"{name}: binder {requirement}, pyproject {known[name]}"


def test_python_and_node() -> None:
    env = environment()
    assert "conda-forge" in env["channels"]
    conda = conda_packages()
    assert "pip" in conda
    python = Version(conda["python"])
    assert python in SpecifierSet(pyproject()["project"]["requires-python"])
    assert "nodejs" in conda, "building the labextension on `pip install .` needs node"
    major = int(re.search(r"(\d+)", conda["nodejs"]).group(1))
    assert major >= 20


def test_post_build_installs_the_repository_and_checks() -> None:
    text = (BINDER / "postBuild").read_text(encoding="utf-8")
    assert "set -e" in text
    assert re.search(r"pip install( --\S+)* \.(\s|$)", text), "postBuild must `pip install .` (the labextension)"
    assert "pip check" in text
    assert "labextension list" in text


def notebook_imports() -> set[str]:
    modules = set()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            # IPython magics are not Python; drop those lines.
            source = "\n".join(
                "" if line.lstrip().startswith(("%", "!")) or re.search(r"=\s*%", line) else line
                for line in cell.source.splitlines()
            )
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
            modules.update(re.findall(r"%load_ext (\w+)", cell.source))
    return modules


def test_binder_covers_what_the_notebooks_import() -> None:
    assert len(NOTEBOOKS) == 5
    binder = set(binder_pip())
    for module in sorted(notebook_imports()):
        if module in sys.stdlib_module_names:
            continue
        assert module in MODULE_DISTRIBUTIONS, f"notebooks import {module}: map it to its distribution here"
        distribution = canonicalize_name(MODULE_DISTRIBUTIONS[module])
        if distribution == "tfserve-lab":
            continue
        assert distribution in binder, f"notebooks import {module} but binder does not install {distribution}"


def test_readme_binder_badge_opens_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]\((https://mybinder\.org/v2/gh/[^)]+)\)", readme
    )
    assert match, "README needs the Binder badge"
    url = match.group(1)
    assert re.fullmatch(r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/HEAD\?urlpath=lab/tree/(\S+)", url), url
    target = url.split("urlpath=lab/tree/", 1)[1]
    assert target == "notebooks/01_quickstart.ipynb"
    assert (ROOT / target).is_file()
