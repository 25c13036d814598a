"""ServingSession: the composition root that builds and runs everything.

Engine, REST and gRPC servers, metrics and config-file reloads are wired here
and nowhere else. Servers run on the engine's own loop thread; ``start``
returns a typed result instead of printing.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import tornado.httpserver
import tornado.netutil

from tfserve_lab.config import ModelConfig, ServerOptions, read_model_server_config
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.loop import EngineLoop
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.errors import ConfigError, TfServeError
from tfserve_lab.protocol.rest.app import RestOptions, make_app
from tfserve_lab.results import AlreadyRunning, LoadFailed, PortInUse, ServerInfo, Started, StartResult

if TYPE_CHECKING:
    from tfserve_lab.protocol.grpc.server import GrpcServer

__all__ = ["ServingSession", "models_from_options"]

log = logging.getLogger("tfserve_lab")


def models_from_options(options: ServerOptions) -> tuple[ModelConfig, ...]:
    """The models to serve: explicit configs, the config file, or the one-model shorthand."""
    if options.models:
        return options.models
    if options.model_config_file:
        return read_model_server_config(options.model_config_file)
    if options.model_base_path:
        return (ModelConfig(options.model_name, options.model_base_path),)
    return ()


def default_loader(options: ServerOptions) -> Callable[[str], Servable]:
    """The TensorFlow loader configured by the flags (TensorFlow is imported on first load)."""
    from tfserve_lab.core.servables.tensorflow import LoadOptions, SessionOptions, configure_tensorflow, load_version

    session = SessionOptions(
        intra_op_parallelism=options.tensorflow_intra_op_parallelism,
        inter_op_parallelism=options.tensorflow_inter_op_parallelism,
        per_process_gpu_memory_fraction=options.per_process_gpu_memory_fraction,
    )
    configure_tensorflow(session)
    load_options = LoadOptions(
        tags=options.tags,
        prefer_tflite=options.prefer_tflite_model,
        session=session,
        warmup=options.enable_model_warmup,
        num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
    )
    return lambda path: load_version(path, load_options)


def _check_base_paths(models: tuple[ModelConfig, ...]) -> None:
    for model in models:
        if not os.path.isdir(model.base_path):
            raise ConfigError(f"Could not find base path {model.base_path} for servable {model.name}")


class ServingSession:
    """One engine with its REST and gRPC servers, on its own loop thread."""

    def __init__(self, options: ServerOptions, *, loader: Callable[[str], Servable] | None = None) -> None:
        self.options = options
        self._loader = loader
        self.engine: Engine | None = None
        self.info: ServerInfo | None = None
        self._loop: EngineLoop | None = None
        self._http: tornado.httpserver.HTTPServer | None = None
        self._grpc: GrpcServer | None = None
        self._config_poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the session serves."""
        return self.info is not None

    def start(self) -> StartResult:
        """Load the models, bind the ports and serve; returns what happened."""
        with self._lock:
            if self.info is not None:
                return AlreadyRunning(self.info)
            options = self.options
            try:
                models = models_from_options(options)
                _check_base_paths(models)
            except ConfigError as exc:
                return LoadFailed("", exc.message)
            rest_sockets: list[socket.socket] = []
            if options.rest_enabled:
                try:
                    rest_sockets = tornado.netutil.bind_sockets(options.rest_api_port, address=options.host)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        return PortInUse(options.rest_api_port, "rest")
                    raise
            loader = self._loader or default_loader(options)
            engine = Engine(loader, self._engine_options())
            try:
                engine.load(models)
            except TfServeError as exc:
                for sock in rest_sockets:
                    sock.close()
                engine.stop()
                return LoadFailed("", exc.message)
            self._stopping.clear()
            self.engine = engine
            self._loop = EngineLoop()
            try:
                grpc_port = self._loop.run_sync(self._start_grpc())
            except (OSError, RuntimeError):
                for sock in rest_sockets:
                    sock.close()
                self._shutdown()
                return PortInUse(options.port, "grpc")
            where = f"UNIX socket {options.grpc_socket_path} and " if options.grpc_socket_path else ""
            log.info("Running gRPC ModelServer at %s%s:%d ...", where, options.host, grpc_port)
            rest_port = 0
            if rest_sockets:
                rest_port = rest_sockets[0].getsockname()[1]
                self._loop.run_sync(self._start_rest(rest_sockets))
                log.info("Exporting HTTP/REST API at:%s:%d ...", options.host, rest_port)
            engine.start_polling()
            self._start_config_poller()
            self.info = ServerInfo(options.host, rest_port, grpc_port, options.grpc_socket_path)
            return Started(self.info)

    def _engine_options(self) -> EngineOptions:
        options = self.options
        return EngineOptions(
            watcher=WatcherOptions(
                poll_wait_seconds=options.file_system_poll_wait_seconds,
                max_num_load_retries=options.max_num_load_retries,
                load_retry_interval_seconds=options.load_retry_interval_micros / 1e6,
            ),
            batching=options.batching if options.enable_batching else None,
            allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
        )

    async def _start_rest(self, sockets: list[socket.socket]) -> None:
        assert self.engine is not None
        rest = RestOptions(
            timeout_ms=self.options.rest_api_timeout_in_ms, enable_cors=self.options.rest_api_enable_cors_support
        )
        app = make_app(self.engine, rest)
        self._http = tornado.httpserver.HTTPServer(app, max_body_size=rest.max_body_bytes)
        self._http.add_sockets(sockets)

    async def _start_grpc(self) -> int:
        assert self.engine is not None
        from tfserve_lab.protocol.grpc.server import GrpcOptions, GrpcServer, parse_channel_arguments

        options = self.options
        grpc_options = GrpcOptions(
            host=options.host,
            port=options.port,
            socket_path=options.grpc_socket_path,
            channel_arguments=parse_channel_arguments(options.grpc_channel_arguments),
            max_concurrent_rpcs=options.grpc_max_threads or None,
        )
        server = GrpcServer(self.engine, grpc_options, self.reload)
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

    def reload(self, models: Sequence[ModelConfig]) -> None:
        """Apply a new model config while serving (blocks until its versions load)."""
        if self.engine is None:
            raise TfServeError("The engine is not running.")
        _check_base_paths(tuple(models))
        self.engine.load(list(models))

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

    def _shutdown(self) -> None:
        if self._loop is not None:
            if self._http is not None:
                self._loop.run_sync(self._stop_rest())
            if self._grpc is not None:
                self._loop.run_sync(self._grpc.stop())
                self._grpc = None
            self._loop.close()
            self._loop = None
        if self.engine is not None:
            self.engine.stop()
        self.engine = None

    async def _stop_rest(self) -> None:
        assert self._http is not None
        self._http.stop()
        await self._http.close_all_connections()
        self._http = None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None
