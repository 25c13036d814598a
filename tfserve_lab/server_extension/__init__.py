"""The Jupyter server extension: lists the engines this server's kernels run and proxies to them.

Runs inside the Jupyter server process, so it never imports ``tfserve_lab.core`` or TensorFlow; it knows
engines only through the discovery files of ``tfserve_lab.protocol.discovery``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["_jupyter_server_extension_points", "_load_jupyter_server_extension"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where jupyter_server finds ``_load_jupyter_server_extension``."""
    return [{"module": "tfserve_lab.server_extension"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the handlers on the server's web application (called once by jupyter_server)."""
    from tfserve_lab.server_extension.handlers import TfServeLabConfig, setup_route_handlers

    config = TfServeLabConfig(parent=server_app)
    setup_route_handlers(server_app.web_app, config)
    server_app.log.info("tfserve-lab server extension loaded: engines at %stfserve-lab/engines", server_app.base_url)
