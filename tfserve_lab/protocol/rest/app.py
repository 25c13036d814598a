"""The REST server's request router: inference POSTs to their delegate, TF Serving's other URLs to the app."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tornado.httputil
import tornado.web
from tornado.log import access_log

from tfserve_lab.core.engine import Engine
from tfserve_lab.protocol.auth import bearer_token_matches
from tfserve_lab.protocol.rest.in_flight import InFlight
from tfserve_lab.protocol.rest.inference_http import InferenceEndpoint, RestRouter
from tfserve_lab.protocol.rest.options import RestOptions
from tfserve_lab.protocol.rest.tf_serving_handlers import (
    MetricsHandler,
    ModelsHandler,
    NotFoundHandler,
    UnauthenticatedHandler,
)
from tfserve_lab.protocol.rest.workbench import StatsHandler, SummaryHandler, UnloadHandler, engine_summary

__all__ = ["InFlight", "RestOptions", "RestRouter", "WorkbenchHooks", "make_router"]


@dataclass(frozen=True)
class WorkbenchHooks:
    """What the workbench routes need from outside the engine (metrics, stats, unload)."""

    metrics: Callable[[], bytes] | None = None
    metrics_path: str = "/monitoring/prometheus/metrics"
    stats: Callable[[], Mapping[str, Any]] | None = None
    unload: Callable[[str, int], None] | None = None
    splits: Callable[[str], dict[int, int]] | None = None


class _Application(tornado.web.Application):
    """Routes every request without the bearer token (when one is set) to the 401 handler."""

    def __init__(self, routes: list[Any], options: RestOptions, **settings: Any) -> None:
        super().__init__(routes, **settings)
        self.rest_options = options

    def find_handler(self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any) -> tornado.web._HandlerDelegate:
        options = self.rest_options
        # CORS preflights carry no credentials by design; they reveal nothing and must pass.
        preflight = options.enable_cors and request.method == "OPTIONS"
        authorized = bearer_token_matches(options.auth_token, request.headers.get("Authorization"))
        if not authorized and not preflight:
            return self.get_handler_delegate(request, UnauthenticatedHandler, {"options": options})
        return super().find_handler(request, **kwargs)


def make_router(
    engine: Engine, options: RestOptions, hooks: WorkbenchHooks | None = None, in_flight: InFlight | None = None
) -> RestRouter:
    """What the REST ``HTTPServer`` serves: ``/v1/models/...``, metrics and the workbench routes.

    ``in_flight`` counts the model requests being answered, for a graceful stop.
    """
    in_flight = in_flight or InFlight()
    app = _make_app(engine, options, hooks or WorkbenchHooks(), in_flight)
    return RestRouter(app, InferenceEndpoint(engine, options, in_flight))


def _make_app(
    engine: Engine, options: RestOptions, hooks: WorkbenchHooks, in_flight: InFlight
) -> tornado.web.Application:
    models_args = {"engine": engine, "options": options, "in_flight": in_flight}
    routes: list[Any] = [
        (r"/v1/models/(.*)", ModelsHandler, models_args),
        (r"/tfserve-lab/summary", SummaryHandler, {"summary": lambda: engine_summary(engine, hooks.splits)}),
    ]
    if hooks.metrics is not None:
        routes.append((hooks.metrics_path, MetricsHandler, {"render": hooks.metrics, "options": options}))
    if hooks.stats is not None:
        routes.append((r"/tfserve-lab/stats", StatsHandler, {"stats": hooks.stats}))
    if hooks.unload is not None:
        routes.append((r"/tfserve-lab/models/([^/]+)/versions/(\d+)/unload", UnloadHandler, {"unload": hooks.unload}))
    return _Application(
        routes,
        options,
        default_handler_class=NotFoundHandler,
        default_handler_args={"options": options},
        log_function=_log_request,
    )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """TF Serving logs no requests; only server-side failures reach the log."""
    if handler.get_status() >= 500:
        access_log.warning(
            "%d %s %s %.2fms",
            handler.get_status(),
            handler.request.method,
            handler.request.uri,
            1000.0 * handler.request.request_time(),
        )
