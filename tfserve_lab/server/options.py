"""What a ServerOptions means: TF Serving's start-up checks, then every setting the session needs, resolved.

``resolve_options`` is the one function from the flags to the session's parts
(models, engine, REST, gRPC, TLS, monitoring); it reads the files the flags
name and raises ``ConfigError`` with TF Serving's message for what TF Serving
refuses, before any port is bound or model loaded.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tfserve_lab.batching_params import read_batching_parameters
from tfserve_lab.config import BatchingConfig, ModelConfig, ServerOptions, read_model_server_config, read_session_config
from tfserve_lab.core.engine_options import EngineOptions
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.errors import ConfigError
from tfserve_lab.metrics.monitoring import MonitoringSettings, read_monitoring_config
from tfserve_lab.protocol.rest.options import RestOptions
from tfserve_lab.request_logging import file_sink
from tfserve_lab.tls import TlsConfig, read_ssl_config, rest_ssl_context

if TYPE_CHECKING:
    from tfserve_lab.protocol.grpc.server import GrpcOptions

__all__ = [
    "REST_SHARES_GRPC_PORT",
    "ResolvedOptions",
    "check_base_paths",
    "check_options",
    "default_loader",
    "grpc_options",
    "models_from_options",
    "resolve_options",
]

REST_SHARES_GRPC_PORT = (
    "server_options.http_port cannot be same as grpc_port. Please use a different port for HTTP/REST API. "
    "Skipped exporting HTTP/REST API."
)


@dataclass(frozen=True)
class ResolvedOptions:
    """Everything a ServingSession builds its parts from."""

    options: ServerOptions  # with --auth_token_file read into auth_token
    models: tuple[ModelConfig, ...]
    engine: EngineOptions
    rest: RestOptions
    rest_enabled: bool
    rest_shares_grpc_port: bool  # REST was asked for on the gRPC port: skipped, as TF Serving skips it
    monitoring: MonitoringSettings
    batching: BatchingConfig | None
    tls: TlsConfig | None
    ssl_context: ssl.SSLContext | None
    channel_arguments: tuple[tuple[str, str | int], ...]


def resolve_options(options: ServerOptions) -> ResolvedOptions:
    """Check ``options`` as TF Serving does at start-up and resolve what they name.

    Raises:
        ConfigError: a flag combination or a named file TF Serving would refuse.
    """
    if options.auth_token_file:
        options = replace(options, auth_token=_read_token(options.auth_token_file))
    check_options(options)
    models = models_from_options(options)
    check_base_paths(models)
    monitoring = _monitoring(options)
    batching = _batching(options)
    tls = read_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
    return ResolvedOptions(
        options=options,
        models=models,
        engine=_engine_options(options, batching),
        rest=RestOptions(
            timeout_ms=options.rest_api_timeout_in_ms,
            enable_cors=options.rest_api_enable_cors_support,
            max_body_bytes=options.rest_api_max_body_bytes,
            auth_token=options.auth_token,
        ),
        rest_enabled=options.rest_enabled and not _rest_shares_grpc_port(options),
        rest_shares_grpc_port=options.rest_enabled and _rest_shares_grpc_port(options),
        monitoring=monitoring,
        batching=batching,
        tls=tls,
        ssl_context=rest_ssl_context(tls) if tls is not None else None,
        channel_arguments=_channel_arguments(options.grpc_channel_arguments),
    )


def grpc_options(resolved: ResolvedOptions) -> GrpcOptions:
    """The gRPC server's options (imports grpc and the TF Serving protos)."""
    from tfserve_lab.protocol.grpc.server import GrpcOptions

    options = resolved.options
    return GrpcOptions(
        host=options.host,
        port=options.port if options.grpc_tcp_enabled else None,
        socket_path=options.grpc_socket_path,
        channel_arguments=resolved.channel_arguments,
        max_concurrent_rpcs=options.grpc_max_threads or None,
        tls=resolved.tls,
        auth_token=options.auth_token,
        max_receive_message_bytes=options.grpc_max_receive_message_bytes,
        enable_profiler=options.enable_profiler,
        alts=options.use_alts_credentials,
        tensor_content_responses=options.enable_serialization_as_tensor_content,
        tf_serving_health_names=options.enable_grpc_healthcheck_service,
    )


def _engine_options(options: ServerOptions, batching: BatchingConfig | None) -> EngineOptions:
    return EngineOptions(
        watcher=WatcherOptions(
            poll_wait_seconds=options.file_system_poll_wait_seconds,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_seconds=max(0.0, options.load_retry_interval_micros / 1e6),
            num_load_threads=options.num_load_threads,
            num_unload_threads=options.num_unload_threads,
        ),
        batching=batching,
        per_model_batching=options.enable_per_model_batching_parameters,
        allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
        signature_method_name_check=options.enable_signature_method_name_check,
        log_sink_factory=file_sink,
    )


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
    from tfserve_lab.core.servables.loader import LoadOptions, load_version
    from tfserve_lab.core.servables.tf_setup import SessionOptions, configure_tensorflow

    intra, inter = _parallelism(options)
    session = SessionOptions(
        intra_op_parallelism=intra,
        inter_op_parallelism=inter,
        per_process_gpu_memory_fraction=options.per_process_gpu_memory_fraction,
        config_proto=read_session_config(options.tensorflow_session_config_file),
    )
    configure_tensorflow(session)
    load_options = LoadOptions(
        tags=options.tags,
        prefer_tflite=options.prefer_tflite_model,
        session=session,
        warmup=options.enable_model_warmup,
        num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
        tflite_interpreters=max(1, options.num_tflite_pools),
    )
    return lambda path: load_version(path, load_options)


def _parallelism(options: ServerOptions) -> tuple[int, int]:
    """Intra- and inter-op threads from the three parallelism flags, by TF Serving's precedence."""
    intra, inter = options.tensorflow_intra_op_parallelism, options.tensorflow_inter_op_parallelism
    both = options.tensorflow_session_parallelism
    if intra > 0 and inter > 0 and both > 0:
        raise ConfigError(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, server_options.tensorflow_inter_op_parallelism) "
            "separately. You cannot configure all."
        )
    if intra > 0 or inter > 0:
        return intra, inter
    return both, both


def check_options(options: ServerOptions) -> None:
    """TF Serving's start-up checks of flag combinations (``Server::BuildAndStart``), and values we refuse."""
    if not options.grpc_tcp_enabled and not options.grpc_socket_path:
        raise ConfigError("At least one of server_options.grpc_port or server_options.grpc_socket_path must be set.")
    if options.use_alts_credentials and options.ssl_config_file:
        raise ConfigError("Either use_alts_credentials must be false or ssl_config_file must be empty.")
    _parallelism(options)
    if options.num_tflite_interpreters_per_pool > 1:
        raise ConfigError(
            "--num_tflite_interpreters_per_pool above 1 is not supported by tfserve-lab: TF Serving then batches and "
            "splits requests across its TF Lite interpreters; use --num_tflite_pools and --enable_batching."
        )


def _rest_shares_grpc_port(options: ServerOptions) -> bool:
    """TF Serving skips REST, with ``REST_SHARES_GRPC_PORT`` in its log, when it would share the gRPC port."""
    return options.rest_api_port != 0 and options.grpc_tcp_enabled and options.rest_api_port == options.port


def _batching(options: ServerOptions) -> BatchingConfig | None:
    if options.batching_parameters_file and not options.enable_batching:
        raise ConfigError(
            "server_options.batching_parameters_file is set without setting server_options.enable_batching to true."
        )
    if not options.enable_batching:
        return None
    if options.batching is not None:
        return options.batching
    if options.batching_parameters_file:
        return read_batching_parameters(options.batching_parameters_file)
    # TF Serving's pool name when batching is on without a parameters file.
    return BatchingConfig(thread_pool_name="model_server_batch_threads")


def _channel_arguments(text: str) -> tuple[tuple[str, str | int], ...]:
    from tfserve_lab.protocol.grpc.server import parse_channel_arguments  # imports grpc and the TF Serving protos

    return parse_channel_arguments(text)


def _monitoring(options: ServerOptions) -> MonitoringSettings:
    if options.monitoring_config_file:
        return read_monitoring_config(options.monitoring_config_file)
    return MonitoringSettings(enable=options.monitoring_enabled, path=options.monitoring_path)


def check_base_paths(models: Sequence[ModelConfig]) -> None:
    """Refuse, as TF Serving does, a model whose base path is not a folder."""
    for model in models:
        if not os.path.isdir(model.base_path):
            raise ConfigError(f"Could not find base path {model.base_path} for servable {model.name}")


def _read_token(path: str) -> str:
    """The bearer token in ``--auth_token_file`` (surrounding whitespace dropped)."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"Cannot read --auth_token_file {path}: {exc.strerror}.") from None
    if not token:
        raise ConfigError(f"--auth_token_file {path} is empty.")
    return token
