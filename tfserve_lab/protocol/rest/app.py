"""The REST application: TF Serving's URL table, built around one engine."""

from __future__ import annotations

from collections.abc import Callable

import tornado.web

from tfserve_lab.core.engine import Engine
from tfserve_lab.protocol.rest.handlers import MetricsHandler, ModelsHandler, NotFoundHandler, RestOptions

__all__ = ["RestOptions", "make_app"]


def make_app(
    engine: Engine,
    options: RestOptions,
    *,
    metrics: Callable[[], bytes] | None = None,
    metrics_path: str = "/monitoring/prometheus/metrics",
) -> tornado.web.Application:
    """The tornado application serving ``/v1/models/...`` (and metrics when given)."""
    routes: list[tornado.web.URLSpec | tuple] = [
        (r"/v1/models/(.*)", ModelsHandler, {"engine": engine, "options": options}),
    ]
    if metrics is not None:
        routes.append((metrics_path, MetricsHandler, {"render": metrics, "options": options}))
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"options": options},
        compress_response=False,
        xheaders=False,
    )
