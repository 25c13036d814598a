"""``tensorflow_model_server`` command-line flags -> ``ServerOptions``.

Every flag of TF Serving's ``main.cc``, in its order, with its help text and
its default (``server.h``), and what tfserve-lab does with it: the same
(``yes``), the same with a stated difference (``differs``), accepted with
nothing to do here (``no effect``), or ``refused`` with one line saying why.
Same syntax as TF Serving: ``--flag=value``, ``--flag value``, bare booleans.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tfserve_lab.config import ServerOptions
from tfserve_lab.errors import ConfigError

__all__ = ["FLAGS", "TF_SERVING_FLAGS", "FlagSpec", "parse_flags", "usage"]

Status = Literal["yes", "differs", "no effect", "refused", "tfserve-lab"]


@dataclass(frozen=True)
class FlagSpec:
    """One flag: TF Serving's help text and default, and what tfserve-lab does with it."""

    name: str
    help: str
    status: Status = "yes"
    # What differs, why it has no effect, or why it is refused.
    note: str = ""
    # TF Serving's default as its docs would state it, when server.h computes it at start-up.
    default: str | None = None

    def default_text(self) -> str:
        """The default as ``--help`` and the README show it."""
        if self.default is not None:
            return self.default
        if self.name == "version":
            return "false"
        value = getattr(ServerOptions(), self.name, "")
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return '""' if value == "" else str(value)


_CPUS = "CPUs"
# TF Serving's main.cc calls tensorflow::DisableXlaCompilation() unless a flag is set; Python TensorFlow has no
# binding for that switch.
_XLA_NOTE = (
    "accepted, but XLA stays available whatever their value: TensorFlow's Python API cannot switch XLA "
    "compilation off, so jit_compile functions compile where TF Serving would refuse them."
)

# main.cc's flag_list, in its order; help texts verbatim (adjacent C++ literals joined as the compiler does).
TF_SERVING_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("port", "TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero."),
    FlagSpec(
        "grpc_socket_path",
        "If non-empty, listen to a UNIX socket for gRPC API on the given path. Can be either relative or absolute path.",
    ),
    FlagSpec(
        "rest_api_port",
        "Port to listen on for HTTP/REST API. If set to zero HTTP/REST API will not be exported. This port must be "
        "different than the one specified in --port.",
    ),
    FlagSpec(
        "rest_api_num_threads",
        "Number of threads for HTTP/REST API processing. If not set, will be auto set based on number of CPUs.",
        "no effect",
        "REST is served by the engine's event loop; model calls run on the batch threads.",
        default=f"4 x {_CPUS}",
    ),
    FlagSpec("rest_api_timeout_in_ms", "Timeout for HTTP/REST API calls."),
    FlagSpec("rest_api_enable_cors_support", "Enable CORS headers in response"),
    FlagSpec("enable_batching", "enable batching"),
    FlagSpec(
        "allow_version_labels_for_unavailable_models",
        "If true, allows assigning unused version labels to models that are not available yet.",
    ),
    FlagSpec(
        "batching_parameters_file",
        "If non-empty, read an ascii BatchingParameters protobuf from the supplied file name and use the contained "
        "values instead of the defaults.",
    ),
    FlagSpec(
        "enable_per_model_batching_parameters",
        "Enables model specific batching params like batch sizes, timeouts, batching feature flags to be read from "
        "`batching_params.pbtxt` file present in SavedModel dir of the model. Associated params in the global config "
        "from --batching_parameters_file are *ignored*. Only threadpool (name and size) related params are used from "
        "the global config, as this threadpool is shared across all the models that want to batch requests. This "
        "option is only applicable when --enable_batching flag is set.",
    ),
    FlagSpec(
        "model_config_file",
        "If non-empty, read an ascii ModelServerConfig protobuf from the supplied file name, and serve the models in "
        "that file. This config file can be used to specify multiple models to serve and other advanced parameters "
        "including non-default version policy. (If used, --model_name, --model_base_path are ignored.)",
    ),
    FlagSpec(
        "model_config_file_poll_wait_seconds",
        "Interval in seconds between each poll of the filesystemfor model_config_file. If unset or set to zero, poll "
        "will be done exactly once and not periodically. Setting this to negative is reserved for testing purposes "
        "only.",
    ),
    FlagSpec("model_name", "name of model (ignored if --model_config_file flag is set)"),
    FlagSpec("model_base_path", "path to export (ignored if --model_config_file flag is set, otherwise required)"),
    FlagSpec(
        "num_load_threads",
        "The number of threads in the thread-pool used to load servables. If set as 0, we don't use a thread-pool, "
        "and servable loads are performed serially in the manager's main work loop, may casue the Serving request to "
        "be delayed. Default: 0",
    ),
    FlagSpec(
        "num_unload_threads",
        "The number of threads in the thread-pool used to unload servables. If set as 0, we don't use a thread-pool, "
        "and servable loads are performed serially in the manager's main work loop, may casue the Serving request to "
        "be delayed. Default: 0",
    ),
    FlagSpec(
        "max_num_load_retries",
        "maximum number of times it retries loading a model after the first failure, before giving up. If set to 0, "
        "a load is attempted only once. Default: 5",
    ),
    FlagSpec(
        "load_retry_interval_micros",
        "The interval, in microseconds, between each servable load retry. If set negative, it doesn't wait. Default: "
        "1 minute",
    ),
    FlagSpec(
        "file_system_poll_wait_seconds",
        "Interval in seconds between each poll of the filesystem for new model version. If set to zero poll will be "
        "exactly done once and not periodically. Setting this to negative value will disable polling entirely "
        "causing ModelServer to indefinitely wait for a new model at startup. Negative values are reserved for "
        "testing purposes only.",
    ),
    FlagSpec(
        "flush_filesystem_caches",
        "If true (the default), filesystem caches will be flushed after the initial load of all servables, and after "
        "each subsequent individual servable reload (if the number of load threads is 1). This reduces memory "
        "consumption of the model server, at the potential cost of cache misses if model files are accessed after "
        "servables are loaded.",
        "no effect",
        "TensorFlow's local file system keeps no cache to flush (FlushCaches is a no-op for it, as in TF Serving).",
    ),
    FlagSpec(
        "tensorflow_session_parallelism",
        "Number of threads to use for running a Tensorflow session. Auto-configured by default.Note that this option "
        "is ignored if --platform_config_file is non-empty.",
    ),
    FlagSpec(
        "tensorflow_session_config_file",
        "If non-empty, read an ascii TensorFlow Session ConfigProto protobuf from the supplied file name. Note, parts "
        "of the session config (threads, parallelism etc.) can be overridden if needed, via corresponding command "
        "line flags.",
        "differs",
        "TF1 sessions get the whole ConfigProto; TF2 functions get what eager TensorFlow has a setting for "
        "(threads, JIT level, GPU memory growth, device placement logging).",
    ),
    FlagSpec(
        "tensorflow_intra_op_parallelism",
        "Number of threads to use to parallelize the executionof an individual op. Auto-configured by default.Note "
        "that this option is ignored if --platform_config_file is non-empty.",
    ),
    FlagSpec(
        "tensorflow_inter_op_parallelism",
        "Controls the number of operators that can be executed simultaneously. Auto-configured by default.Note that "
        "this option is ignored if --platform_config_file is non-empty.",
    ),
    FlagSpec("use_alts_credentials", "Use Google ALTS credentials"),
    FlagSpec(
        "ssl_config_file",
        "If non-empty, read an ascii SSLConfig protobuf from the supplied file name and set up a secure gRPC channel",
        "differs",
        "the same certificates also serve REST over HTTPS.",
    ),
    FlagSpec(
        "platform_config_file",
        "If non-empty, read an ascii PlatformConfigMap protobuf from the supplied file name, and use that platform "
        "config instead of the Tensorflow platform. (If used, --enable_batching is ignored.)",
        "refused",
        "only the TensorFlow platform is served; configure it with the other flags",
    ),
    FlagSpec(
        "per_process_gpu_memory_fraction",
        "Fraction that each process occupies of the GPU memory space the value is between 0.0 and 1.0 (with 0.0 as "
        "the default) If 1.0, the server will allocate all the memory when the server starts, If 0.0, Tensorflow will "
        "automatically select a value.",
    ),
    FlagSpec(
        "saved_model_tags",
        "Comma-separated set of tags corresponding to the meta graph def to load from SavedModel.",
    ),
    FlagSpec(
        "grpc_channel_arguments",
        "A comma separated list of arguments to be passed to the grpc server. (e.g. grpc.max_connection_age_ms=2000)",
    ),
    FlagSpec(
        "grpc_max_threads",
        "Max grpc server threads to handle grpc messages.",
        "differs",
        "the gRPC server is asynchronous: unset, calls are not capped; set, at most N calls run at once and more are "
        "refused RESOURCE_EXHAUSTED.",
        default=f"4 x {_CPUS}",
    ),
    FlagSpec(
        "enable_model_warmup",
        "Enables model warmup, which triggers lazy initializations (such as TF optimizations) at load time, to "
        "reduce first request latency.",
    ),
    FlagSpec(
        "num_request_iterations_for_warmup",
        "Number of times a request is iterated during warmup replay. This value is used only if > 0.",
    ),
    FlagSpec("version", "Display version"),
    FlagSpec(
        "monitoring_config_file", "If non-empty, read an ascii MonitoringConfig protobuf from the supplied file name"
    ),
    FlagSpec(
        "remove_unused_fields_from_bundle_metagraph",
        "Removes unused fields from MetaGraphDef proto message to save memory.",
        "no effect",
        "no MetaGraphDef is kept after a load; only the signatures are.",
    ),
    FlagSpec(
        "prefer_tflite_model",
        "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Prefer TensorFlow Lite model from `model.tflite` file in SavedModel "
        "directory, instead of the TensorFlow model from `saved_model.pb` file. If no TensorFlow Lite model found, "
        "fallback to TensorFlow model.",
    ),
    FlagSpec(
        "num_tflite_pools",
        "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Number of TFLite interpreters in an interpreter pool of TfLiteSession. "
        "Typically there is one TfLiteSession for each TF Lite model that is loaded. If not set, will be auto set "
        "based on number of CPUs.",
        note="each TF Lite model gets one pool of this many interpreters, as TfLiteSession makes it.",
        default=_CPUS,
    ),
    FlagSpec(
        "num_tflite_interpreters_per_pool",
        "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Number of TFLite interpreters in an interpreter pool of TfLiteSession. "
        "Typically there is one TfLiteSession for each TF Lite model that is loaded. If not set, will be 1.",
        "differs",
        "values above 1 are refused: TfLiteSession then batches and splits requests across its interpreters, which "
        "tfserve-lab does not do (use --enable_batching).",
    ),
    FlagSpec(
        "enable_signature_method_name_check",
        "Enable method_name check for SignatureDef. Disable this if serving native TF2 regression/classification "
        "models.",
    ),
    FlagSpec(
        "xla_cpu_compilation_enabled",
        "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Enable XLA:CPU JIT (default is disabled). With XLA:CPU JIT disabled, "
        "models utilizing this feature will return bad Status on first compilation request.",
        "differs",
        _XLA_NOTE,
    ),
    FlagSpec(
        "xla_gpu_compilation_enabled",
        "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Enable both XLA:CPU JIT and XLA:GPU JIT (default is disabled).",
        "differs",
        _XLA_NOTE,
    ),
    FlagSpec("enable_profiler", "Enable profiler service."),
    FlagSpec(
        "thread_pool_factory_config_file",
        "If non-empty, read an ascii ThreadPoolConfig protobuf from the supplied file name.",
        "refused",
        "no thread pool factory is registered (TF Serving's open-source build registers none either)",
    ),
    FlagSpec(
        "mixed_precision",
        "specify mixed_precision mode",
        "refused",
        "the bfloat16 graph rewrite is not available; export the model in the precision it should serve in",
    ),
    FlagSpec(
        "skip_initialize_tpu",
        "Whether to skip auto initializing TPU.",
        "no effect",
        "this is not a TPU build, which ignores the flag in TF Serving too.",
    ),
    FlagSpec("enable_grpc_healthcheck_service", "Enable the standard gRPC healthcheck service."),
    FlagSpec("enable_serialization_as_tensor_content", "Enable serialization of predict response as tensor content."),
)

# tfserve-lab's own flags, for exposure and resource limits TF Serving leaves to its deployment.
OWN_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("host", "Address to bind (TF Serving binds every interface).", "tfserve-lab"),
    FlagSpec(
        "auth_token",
        "If non-empty, REST requests need 'Authorization: Bearer <token>' and gRPC calls 'authorization: Bearer "
        "<token>' metadata (gRPC health checks stay open).",
        "tfserve-lab",
    ),
    FlagSpec(
        "auth_token_file", "Read the --auth_token from this file (keeps it out of the process list).", "tfserve-lab"
    ),
    FlagSpec("rest_api_max_body_bytes", "Largest REST request body accepted; larger ones get 413.", "tfserve-lab"),
    FlagSpec(
        "grpc_max_receive_message_bytes",
        "Largest gRPC request message accepted (TF Serving: INT_MAX); larger ones get RESOURCE_EXHAUSTED.",
        "tfserve-lab",
    ),
    FlagSpec(
        "shutdown_grace_seconds",
        "On SIGTERM or stop, how long requests in flight may run before the ports close.",
        "tfserve-lab",
    ),
)

FLAGS: dict[str, FlagSpec] = {spec.name: spec for spec in (*TF_SERVING_FLAGS, *OWN_FLAGS)}

_FIELDS = {f.name: f for f in dataclasses.fields(ServerOptions)}


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
        ConfigError: one line naming the flag that is unknown, refused or malformed.
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
        spec = FLAGS.get(name)
        if spec is None or name == "version":
            raise ConfigError(f"Unknown command line flag '{name}'")
        if spec.status == "refused":
            raise ConfigError(f"Flag --{name} is not supported by tfserve-lab: {spec.note}.")
        kind = _FIELDS[name].type
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
    """The flag list, as ``--help`` prints it: TF Serving's flags with their defaults, then ours."""
    lines = ["usage: tfserve-lab serve [--flag=value ...]", "Flags (tensorflow_model_server's, in its order):"]
    for group, title in ((TF_SERVING_FLAGS, None), (OWN_FLAGS, "tfserve-lab's own flags:")):
        if title:
            lines.append(title)
        for spec in group:
            default = spec.default_text()
            status = "" if spec.status in ("yes", "tfserve-lab") else f" [{spec.status}: {spec.note}]"
            lines.append(f"  --{spec.name}={default}\t{spec.help}{status}")
    return "\n".join(lines)
