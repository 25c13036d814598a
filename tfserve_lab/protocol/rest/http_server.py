"""Tornado's ``HTTPServer`` without two per-request costs that buy nothing for an inference server.

- Tornado enforces ``idle_connection_timeout`` by wrapping the wait for every
  request's headers in ``gen.with_timeout``: a timer armed and cancelled per
  request, about 15 us of the loop thread each time (measured here), for a limit
  of an hour. One sweep a minute over the open connections enforces the same
  limit: a connection whose last request (or whose opening) is older than the
  timeout is closed, as tornado would close it.
- Tornado turns Nagle's algorithm off at the end of every response and on again
  before the next request: two ``setsockopt`` calls per request (about 6% of a
  small model's request). Here TCP_NODELAY is set once when the connection is
  accepted and stays on, as HTTP servers commonly keep it; each response goes out
  in one write anyway.
"""

from __future__ import annotations

import socket
import time
import weakref
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.iostream

__all__ = ["IDLE_CONNECTION_TIMEOUT_S", "RestHttpServer"]

IDLE_CONNECTION_TIMEOUT_S = 3600.0  # tornado's default


class _NoDelayStream(tornado.iostream.IOStream):
    """A plain TCP stream whose TCP_NODELAY was set at accept and stays set."""

    def set_nodelay(self, value: bool) -> None:
        """Tornado's per-response toggles are skipped: Nagle stays off for the connection's life."""


class RestHttpServer(tornado.httpserver.HTTPServer):
    """An ``HTTPServer`` that closes connections idle for ``idle_connection_timeout`` seconds, checked every
    ``idle_sweep_seconds``."""

    def initialize(  # type: ignore[override]
        self,
        request_callback: Any,
        *,
        idle_connection_timeout: float = IDLE_CONNECTION_TIMEOUT_S,
        idle_sweep_seconds: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().initialize(request_callback, idle_connection_timeout=idle_connection_timeout, **kwargs)
        self.conn_params.header_timeout = None  # the sweep below replaces the per-request timer
        self._idle_timeout = idle_connection_timeout
        # Weak keys: a closed connection's stream leaves with its last reference, not at the next sweep.
        self._last_active: weakref.WeakKeyDictionary[tornado.iostream.IOStream, float] = weakref.WeakKeyDictionary()
        self._sweep = tornado.ioloop.PeriodicCallback(self._close_idle, idle_sweep_seconds * 1000)

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        if type(stream) is tornado.iostream.IOStream and stream.socket.family in (socket.AF_INET, socket.AF_INET6):
            stream.set_nodelay(True)
            stream.__class__ = _NoDelayStream  # same layout; only set_nodelay differs (TLS streams keep tornado's)
        self._last_active[stream] = time.monotonic()
        if not self._sweep.is_running():
            self._sweep.start()  # here, on the loop serving the connections
        super().handle_stream(stream, address)

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        stream = getattr(server_conn, "stream", None)
        if stream is not None:
            self._last_active[stream] = time.monotonic()
        return super().start_request(server_conn, request_conn)

    def _close_idle(self) -> None:
        cutoff = time.monotonic() - self._idle_timeout
        for stream, active in list(self._last_active.items()):
            if stream.closed():
                del self._last_active[stream]
            elif active < cutoff:
                del self._last_active[stream]
                stream.close()

    def stop(self) -> None:
        self._sweep.stop()
        super().stop()

    async def close_all_connections(self) -> None:
        self._sweep.stop()
        self._last_active.clear()
        await super().close_all_connections()
