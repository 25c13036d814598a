"""Inference POSTs straight off tornado's HTTP/1 connection, without a ``RequestHandler`` per request.

A ``RequestHandler`` costs about 40 us of the loop thread per request (header
defaults, a Date, routing, its flush path): a quarter of a small model's whole
request. Inference requests are most of a server's traffic, so they take the
lower tornado layer (``HTTPMessageDelegate``), the way TF Serving serves them
from a minimal HTTP server; everything else (status, metadata, metrics, the
workbench routes, and any request without the bearer token) still goes to the
``tornado.web.Application``.

What the handler path did is done here too: the body limit with its 413 (read
and dropped up to four times the limit, past that answered at once and the
connection closed), ``--rest_api_timeout_in_ms`` (504), CORS headers, one
in-flight count for a graceful stop, a log line for server-side failures, and
cancelling the work of a client that went away.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import logging
import time
from collections.abc import Awaitable
from urllib.parse import unquote

import tornado.httputil
import tornado.web
from tornado.log import access_log

from tfserve_lab.core.engine import Engine
from tfserve_lab.core.types import RequestContext
from tfserve_lab.errors import ErrorCode, TfServeError
from tfserve_lab.protocol.auth import bearer_token_matches
from tfserve_lab.protocol.rest import codec, inference
from tfserve_lab.protocol.rest.deadlines import Deadline, Deadlines
from tfserve_lab.protocol.rest.http_status import HTTP_STATUS
from tfserve_lab.protocol.rest.in_flight import InFlight
from tfserve_lab.protocol.rest.options import DRAIN_FACTOR, RestOptions, cors_headers

__all__ = ["InferenceEndpoint", "RestRouter"]

log = logging.getLogger("tfserve_lab.rest")

_TIMED_OUT = "Request timed out."
_PARSED_PATHS = 1024
_UNPARSED = object()


class InferenceEndpoint:
    """What every inference request shares: the engine, the REST options, the in-flight count and deadlines."""

    def __init__(self, engine: Engine, options: RestOptions, in_flight: InFlight) -> None:
        self.engine = engine
        self.options = options
        self.in_flight = in_flight
        self.deadlines = Deadlines(options.timeout_ms / 1000) if options.timeout_ms > 0 else None
        self.cors = cors_headers(options)
        self._date_second = 0
        self._date = ""
        self._calls: dict[str, object] = {}

    def call_for(self, path: str) -> inference.InferenceCall | None:
        """What an inference path asks for (None: not an inference URL); parsed once per distinct path.

        Raises:
            TfServeError: a version TF Serving cannot parse.
        """
        call = self._calls.get(path, _UNPARSED)
        if call is not _UNPARSED:
            return call  # type: ignore[return-value]
        try:
            call = inference.parse_inference_url(unquote(path[len(inference.MODEL_PREFIX) :], errors="strict"))
        except UnicodeDecodeError:
            call = None
        if len(self._calls) >= _PARSED_PATHS:
            self._calls.clear()  # clients inventing paths cannot grow it without bound
        self._calls[path] = call
        return call

    def date(self) -> str:
        """The Date header, formatted once a second."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, email.utils.formatdate(now, usegmt=True)
        return self._date

    def close(self) -> None:
        """Stop the deadline timer (the server is stopping)."""
        if self.deadlines is not None:
            self.deadlines.close()


class RestRouter(tornado.httputil.HTTPServerConnectionDelegate):
    """What the REST ``HTTPServer`` serves: authorized inference POSTs here, every other request to ``app``."""

    def __init__(self, app: tornado.web.Application, endpoint: InferenceEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        return _Request(self, server_conn, request_conn)


class _Request(tornado.httputil.HTTPMessageDelegate):
    """One request on a connection: answered here when it is an inference POST, else handed to the app.

    The inference path builds no ``HTTPServerRequest`` (tornado deep-copies its query arguments,
    about 5 us even when there are none) and no ``RequestHandler``.
    """

    def __init__(self, router: RestRouter, server_conn: object, connection: tornado.httputil.HTTPConnection) -> None:
        self.router = router
        self.endpoint = router.endpoint
        self.server_conn = server_conn
        self.connection = connection
        self.app_delegate: tornado.httputil.HTTPMessageDelegate | None = None
        self.path = ""
        self.headers: tornado.httputil.HTTPHeaders | None = None
        self.started = 0.0
        self._chunks: list[bytes] = []
        self._received = 0
        self._task: asyncio.Task[None] | None = None
        self._deadline: Deadline | None = None
        self._timed_out = False
        self.answered = False

    # -- tornado's HTTPMessageDelegate ---------------------------------------

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        path = start_line.path.partition("?")[0]
        endpoint = self.endpoint
        if not (
            start_line.method == "POST"
            and path.startswith(inference.MODEL_PREFIX)
            and bearer_token_matches(endpoint.options.auth_token, headers.get("Authorization"))
        ):
            request = tornado.httputil.HTTPServerRequest(
                connection=self.connection, server_connection=self.server_conn, start_line=start_line, headers=headers
            )
            self.app_delegate = self.router.app.find_handler(request)
            return self.app_delegate.headers_received(start_line, headers)
        self.started = time.perf_counter()
        self.path = path
        self.headers = headers
        limit = endpoint.options.max_body_bytes
        declared = headers.get("Content-Length")
        size = int(declared) if declared is not None and declared.isdigit() else None
        if size is not None and size > limit * DRAIN_FACTOR:
            # Answered before the body is read; tornado then closes the connection unread.
            self._respond(413, _too_large(size, limit))
        elif size is None or size > limit:
            # Read the rest, dropping it past the limit, so the client gets to read the 413.
            self.connection.set_max_body_size(limit * DRAIN_FACTOR)  # type: ignore[attr-defined]
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.app_delegate is not None:
            return self.app_delegate.data_received(chunk)
        self._received += len(chunk)
        if self._received <= self.endpoint.options.max_body_bytes:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()  # over the limit: keep nothing, answer 413 once the body is in
        return None

    def finish(self) -> None:
        if self.app_delegate is not None:
            self.app_delegate.finish()
            return
        if self.answered:
            return
        endpoint = self.endpoint
        if self._received > endpoint.options.max_body_bytes:
            self._respond(413, _too_large(self._received, endpoint.options.max_body_bytes))
            return
        try:
            call = endpoint.call_for(self.path)
        except TfServeError as exc:
            self._respond(HTTP_STATUS.get(exc.code, 500), codec.encode_error(exc.message))
            return
        if call is None:
            self._respond(400, codec.encode_error(f"Malformed request: POST {self.path}"))
            return
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        endpoint.in_flight.enter()
        self._task = asyncio.get_running_loop().create_task(self._answer(call, body))
        if endpoint.deadlines is not None:
            self._deadline = endpoint.deadlines.add(self._expire)

    def on_connection_close(self) -> None:
        if self.app_delegate is not None:
            self.app_delegate.on_connection_close()
        elif self._task is not None and not self._task.done():
            self._task.cancel()  # the client went away: stop its work (a queued request leaves its batch)

    # -- the answer ----------------------------------------------------------

    async def _answer(self, call: inference.InferenceCall, body: bytes) -> None:
        endpoint = self.endpoint
        assert self.headers is not None
        context = RequestContext("rest", self.started, self.headers)
        try:
            payload = await inference.answer(endpoint.engine, call, body, self.headers, context)
            status = 200
        except TfServeError as exc:
            status, payload = HTTP_STATUS.get(exc.code, 500), codec.encode_error(exc.message)
        except asyncio.CancelledError:
            if not self._timed_out:
                raise  # the client went away: nobody to answer
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            endpoint.engine.count_expired(call.spec, call.verb, context)
            status, payload = HTTP_STATUS[ErrorCode.DEADLINE_EXCEEDED], codec.encode_error(_TIMED_OUT)
        except Exception:
            log.exception("Uncaught error in POST %s", self.path)
            status, payload = 500, codec.encode_error("Internal error")
        finally:
            endpoint.in_flight.leave()
            if self._deadline is not None and endpoint.deadlines is not None:
                endpoint.deadlines.finish(self._deadline)
        self._respond(status, payload)

    def _expire(self) -> None:
        task = self._task
        if task is not None and not task.done():
            self._timed_out = True
            task.cancel()

    def _respond(self, status: int, payload: bytes) -> None:
        if self.answered:
            return
        self.answered = True
        endpoint = self.endpoint
        headers = tornado.httputil.HTTPHeaders()
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(payload))
        headers["Date"] = endpoint.date()
        for name, value in endpoint.cors:
            headers[name] = value
        reason = http.client.responses.get(status, "Unknown")
        start_line = tornado.httputil.ResponseStartLine("HTTP/1.1", status, reason)
        self.connection.write_headers(start_line, headers, payload)
        self.connection.finish()
        if status >= 500:
            access_log.warning("%d POST %s %.2fms", status, self.path, 1000.0 * (time.perf_counter() - self.started))


def _too_large(size: int, limit: int) -> bytes:
    return codec.encode_error(
        f"Request body of {size} bytes is larger than the limit of {limit} bytes (--rest_api_max_body_bytes)."
    )
