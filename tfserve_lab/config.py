"""Configuration values: TF Serving flags and text protos become frozen dataclasses here.

Nothing else in the package reads flags, environment variables or config
files; constructors take these objects.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tfserve_lab.errors import ConfigError, ServableNotFound

__all__ = [
    "BatchingConfig",
    "ModelConfig",
    "RequestLogging",
    "ServerOptions",
    "VersionPolicy",
    "model_configs_to_text",
    "models_from_proto",
    "parse_model_server_config",
    "read_model_server_config",
    "read_session_config",
    "without_version",
]

PolicyKind = Literal["latest", "all", "specific"]


@dataclass(frozen=True)
class VersionPolicy:
    """model_version_policy: which version folders to serve."""

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """Parse the short form used by magics: ``latest:2``, ``all``, ``specific:1,2``."""
        kind, _, arg = text.strip().partition(":")
        if kind == "all" and not arg:
            return cls("all")
        if kind == "latest":
            try:
                count = int(arg) if arg else 1
            except ValueError:
                raise ConfigError(f"Version policy {text!r}: latest takes a count, as in latest:2.") from None
            if count < 1:
                raise ConfigError(f"Version policy {text!r}: latest needs at least 1 version.")
            return cls("latest", num_versions=count)
        if kind == "specific" and arg:
            try:
                versions = tuple(sorted({int(v) for v in arg.split(",")}))
            except ValueError:
                raise ConfigError(f"Version policy {text!r}: specific takes numbers, as in specific:1,2.") from None
            return cls("specific", versions=versions)
        raise ConfigError(f"Unknown version policy {text!r}: use latest:N, all or specific:V1,V2.")

    def describe(self) -> str:
        """The short form, the inverse of ``parse``."""
        if self.kind == "latest":
            return f"latest:{self.num_versions}"
        if self.kind == "specific":
            return "specific:" + ",".join(str(v) for v in self.versions)
        return "all"


# The one log collector registered here (TF Serving's open-source build registers none).
FILE_LOG_COLLECTOR = "file"


@dataclass(frozen=True)
class RequestLogging:
    """A model's ``logging_config``: which requests are written where (``PredictionLog`` TFRecords)."""

    sampling_rate: float
    filename_prefix: str
    collector_type: str = FILE_LOG_COLLECTOR


@dataclass(frozen=True)
class ModelConfig:
    """One ``model_config_list.config`` entry."""

    name: str
    base_path: str
    platform: str = "tensorflow"
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    version_labels: Mapping[str, int] = field(default_factory=dict)
    logging: RequestLogging | None = None

    def with_labels(self, labels: Mapping[str, int]) -> ModelConfig:
        """A copy whose labels are replaced."""
        return replace(self, version_labels=dict(labels))


@dataclass(frozen=True)
class BatchingConfig:
    """BatchingParameters, with TF Serving's defaults for absent fields."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    thread_pool_name: str = "batch_threads"
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None

    def validate(self) -> None:
        """Reject parameter sets TF Serving refuses at start-up."""
        if self.max_batch_size < 1:
            raise ConfigError("max_batch_size must be positive.")
        sizes = self.allowed_batch_sizes
        if sizes:
            if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
                raise ConfigError("allowed_batch_sizes entries must be monotonically increasing.")
            limit = self.execution_batch_size
            if sizes[-1] != limit:
                raise ConfigError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {limit}"
                )

    @property
    def execution_batch_size(self) -> int:
        """The largest batch one model call may take."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size


@dataclass(frozen=True)
class ServerOptions:
    """``tensorflow_model_server`` flags, with its names and defaults."""

    port: int = 8500
    # None follows TF Serving (port 0 = no TCP listener); True with port 0 binds a free port.
    grpc_port_enabled: bool | None = None
    grpc_socket_path: str = ""
    rest_api_port: int = 0
    # None follows TF Serving (port 0 = REST off); True with port 0 binds a free port.
    rest_api_enabled: bool | None = None
    rest_api_num_threads: int = 0
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    host: str = "0.0.0.0"
    enable_batching: bool = False
    enable_per_model_batching_parameters: bool = False
    batching_parameters_file: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0
    model_name: str = "default"
    model_base_path: str = ""
    num_load_threads: int = 0
    num_unload_threads: int = 0
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    file_system_poll_wait_seconds: float = 1
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    tensorflow_session_parallelism: int = 0
    tensorflow_session_config_file: str = ""
    per_process_gpu_memory_fraction: float = 0.0
    saved_model_tags: str = "serve"
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = 0
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    monitoring_config_file: str = ""
    # The notebook engine serves Prometheus metrics by default; the CLI follows the monitoring config.
    monitoring_enabled: bool = False
    monitoring_path: str = "/monitoring/prometheus/metrics"
    ssl_config_file: str = ""
    prefer_tflite_model: bool = False
    enable_profiler: bool = True
    allow_version_labels_for_unavailable_models: bool = False
    enable_grpc_healthcheck_service: bool = False
    flush_filesystem_caches: bool = True
    use_alts_credentials: bool = False
    remove_unused_fields_from_bundle_metagraph: bool = True
    num_tflite_pools: int = field(default_factory=lambda: os.cpu_count() or 1)
    num_tflite_interpreters_per_pool: int = 1
    enable_signature_method_name_check: bool = False
    xla_cpu_compilation_enabled: bool = False
    xla_gpu_compilation_enabled: bool = False
    mixed_precision: str = ""
    skip_initialize_tpu: bool = False
    enable_serialization_as_tensor_content: bool = False
    # tfserve-lab's own flags (TF Serving has no equivalent): exposure and resource limits.
    auth_token: str = ""
    auth_token_file: str = ""
    rest_api_max_body_bytes: int = 64 * 1024 * 1024
    grpc_max_receive_message_bytes: int = 2**31 - 1
    shutdown_grace_seconds: float = 10.0
    models: tuple[ModelConfig, ...] = ()
    batching: BatchingConfig | None = None

    @property
    def grpc_tcp_enabled(self) -> bool:
        """Whether to listen for gRPC on a TCP port (the Unix socket is separate)."""
        return self.port != 0 if self.grpc_port_enabled is None else self.grpc_port_enabled

    @property
    def rest_enabled(self) -> bool:
        """Whether to export the REST API."""
        return self.rest_api_port != 0 if self.rest_api_enabled is None else self.rest_api_enabled

    @property
    def tags(self) -> tuple[str, ...]:
        """``--saved_model_tags`` as a tuple."""
        return tuple(t for t in self.saved_model_tags.split(",") if t)


def parse_model_server_config(text: str, *, source: str = "model config") -> tuple[ModelConfig, ...]:
    """Parse a ``ModelServerConfig`` text proto into model configs.

    Raises:
        ConfigError: with TF Serving's own words when the text does not parse.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    message = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigError(f"Error parsing text-format tensorflow.serving.ModelServerConfig: {exc}") from None
    return models_from_proto(message, source=source)


def models_from_proto(message: Any, *, source: str = "model config") -> tuple[ModelConfig, ...]:
    """Model configs from a parsed ``ModelServerConfig`` message, checked as TF Serving checks them."""
    if message.WhichOneof("config") == "custom_model_config":
        raise ConfigError(f"{source}: custom_model_config is not supported; use model_config_list.")
    models: list[ModelConfig] = []
    seen: set[str] = set()
    for entry in message.model_config_list.config:
        if not entry.name:
            raise ConfigError(f"{source}: a model config has no name.")
        if entry.name in seen:
            raise ConfigError(f"Illegal to list model {entry.name} multiple times in config list")
        seen.add(entry.name)
        platform = entry.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise ConfigError(f"Model {entry.name} requests unsupported platform {platform}")
        models.append(
            ModelConfig(
                name=entry.name,
                base_path=entry.base_path,
                platform=platform,
                version_policy=_policy_from_proto(entry.model_version_policy),
                version_labels=dict(entry.version_labels),
                logging=_logging_from_proto(entry),
            )
        )
    return tuple(models)


def _logging_from_proto(entry: Any) -> RequestLogging | None:
    """``logging_config``, checked as TF Serving's ``LogCollector::Create`` checks the collector type."""
    if not entry.HasField("logging_config"):
        return None
    config = entry.logging_config
    collector = config.log_collector_config
    if collector.type != FILE_LOG_COLLECTOR:
        raise ConfigError(
            f"Cannot find LogCollector::Factory for type: {collector.type} (tfserve-lab registers the "
            f'"{FILE_LOG_COLLECTOR}" collector only)'
        )
    if not collector.filename_prefix:
        raise ConfigError(f"Model {entry.name}: the file log collector needs a filename_prefix.")
    rate = config.sampling_config.sampling_rate
    if not 0 <= rate <= 1:
        raise ConfigError(f"Model {entry.name}: sampling_rate must be between 0 and 1, got {rate}.")
    return RequestLogging(rate, collector.filename_prefix, collector.type)


def _policy_from_proto(policy: object) -> VersionPolicy:
    which = policy.WhichOneof("policy_choice")  # type: ignore[attr-defined]
    if which == "all":
        return VersionPolicy("all")
    if which == "specific":
        return VersionPolicy("specific", versions=tuple(sorted(policy.specific.versions)))  # type: ignore[attr-defined]
    if which == "latest":
        return VersionPolicy("latest", num_versions=max(1, policy.latest.num_versions))  # type: ignore[attr-defined]
    return VersionPolicy()


def read_model_server_config(path: str) -> tuple[ModelConfig, ...]:
    """Read and parse a ``--model_config_file``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read model config file {path}: {exc.strerror}.") from None
    return parse_model_server_config(text, source=path)


def read_session_config(path: str) -> bytes:
    """``--tensorflow_session_config_file``: a ``tensorflow.ConfigProto`` text proto, serialized ("" gives b"")."""
    if not path:
        return b""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import config_pb2

    message = config_pb2.ConfigProto()
    try:
        with open(path, encoding="utf-8") as handle:
            text_format.Parse(handle.read(), message)
    except OSError as exc:
        raise ConfigError(f"Invalid protobuf file: '{path}' ({exc.strerror}).") from None
    except text_format.ParseError as exc:
        raise ConfigError(
            f"Invalid protobuf file: '{path}' (Error parsing text-format tensorflow.ConfigProto: {exc})."
        ) from None
    return bytes(message.SerializeToString())


def model_configs_to_text(models: Sequence[ModelConfig]) -> str:
    """Write model configs as a ``ModelServerConfig`` text proto (the inverse of parsing)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    message = model_server_config_pb2.ModelServerConfig()
    for model in models:
        entry = message.model_config_list.config.add()
        entry.name = model.name
        entry.base_path = model.base_path
        entry.model_platform = model.platform
        policy = model.version_policy
        if policy.kind == "all":
            entry.model_version_policy.all.SetInParent()
        elif policy.kind == "specific":
            entry.model_version_policy.specific.versions.extend(policy.versions)
        elif policy.num_versions != 1:
            entry.model_version_policy.latest.num_versions = policy.num_versions
        for label, version in sorted(model.version_labels.items()):
            entry.version_labels[label] = version
        if model.logging is not None:
            entry.logging_config.log_collector_config.type = model.logging.collector_type
            entry.logging_config.log_collector_config.filename_prefix = model.logging.filename_prefix
            entry.logging_config.sampling_config.sampling_rate = model.logging.sampling_rate
    return text_format.MessageToString(message)


def without_version(
    models: Sequence[ModelConfig], name: str, version: int | None, serving: Collection[int]
) -> list[ModelConfig]:
    """The model config less model ``name``, or less one of its ``serving`` versions (the others keep serving).

    One version goes by pinning the model's version policy to the versions left (its labels on that
    version go too), so the config reported is the one served.

    Raises:
        ServableNotFound: no such model, or ``version`` is not one it serves.
    """
    target = next((m for m in models if m.name == name), None)
    if target is None:
        raise ServableNotFound(f"Servable not found for request: Latest({name})")
    if version is None:
        return [m for m in models if m.name != name]
    if version not in serving:
        raise ServableNotFound(f"Servable not found for request: Specific({name}, {version})")
    remaining = tuple(sorted(set(serving) - {version}))
    if not remaining:
        return [m for m in models if m.name != name]
    labels = {k: v for k, v in target.version_labels.items() if v != version}
    pinned = replace(target, version_policy=VersionPolicy("specific", versions=remaining), version_labels=labels)
    return [pinned if m.name == name else m for m in models]
