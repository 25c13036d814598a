"""HTTP handlers of the Jupyter server extension: list registered engines, proxy to their REST port.

The proxy is the reason this extension exists: on JupyterHub and Binder the browser reaches only the
Jupyter server, so the panel talks to engines through Jupyter's origin and authentication. It forwards
only to engines registered in the runtime directory, only on 127.0.0.1, and only to the engine's own API
paths; anything else is refused before a socket is opened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.parse
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient
from tornado.util import TimeoutError as TornadoTimeoutError
from traitlets import Float, Unicode
from traitlets.config import Configurable

from tfserve_lab.protocol.discovery import EngineRecord, default_runtime_dir, list_engines

__all__ = ["EnginesHandler", "ProxyHandler", "TfServeLabConfig", "proxy_path", "setup_route_handlers"]

SETTINGS_KEY = "tfserve_lab"
LOOPBACK = "127.0.0.1"
# The engine answers these prefixes; the metrics path is added per engine.
ALLOWED_PREFIXES = ("v1/", "tfserve-lab/")
# Engines live in kernels the user owns: reading them is like reading kernels, changing them like executing.
AUTH_RESOURCE = "kernels"
FORWARDED_HEADERS = ("Content-Type", "Accept")


class TfServeLabConfig(Configurable):
    """Server-extension options, settable as ``c.TfServeLabConfig.*`` in ``jupyter_server_config.py``."""

    runtime_dir = Unicode(
        "",
        help="Directory holding engine info files; empty means Jupyter's runtime directory.",
    ).tag(config=True)
    proxy_timeout = Float(30.0, help="Seconds before a proxied request to an engine gives up.").tag(config=True)
    probe_timeout = Float(0.5, help="Seconds to wait when checking that an engine's REST port accepts.").tag(
        config=True
    )


def proxy_path(record: EngineRecord, path: str) -> str | None:
    """The URL-quoted path to forward for ``path``, or None when the engine must not be asked for it.

    Allowed: ``v1/...``, ``tfserve-lab/...`` and the engine's metrics path; never ``.``/``..`` segments.
    """
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments[:-1]) or segments[-1] in (".", ".."):
        return None
    metrics = record.metrics_path.lstrip("/")
    if not (path.startswith(ALLOWED_PREFIXES) or (metrics and path == metrics)):
        return None
    return urllib.parse.quote(path, safe="/:@-._~!$&'()*+,;=")


class _Base(APIHandler):
    """Shared lookups; subclasses add verbs."""

    auth_resource = AUTH_RESOURCE

    def update_api_activity(self) -> None:
        """Count only POSTs as activity: the panel's polling GETs must not keep an idle server from culling."""
        if self.request.method == "POST":
            super().update_api_activity()

    @property
    def extension_config(self) -> TfServeLabConfig:
        return self.settings[SETTINGS_KEY]

    def engines(self) -> list[EngineRecord]:
        runtime_dir = self.extension_config.runtime_dir
        return list_engines(runtime_dir or default_runtime_dir())  # type: ignore[arg-type]

    def engine(self, engine_id: str) -> EngineRecord:
        for record in self.engines():
            if record.engine_id == engine_id:
                return record
        raise tornado.web.HTTPError(404, f"No tfserve-lab engine with id {engine_id!r} is registered.")


class EnginesHandler(_Base):
    """``GET /tfserve-lab/engines``: the registered engines, each with ``alive`` (its REST port accepts)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        records = self.engines()
        alive = await asyncio.gather(*(self._accepts(r.rest_port) for r in records))
        body = [
            {**{k: v for k, v in dataclasses.asdict(r).items() if k != "auth_token"}, "alive": ok}
            for r, ok in zip(records, alive, strict=True)
        ]
        self.finish(json.dumps({"engines": body}))

    async def _accepts(self, port: int) -> bool:
        if not 0 < port < 65536:
            return False
        try:
            stream = await TCPClient().connect(LOOPBACK, port, timeout=self.extension_config.probe_timeout)
        except (OSError, StreamClosedError, TornadoTimeoutError):
            return False
        stream.close()
        return True


class ProxyHandler(_Base):
    """``GET|POST /tfserve-lab/engines/<id>/proxy/<path>``: forward to that engine's REST port."""

    @tornado.web.authenticated
    @authorized(action="read")
    async def get(self, engine_id: str, path: str) -> None:
        await self._forward(engine_id, path)

    @tornado.web.authenticated
    @authorized(action="execute")
    async def post(self, engine_id: str, path: str) -> None:
        await self._forward(engine_id, path)

    async def _forward(self, engine_id: str, path: str) -> None:
        record = self.engine(engine_id)
        quoted = proxy_path(record, path)
        if quoted is None:
            raise tornado.web.HTTPError(403, f"The tfserve-lab proxy does not forward {path!r}.")
        if not 0 < record.rest_port < 65536:
            raise tornado.web.HTTPError(409, f"The engine {engine_id!r} serves no REST port.")
        url = f"http://{LOOPBACK}:{record.rest_port}/{quoted}"
        if self.request.query:
            url += "?" + self.request.query
        headers = {name: self.request.headers[name] for name in FORWARDED_HEADERS if name in self.request.headers}
        if record.auth_token:
            # The browser authenticated to Jupyter; the engine wants its own bearer token.
            headers["Authorization"] = f"Bearer {record.auth_token}"
        request = HTTPRequest(
            url,
            method=self.request.method or "GET",
            headers=headers,
            body=self.request.body if self.request.method == "POST" else None,
            request_timeout=self.extension_config.proxy_timeout,
            connect_timeout=min(5.0, self.extension_config.proxy_timeout),
            follow_redirects=False,
            decompress_response=True,
        )
        response = await self._fetch(request, engine_id)
        self.set_status(response.code, response.reason)
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        self.finish(response.body or b"", set_content_type=content_type)

    async def _fetch(self, request: HTTPRequest, engine_id: str) -> HTTPResponse:
        try:
            return await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as error:  # raise_error=False still raises for timeouts (code 599)
            raise tornado.web.HTTPError(504, f"The engine {engine_id!r} did not answer in time.") from error
        except (OSError, StreamClosedError) as error:
            raise tornado.web.HTTPError(502, f"The engine {engine_id!r} refused the connection.") from error


def setup_route_handlers(web_app: Any, config: TfServeLabConfig) -> None:
    """Register the extension's routes under ``<base_url>/tfserve-lab/`` (once, however often it is enabled)."""
    if SETTINGS_KEY in web_app.settings:
        return
    web_app.settings[SETTINGS_KEY] = config
    base = url_path_join(web_app.settings["base_url"], "tfserve-lab")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "engines"), EnginesHandler),
            (url_path_join(base, "engines", r"([^/]+)", "proxy", r"(.+)"), ProxyHandler),
        ],
    )
