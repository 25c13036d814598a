"""ServingSession: the composition root that builds and runs everything.

Engine, REST and gRPC servers, metrics and config-file reloads are wired here
and nowhere else. Servers run on the engine's own loop thread; ``start``
returns a typed result instead of printing.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import tornado.httpserver

from tfserve_lab.config import (
    BatchingConfig,
    ModelConfig,
    ServerOptions,
    read_model_server_config,
)
from tfserve_lab.core.engine import Engine
from tfserve_lab.core.heap import HeapFreezer
from tfserve_lab.core.loop import EngineLoop
from tfserve_lab.core.repository import version_path
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.errors import ConfigError, ErrorCode, TfServeError
from tfserve_lab.metrics.engine_metrics import EngineMetrics
from tfserve_lab.metrics.monitoring import MonitoringSettings
from tfserve_lab.metrics.stats import LiveStats
from tfserve_lab.protocol.rest.app import InFlight, RestOptions, RestRouter, WorkbenchHooks, make_router
from tfserve_lab.protocol.rest.http_server import RestHttpServer
from tfserve_lab.results import AlreadyRunning, LoadFailed, PortInUse, ServerInfo, Started, StartResult
from tfserve_lab.server.options import (
    REST_SHARES_GRPC_PORT,
    check_base_paths,
    default_loader,
    grpc_options,
    resolve_options,
)

if TYPE_CHECKING:
    from tfserve_lab.protocol.grpc.server import GrpcOptions, GrpcServer

__all__ = ["ServingSession"]

log = logging.getLogger("tfserve_lab")

T = TypeVar("T")


def _model_path(engine: Engine) -> Callable[[str, int], str]:
    """The version folder of a model version, for TF Serving's model_path metric labels."""

    def resolve(name: str, version: int) -> str:
        for model in engine.models():
            if model.name == name:
                return version_path(model.base_path, version)
        return f"{name}/{version}"

    return resolve


def _bind(host: str, port: int) -> socket.socket:
    """Bind (without listening yet) so a busy port is found before models load,
    while clients are not accepted until the REST server serves."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class ServingSession:
    """One engine with its REST and gRPC servers, on its own loop thread."""

    def __init__(
        self,
        options: ServerOptions,
        *,
        loader: Callable[[str], Servable] | None = None,
        discovery: bool = False,
        freeze_heap: bool = False,
    ) -> None:
        """``freeze_heap``: keep the collector's full passes off the requests (a server process only, see
        ``core.heap``); ``discovery``: write the file the Jupyter server extension lists."""
        self.options = options
        self._freeze_heap = freeze_heap
        self._heap: HeapFreezer | None = None
        self._discovery = discovery
        self._info_file: Path | None = None
        self._loader = loader
        self.engine: Engine | None = None
        self.info: ServerInfo | None = None
        self._loop: EngineLoop | None = None
        self._http: tornado.httpserver.HTTPServer | None = None
        self._rest_router: RestRouter | None = None
        self._in_flight = InFlight()
        self._grpc: GrpcServer | None = None
        self._config_poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.metrics: EngineMetrics | None = None
        self.stats: LiveStats | None = None
        self.monitoring = MonitoringSettings()
        self.batching: BatchingConfig | None = None

    @property
    def running(self) -> bool:
        """Whether the session serves."""
        return self.info is not None

    def start(self) -> StartResult:
        """Load the models, bind the ports and serve; returns what happened."""
        with self._lock:
            if self.info is not None:
                return AlreadyRunning(self.info)
            try:
                resolved = resolve_options(self.options)
                loader = self._loader or default_loader(resolved.options)
            except ConfigError as exc:
                return LoadFailed("", exc.message)
            options = self.options = resolved.options
            self.monitoring, self.batching = resolved.monitoring, resolved.batching
            models = resolved.models
            rest_sockets: list[socket.socket] = []
            if resolved.rest_shares_grpc_port:
                log.error(REST_SHARES_GRPC_PORT)
            if resolved.rest_enabled:
                try:
                    rest_sockets = [_bind(options.host, options.rest_api_port)]
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        return PortInUse(options.rest_api_port, "rest")
                    raise
            engine = Engine(loader, resolved.engine)
            self.metrics = EngineMetrics(
                thread_pool_name=self.batching.thread_pool_name if self.batching else "batch_threads",
                model_path=_model_path(engine),
            )
            self.stats = LiveStats()
            engine.add_observer(self.metrics.observe)
            engine.add_observer(self.stats.observe)
            if self._freeze_heap:
                self._heap = HeapFreezer()
                engine.add_observer(self._heap.observe)
            try:
                engine.load(models)
            except TfServeError as exc:
                for sock in rest_sockets:
                    sock.close()
                engine.stop()
                if self._heap is not None:
                    self._heap.close()
                    self._heap = None
                return LoadFailed("", exc.message)
            self._stopping.clear()
            self.engine = engine
            self._loop = EngineLoop()
            try:
                grpc_port = self._loop.run_sync(self._start_grpc(grpc_options(resolved)))
            except ConfigError as exc:
                for sock in rest_sockets:
                    sock.close()
                self._shutdown()
                return LoadFailed("", exc.message)
            except (OSError, RuntimeError):
                for sock in rest_sockets:
                    sock.close()
                self._shutdown()
                return PortInUse(options.port, "grpc")
            if options.grpc_socket_path:
                log.info("Running gRPC ModelServer at UNIX socket %s ...", options.grpc_socket_path)
            if grpc_port:
                log.info("Running gRPC ModelServer at %s:%d ...", options.host, grpc_port)
            rest_port = 0
            if rest_sockets:
                rest_port = rest_sockets[0].getsockname()[1]
                self._loop.run_sync(self._start_rest(rest_sockets, resolved.rest, resolved.ssl_context))
                log.info("Exporting HTTP/REST API at:%s:%d ...", options.host, rest_port)
            if self._heap is not None:
                self._heap.freeze()
            engine.start_polling()
            self._start_config_poller()
            metrics_path = self.monitoring.path if self.monitoring.enable and rest_port else ""
            self.info = ServerInfo(options.host, rest_port, grpc_port, options.grpc_socket_path, metrics_path)
            if self._discovery and rest_port:
                self._register(self.info)
            return Started(self.info)

    async def _start_rest(
        self, sockets: list[socket.socket], rest: RestOptions, ssl_context: ssl.SSLContext | None
    ) -> None:
        assert self.engine is not None
        assert self.metrics is not None
        assert self.stats is not None
        hooks = WorkbenchHooks(
            metrics=self.metrics.render if self.monitoring.enable else None,
            metrics_path=self.monitoring.path,
            stats=self.stats.snapshot,
            unload=self.undeploy,
            splits=self.engine.router.split,
        )
        self._in_flight = InFlight()
        self._rest_router = make_router(self.engine, rest, hooks, self._in_flight)
        # Inference bodies stream into their delegate, which answers 413 past the limit; tornado's cap stops the rest.
        self._http = RestHttpServer(self._rest_router, max_body_size=rest.max_body_bytes, ssl_options=ssl_context)
        for sock in sockets:
            sock.listen(128)
        self._http.add_sockets(sockets)

    async def _start_grpc(self, options: GrpcOptions) -> int:
        assert self.engine is not None
        from tfserve_lab.protocol.grpc.server import GrpcServer

        server = GrpcServer(self.engine, options, self.reload)
        port = server.bind()
        await server.start()
        self._grpc = server
        return port

    def _start_config_poller(self) -> None:
        interval = self.options.model_config_file_poll_wait_seconds
        if not self.options.model_config_file or interval <= 0:
            return
        self._config_poller = threading.Thread(
            target=self._poll_config, args=(interval,), name="tfserve-config-poller", daemon=True
        )
        self._config_poller.start()

    def _poll_config(self, interval: float) -> None:
        path = self.options.model_config_file
        last_text = _read_text(path)
        while not self._stopping.wait(interval):
            text = _read_text(path)
            if text is None or text == last_text:
                continue
            last_text = text
            try:
                self.reload(read_model_server_config(path))
            except TfServeError as exc:
                log.error("Keeping the last good model config: %s", exc.message)
            except Exception:  # the poller must outlive any bad config, or later fixes are missed
                log.exception("Keeping the last good model config: applying %s failed", path)

    def reload(self, models: Sequence[ModelConfig]) -> None:
        """Apply a new model config while serving (blocks until its versions load)."""
        if self.engine is None:
            raise TfServeError("The engine is not running.")
        check_base_paths(models)
        self.engine.load(list(models))

    # -- what the notebook API drives ------------------------------------------

    def _engine(self) -> Engine:
        if self.engine is None or self._loop is None:
            raise TfServeError("The engine is not running: start it first.", code=ErrorCode.FAILED_PRECONDITION)
        return self.engine

    def deploy(self, model: ModelConfig) -> None:
        """Serve a model repository (replacing a model of the same name) and keep watching it."""
        engine = self._engine()
        others = [m for m in engine.models() if m.name != model.name]
        self.reload([*others, model])

    def undeploy(self, name: str, version: int | None = None) -> None:
        """Stop serving a model, or one version of it (the others keep serving)."""
        self._engine().undeploy(name, version)

    def set_labels(self, name: str, labels: Mapping[str, int]) -> None:
        """Point version labels of a model at versions (each must be AVAILABLE)."""
        self._engine().set_labels(name, labels)

    def call(self, coro_factory: Callable[[Engine], Coroutine[Any, Any, T]], timeout: float | None = 60.0) -> T:
        """Run an engine coroutine on the engine loop from another thread and wait for it."""
        engine = self._engine()
        assert self._loop is not None
        return self._loop.run_sync(coro_factory(engine), timeout)

    def stop(self) -> None:
        """Stop taking requests, finish those in flight, unload the models, stop the threads."""
        with self._lock:
            if self.info is None:
                return
            self._stopping.set()
            if self._config_poller is not None:
                self._config_poller.join()
                self._config_poller = None
            self._shutdown()
            self.info = None

    def _register(self, info: ServerInfo) -> None:
        """Write the discovery file the Jupyter server extension lists (notebook engines only)."""
        from tfserve_lab._version import __version__
        from tfserve_lab.protocol.discovery import EngineRecord, kernel_id_from_connection_file, write_info_file

        record = EngineRecord(
            engine_id=uuid.uuid4().hex[:12],
            pid=os.getpid(),
            kernel_id=kernel_id_from_connection_file(),
            host=info.host,
            rest_port=info.rest_port,
            grpc_port=info.grpc_port,
            metrics_path=info.metrics_path,
            started_at=time.time(),
            version=__version__,
            auth_token=self.options.auth_token,
        )
        try:
            self._info_file = write_info_file(record)
        except OSError as exc:  # discovery is a convenience; serving goes on without it
            log.warning("Could not write the engine's discovery file: %s", exc)

    def _shutdown(self) -> None:
        if self._info_file is not None:
            from tfserve_lab.protocol.discovery import remove_info_file

            remove_info_file(self._info_file)
            self._info_file = None
        if self._loop is not None:
            self._loop.run_sync(self._drain(self.options.shutdown_grace_seconds))
            self._loop.close()
            self._loop = None
        if self.engine is not None:
            self.engine.stop()
        self.engine = None
        if self._heap is not None:
            self._heap.close()
            self._heap = None

    async def _drain(self, grace: float) -> None:
        """Stop accepting (both ports refuse new connections and calls at once), let requests in flight
        finish for up to ``grace`` seconds, then close every connection."""
        http, grpc_server = self._http, self._grpc
        self._http = self._grpc = None
        if http is not None:
            http.stop()
        waits: list[Coroutine[Any, Any, Any]] = [self._in_flight.wait_idle(grace)]
        if grpc_server is not None:
            waits.append(grpc_server.stop(grace))
        results = await asyncio.gather(*waits, return_exceptions=True)
        if results[0] is False:
            log.warning(
                "Closing the REST port with %d requests still in flight after %.1fs", self._in_flight.count, grace
            )
        for result in results[1:]:
            if isinstance(result, BaseException):
                log.error("Stopping the gRPC server failed: %s", result)
        if http is not None:
            await http.close_all_connections()
        if self._rest_router is not None:
            self._rest_router.endpoint.close()
            self._rest_router = None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None
