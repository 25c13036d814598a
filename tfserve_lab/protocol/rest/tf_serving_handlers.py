"""TF Serving's REST answers outside inference, as tornado handlers: model status and metadata, metrics, 404, 401.

Inference POSTs go to ``inference_http`` instead. Every failure answers
``{"error": "..."}`` with the HTTP code ``http_status`` gives its canonical code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import tornado.web

from tfserve_lab.core.engine import Engine
from tfserve_lab.core.types import ModelSpec
from tfserve_lab.errors import ErrorCode, TfServeError
from tfserve_lab.protocol.auth import UNAUTHENTICATED_MESSAGE
from tfserve_lab.protocol.rest import codec
from tfserve_lab.protocol.rest.http_status import HTTP_STATUS
from tfserve_lab.protocol.rest.in_flight import InFlight
from tfserve_lab.protocol.rest.inference import url_version
from tfserve_lab.protocol.rest.options import RestOptions, cors_headers

__all__ = ["MetricsHandler", "ModelsHandler", "NotFoundHandler", "UnauthenticatedHandler"]

log = logging.getLogger("tfserve_lab.rest")

# TF Serving's status and metadata URL (http_rest_api_handler.cc), matched case-insensitively.
_STATUS_URL = re.compile(r"(?i)([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?")


class _BaseHandler(tornado.web.RequestHandler):
    rest_options: RestOptions

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        if getattr(self, "rest_options", None) is not None:
            for name, value in cors_headers(self.rest_options):
                self.set_header(name, value)

    def _use(self, options: RestOptions) -> None:
        # Tornado sets the default headers before initialize() hands over the options: set them again.
        self.rest_options = options
        self.set_default_headers()

    def options_preflight(self) -> None:
        if not self.rest_options.enable_cors:
            self._fail(ErrorCode.INVALID_ARGUMENT, f"Malformed request: OPTIONS {self.request.path}")
            return
        self.set_status(204)
        self.finish()

    def _fail(self, code: ErrorCode, message: str) -> None:
        self.set_status(HTTP_STATUS.get(code, 500))
        self.finish(codec.encode_error(message))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Tornado's own errors (bad method, oversized body) in TF Serving's error shape.
        reason = self._reason if status_code != 500 else "Internal error"
        self.finish(codec.encode_error(reason))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            return
        log.error("Uncaught error in %s %s", self.request.method, self.request.path, exc_info=(typ, value, tb))


class NotFoundHandler(_BaseHandler):
    """Anything outside ``/v1/models/``."""

    def initialize(self, options: RestOptions) -> None:
        self._use(options)

    def prepare(self) -> None:
        if self.request.method == "OPTIONS":
            self.options_preflight()
            return
        self._fail(ErrorCode.NOT_FOUND, f"Malformed request: {self.request.method} {self.request.path}")


class UnauthenticatedHandler(_BaseHandler):
    """Every request without the ``--auth_token`` bearer token: 401 in TF Serving's error shape."""

    def initialize(self, options: RestOptions) -> None:
        self._use(options)

    def prepare(self) -> None:
        self.set_header("WWW-Authenticate", 'Bearer realm="tfserve-lab"')
        self._fail(ErrorCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


class MetricsHandler(_BaseHandler):
    """Prometheus text exposition on the monitoring path."""

    def initialize(self, render: Callable[[], bytes], options: RestOptions) -> None:
        self.render_metrics = render
        self._use(options)

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")  # what TF Serving's exporter sends
        self.finish(self.render_metrics())


class ModelsHandler(_BaseHandler):
    """``/v1/models/NAME[/versions/N|/labels/L][/metadata]``: status, metadata, CORS preflights.

    Inference POSTs with the bearer token never get here: ``inference_http`` answers them.
    """

    def initialize(self, engine: Engine, options: RestOptions, in_flight: InFlight | None = None) -> None:
        self.engine = engine
        self._use(options)
        self.in_flight = in_flight or InFlight()

    def options(self, path: str) -> None:
        self.options_preflight()

    def _malformed(self) -> None:
        self._fail(ErrorCode.INVALID_ARGUMENT, f"Malformed request: {self.request.method} {self.request.path}")

    def put(self, path: str) -> None:
        """TF Serving answers any other method on ``/v1/`` as a malformed request."""
        self._malformed()

    # POST: an inference URL without the token gets the 401 before this; any other is malformed.
    delete = patch = post = put

    async def get(self, path: str) -> None:
        with self.in_flight.track():
            self._get(path)

    def _get(self, path: str) -> None:
        match = _STATUS_URL.fullmatch(path)
        if match is None:
            self._malformed()
            return
        name, version, label, metadata = match.groups()
        try:
            if metadata:
                spec = ModelSpec(name, url_version(version), label)
                result = self.engine.metadata(spec)
                body = codec.encode_model_metadata(result.model_name, result.version, result.signatures)
            else:
                body = codec.encode_model_status(self.engine.status(name, url_version(version)))
        except TfServeError as exc:
            self._fail(exc.code, exc.message)
            return
        self.finish(body)
