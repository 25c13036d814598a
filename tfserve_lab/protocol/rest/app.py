"""The REST application: TF Serving's URL table, built around one engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tornado.web

from tfserve_lab.core.engine import Engine
from tfserve_lab.protocol.rest.handlers import MetricsHandler, ModelsHandler, NotFoundHandler, RestOptions
from tfserve_lab.protocol.rest.workbench import StatsHandler, SummaryHandler, UnloadHandler, engine_summary

__all__ = ["RestOptions", "WorkbenchHooks", "make_app"]


@dataclass(frozen=True)
class WorkbenchHooks:
    """What the workbench routes need from outside the engine (metrics, stats, unload)."""

    metrics: Callable[[], bytes] | None = None
    metrics_path: str = "/monitoring/prometheus/metrics"
    stats: Callable[[], dict[str, Any]] | None = None
    unload: Callable[[str, int], None] | None = None
    splits: Callable[[str], dict[int, int]] | None = None


def make_app(engine: Engine, options: RestOptions, hooks: WorkbenchHooks | None = None) -> tornado.web.Application:
    """The tornado application serving ``/v1/models/...``, metrics and the workbench routes."""
    hooks = hooks or WorkbenchHooks()
    routes: list[Any] = [
        (r"/v1/models/(.*)", ModelsHandler, {"engine": engine, "options": options}),
        (r"/tfserve-lab/summary", SummaryHandler, {"summary": lambda: engine_summary(engine, hooks.splits)}),
    ]
    if hooks.metrics is not None:
        routes.append((hooks.metrics_path, MetricsHandler, {"render": hooks.metrics, "options": options}))
    if hooks.stats is not None:
        routes.append((r"/tfserve-lab/stats", StatsHandler, {"stats": hooks.stats}))
    if hooks.unload is not None:
        routes.append((r"/tfserve-lab/models/([^/]+)/versions/(\d+)/unload", UnloadHandler, {"unload": hooks.unload}))
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"options": options},
    )
