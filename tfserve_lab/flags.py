"""``tensorflow_model_server`` command-line flags -> ``ServerOptions``.

Same names, syntax (``--flag=value``, ``--flag value``, bare booleans) and
defaults as TF Serving's ``main.cc``. A flag we know but do not implement is
refused with one line naming it, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tfserve_lab.config import ServerOptions
from tfserve_lab.errors import ConfigError

__all__ = ["FLAG_HELP", "UNSUPPORTED_FLAGS", "parse_flags", "usage"]

FLAG_HELP: dict[str, str] = {
    "port": "Port to listen on for gRPC API",
    "grpc_socket_path": "If non-empty, listen to a UNIX socket for gRPC API on the given path",
    "rest_api_port": "Port to listen on for HTTP/REST API. If set to zero HTTP/REST API will not be exported.",
    "rest_api_num_threads": "Number of threads for HTTP/REST API processing (REST runs on the engine's event loop here).",
    "rest_api_timeout_in_ms": "Timeout for HTTP/REST API calls.",
    "rest_api_enable_cors_support": "Enable CORS headers in response",
    "host": "Address to bind (tfserve-lab; TF Serving binds all interfaces).",
    "enable_batching": "enable batching",
    "batching_parameters_file": "If non-empty, read an ascii BatchingParameters protobuf from the supplied file name.",
    "enable_per_model_batching_parameters": "Enables model specific batching params read from the "
    "`batching_params.pbtxt` file in the SavedModel dir; only the thread pool comes from the global config.",
    "model_config_file": "If non-empty, read an ascii ModelServerConfig protobuf from the supplied file name.",
    "model_config_file_poll_wait_seconds": "Interval in seconds between each poll of the model config file (0 = never).",
    "model_name": "name of model (ignored if --model_config_file flag is set)",
    "model_base_path": "path to export (ignored if --model_config_file flag is set)",
    "num_load_threads": "The number of threads in the thread-pool used to load servables.",
    "num_unload_threads": "The number of threads in the thread-pool used to unload servables.",
    "max_num_load_retries": "maximum number of times it retries loading a model after the first failure",
    "load_retry_interval_micros": "The interval, in microseconds, between each servable load retry.",
    "file_system_poll_wait_seconds": "Interval in seconds between each poll of the filesystem for new model version.",
    "flush_filesystem_caches": "If true, free most of the memory used by filesystem caches after loading.",
    "tensorflow_session_parallelism": "Number of threads to use for running a Tensorflow session.",
    "tensorflow_intra_op_parallelism": "Number of threads to use to parallelize the execution of an individual op.",
    "tensorflow_inter_op_parallelism": "Controls the number of operators that can be executed simultaneously.",
    "per_process_gpu_memory_fraction": "Fraction that each process occupies of the GPU memory space.",
    "saved_model_tags": "Comma-separated set of tags corresponding to the meta graph def to load from SavedModel.",
    "grpc_channel_arguments": "A comma separated list of arguments to be passed to the grpc server.",
    "grpc_max_threads": "Max grpc server threads to handle grpc messages.",
    "enable_model_warmup": "Enables model warmup, which triggers lazy initializations before serving.",
    "num_request_iterations_for_warmup": "Number of times a request is iterated during warmup replay.",
    "monitoring_config_file": "If non-empty, read an ascii MonitoringConfig protobuf from the supplied file name",
    "ssl_config_file": "If non-empty, read an ascii SSLConfig protobuf from the supplied file name.",
    "prefer_tflite_model": "EXPERIMENTAL; Prefer TensorFlow Lite model from `model.tflite` file in SavedModel directory.",
    "enable_profiler": "Enable profiler service.",
    "allow_version_labels_for_unavailable_models": "If true, allows assigning unused version labels to models that are not available yet.",
    "enable_grpc_healthcheck_service": "Enable the standard gRPC healthcheck service.",
    # tfserve-lab's own flags.
    "auth_token": "tfserve-lab: if non-empty, REST requests need 'Authorization: Bearer <token>' and gRPC calls "
    "'authorization: Bearer <token>' metadata (gRPC health checks stay open).",
    "auth_token_file": "tfserve-lab: read the --auth_token from this file (keeps it out of the process list).",
    "rest_api_max_body_bytes": "tfserve-lab: largest REST request body accepted; larger ones get 413.",
    "grpc_max_receive_message_bytes": "tfserve-lab: largest gRPC request message accepted (TF Serving: INT_MAX); "
    "larger ones get RESOURCE_EXHAUSTED.",
    "shutdown_grace_seconds": "tfserve-lab: on SIGTERM/stop, how long requests in flight may run before the ports close.",
}

# Flags of tensorflow_model_server that this engine does not implement (yet).
UNSUPPORTED_FLAGS: dict[str, str] = {
    "platform_config_file": "platform configs are not supported; use --model_config_file",
    "tensorflow_session_parallelism": "deprecated in TF Serving; use --tensorflow_intra_op_parallelism",
    "use_tflite_model": "deprecated in TF Serving; use --prefer_tflite_model",
    "mixed_precision": "mixed precision rewriting is not supported",
    "enable_signature_method_name_check": "not supported",
    "xla_cpu_compilation_enabled": "XLA options are not supported",
    "remove_unused_fields_from_bundle_metagraph": "not supported",
}

_FIELDS = {f.name: f for f in dataclasses.fields(ServerOptions) if f.name in FLAG_HELP}


def _convert(name: str, kind: Any, raw: str) -> Any:
    if kind in ("bool", bool):
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(f"Illegal value '{raw}' specified for bool flag '{name}'")
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"Illegal value '{raw}' specified for flag '{name}'") from None
    return raw


def parse_flags(argv: Sequence[str]) -> ServerOptions:
    """Parse TF Serving flags into options (model configs are resolved by the caller).

    Raises:
        ConfigError: one line naming the flag that is unknown, unsupported or malformed.
    """
    values: dict[str, Any] = {}
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise ConfigError(f"Unexpected argument '{arg}': flags look like --name=value")
        name, has_value, raw = arg.lstrip("-").partition("=")
        if name in UNSUPPORTED_FLAGS:
            raise ConfigError(f"Flag --{name} is not supported by tfserve-lab: {UNSUPPORTED_FLAGS[name]}.")
        spec = _FIELDS.get(name)
        if spec is None:
            raise ConfigError(f"Unknown command line flag '{name}'")
        kind = spec.type
        if not has_value:
            if kind in ("bool", bool):
                raw = "true"
            elif index < len(args):
                raw = args[index]
                index += 1
            else:
                raise ConfigError(f"Missing value for flag '--{name}'")
        values[name] = _convert(name, kind, raw)
    return ServerOptions(**values)


def usage() -> str:
    """The flag list, as ``--help`` prints it."""
    defaults = ServerOptions()
    lines = ["usage: tfserve-lab serve [--flag=value ...]", "Flags (tensorflow_model_server's):"]
    for name, text in FLAG_HELP.items():
        if name in UNSUPPORTED_FLAGS:
            continue
        default = getattr(defaults, name)
        shown = str(default).lower() if isinstance(default, bool) else repr(default) if default == "" else default
        lines.append(f"  --{name}={shown}\t{text}")
    return "\n".join(lines)
