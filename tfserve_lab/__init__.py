"""tfserve-lab: a TensorFlow Serving workbench for Jupyter.

Importing the package is light: TensorFlow, tornado and grpc load only when
an engine starts (or, for TensorFlow, at ``%load_ext``, where its start-up
lines are kept out of the notebook).
"""

from __future__ import annotations

from tfserve_lab._version import __version__

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext tfserve_lab``: import TensorFlow without its C++ start-up lines, register the ``%tfserve`` magics."""
    from tfserve_lab.notebook.quiet_tensorflow import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tfserve_lab.notebook.magics import TfServeMagics

    ipython.register_magics(TfServeMagics)  # type: ignore[attr-defined]


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext tfserve_lab``: stop the engine this kernel started."""
    from tfserve_lab import api

    api.stop()


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where ``jupyter labextension develop`` finds the built frontend."""
    return [{"src": "labextension", "dest": "tfserve-lab"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension; its module is imported only when the server loads it."""
    return [{"module": "tfserve_lab.server_extension"}]
