"""The grpc.aio server: TF Serving's services plus health checking and reflection.

Created and started on the engine loop (grpc.aio binds to the running loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.engine import Engine
from tfserve_lab.core.events import EngineEvent, VersionChanged
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ConfigError, TfServeError
from tfserve_lab.protocol.auth import AuthInterceptor
from tfserve_lab.protocol.grpc.guard import ErrorGuard
from tfserve_lab.protocol.grpc.profiler import PROFILER_SERVICE, ProfilerForwarder
from tfserve_lab.protocol.grpc.servicers import ModelServicer, PredictionServicer
from tfserve_lab.tls import TlsConfig

__all__ = ["GrpcOptions", "GrpcServer", "parse_channel_arguments"]

_INT32_MAX = 2**31 - 1
_SERVICE_NAMES = (
    "tensorflow.serving.PredictionService",
    "tensorflow.serving.ModelService",
)


@dataclass(frozen=True)
class GrpcOptions:
    """gRPC flags: address, Unix socket, channel arguments, concurrency."""

    host: str = "0.0.0.0"
    # None: no TCP listener (TF Serving's --port=0), only the Unix socket.
    port: int | None = 8500
    socket_path: str = ""
    channel_arguments: tuple[tuple[str, str | int], ...] = ()
    max_concurrent_rpcs: int | None = None
    # tfserve-lab's exposure settings: TLS (--ssl_config_file), bearer token, largest request message.
    tls: TlsConfig | None = None
    auth_token: str = ""
    max_receive_message_bytes: int = _INT32_MAX
    enable_profiler: bool = False
    # --use_alts_credentials: Google's ALTS on every listener instead of plaintext or TLS.
    alts: bool = False
    # --enable_serialization_as_tensor_content: Predict outputs packed in tensor_content, not typed fields.
    tensor_content_responses: bool = False
    # --enable_grpc_healthcheck_service: also report TF Serving's own service names as SERVING.
    tf_serving_health_names: bool = False


def _receive_limit(arguments: dict[str, str | int]) -> int:
    """The receive limit in force (a user channel argument may have set it), as a byte count."""
    value = arguments.get("grpc.max_receive_message_length", _INT32_MAX)
    return int(value) if isinstance(value, int) and value > 0 else _INT32_MAX


def parse_channel_arguments(text: str) -> tuple[tuple[str, str | int], ...]:
    """``--grpc_channel_arguments``: ``key=value,...``; integer values become ints."""
    arguments: list[tuple[str, str | int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Invalid --grpc_channel_arguments entry {item!r}: expected key=value")
        try:
            arguments.append((key, int(value)))
        except ValueError:
            arguments.append((key, value))
    return tuple(arguments)


class GrpcServer:
    """PredictionService + ModelService (+ health, reflection) on one grpc.aio server."""

    def __init__(self, engine: Engine, options: GrpcOptions, reload: Callable[[Sequence[ModelConfig]], None]) -> None:
        self.engine = engine
        self.options = options
        # TF Serving lifts gRPC's message size limits (SetMaxMessageSize(INT_MAX)); the receive limit is
        # --grpc_max_receive_message_bytes (gRPC answers RESOURCE_EXHAUSTED past it); user arguments win.
        defaults: dict[str, str | int] = {
            "grpc.max_receive_message_length": min(options.max_receive_message_bytes, _INT32_MAX) or _INT32_MAX,
            "grpc.max_send_message_length": _INT32_MAX,
            "grpc.so_reuseport": 0,
        }
        defaults.update(dict(options.channel_arguments))
        interceptors: list[grpc.aio.ServerInterceptor] = (
            [AuthInterceptor(options.auth_token)] if options.auth_token else []
        )
        interceptors.append(ErrorGuard())
        self.server = grpc.aio.server(
            options=list(defaults.items()),
            maximum_concurrent_rpcs=options.max_concurrent_rpcs,
            interceptors=interceptors,
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(
                engine,
                max_tensor_bytes=_receive_limit(defaults),
                tensor_content=options.tensor_content_responses,
            ),
            self.server,
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(engine, reload), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [*_SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        self.profiler: ProfilerForwarder | None = None
        if options.enable_profiler:
            # TF Serving answers TensorFlow's profiler on its gRPC port (--enable_profiler, default true).
            self.profiler = ProfilerForwarder()
            self.server.add_generic_rpc_handlers((self.profiler,))
            names.append(PROFILER_SERVICE)
        reflection.enable_server_reflection(names, self.server)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    def bind(self) -> int:
        """Bind the TCP port (and the Unix socket); returns the TCP port bound, 0 when there is none."""
        if self.options.port is not None:
            address = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
            self.port = self._add_port(f"{address}:{self.options.port}")
            if self.port == 0:
                raise OSError(f"Could not bind gRPC port {self.options.port}")
        if self.options.socket_path:
            self._add_port(f"unix:{self.options.socket_path}")
        return self.port

    def _add_port(self, address: str) -> int:
        # As TF Serving's BuildServerCredentials: the same credentials on every listener.
        if self.options.alts:
            try:
                return int(self.server.add_secure_port(address, grpc.alts_server_credentials()))
            except RuntimeError:
                # gRPC core makes no ALTS credentials off Google Cloud; TF Serving fails to start there too.
                raise ConfigError(
                    f"Cannot listen on {address} with ALTS credentials (--use_alts_credentials): gRPC offers ALTS "
                    "only on Google Cloud."
                ) from None
        tls = self.options.tls
        if tls is None:
            return int(self.server.add_insecure_port(address))
        credentials = grpc.ssl_server_credentials(
            [(tls.server_key.encode(), tls.server_cert.encode())],
            root_certificates=tls.custom_ca.encode() or None,
            require_client_auth=tls.client_verify,
        )
        return int(self.server.add_secure_port(address, credentials))

    async def start(self) -> None:
        """Start serving and mark every AVAILABLE model SERVING."""
        self._loop = asyncio.get_running_loop()
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        if self.options.tf_serving_health_names:
            # The names TF Serving marks SERVING when the flag turns its health service on.
            for name in ("ModelService", "PredictionService"):
                await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        for model in self.engine.models():
            await self.health.set(model.name, self._health_of(model.name))
        self.engine.add_observer(self._observe)

    def _observe(self, event: EngineEvent) -> None:
        # Engine events arrive on the watcher thread; health lives on the loop.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if isinstance(event, VersionChanged) and event.state in (VersionState.AVAILABLE, VersionState.END):
            loop.call_soon_threadsafe(self._refresh_health, event.model)

    def _health_of(self, model: str) -> int:
        try:
            serving = any(s.state is VersionState.AVAILABLE for s in self.engine.status(model))
        except TfServeError:
            serving = False
        return int(health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING)

    def _refresh_health(self, model: str) -> None:
        task = asyncio.ensure_future(self.health.set(model, self._health_of(model)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting calls and finish those in flight (up to ``grace`` seconds)."""
        self.engine.remove_observer(self._observe)
        self._loop = None
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.profiler is not None:
            await self.profiler.close()
