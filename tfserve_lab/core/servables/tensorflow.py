"""SavedModel servables run as TF Serving runs them; the engine's only TensorFlow import (lazy)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tfserve_lab.core.dtypes import numpy_for_dt
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.servables.saved_model_reader import (
    find_meta_graph,
    read_saved_model,
    signatures_of,
    tensor_info_from_proto,
)
from tfserve_lab.core.servables.warmup import run_warmup
from tfserve_lab.core.types import DEFAULT_SIGNATURE, SignatureInfo
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, TfServeError

__all__ = [
    "LoadOptions",
    "SavedModelServable",
    "SessionOptions",
    "bind_inputs",
    "coerce",
    "configure_tensorflow",
    "find_signature",
    "load_saved_model",
    "load_version",
    "quiet_tensorflow_logs",
    "run_warmup",
    "select_outputs",
    "session_config_proto",
    "tensor_info_from_proto",
    "tf_error",
]

log = logging.getLogger(__name__)

Runner = Literal["auto", "function", "session"]
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\](\s*name:.*)?$")
_ROOT_ERRORS = re.compile(r"\d+ root error\(s\) found\.")
_FIRST_ROOT_ERROR = re.compile(r"\s*\(0\) [A-Za-z_ ]+: (.*)")


@dataclass(frozen=True)
class SessionOptions:
    """TensorFlow threading and GPU memory settings (TF Serving's --tensorflow_* flags)."""

    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    per_process_gpu_memory_fraction: float = 0.0
    allow_growth: bool = True
    # A serialized ConfigProto (--tensorflow_session_config_file): sessions start from it instead of our
    # defaults, then take the three fields above from the flags, as TF Serving's server.cc overwrites them.
    config_proto: bytes = b""


def session_config_proto(options: SessionOptions) -> Any:
    """The ConfigProto a TF1 session of this process runs with."""
    from tensorflow.core.protobuf import config_pb2

    if options.config_proto:
        config = config_pb2.ConfigProto.FromString(options.config_proto)
    else:
        config = config_pb2.ConfigProto(allow_soft_placement=True)  # GPU-placed graphs load on CPU-only hosts
        config.gpu_options.allow_growth = options.allow_growth
    config.intra_op_parallelism_threads = options.intra_op_parallelism
    config.inter_op_parallelism_threads = options.inter_op_parallelism
    config.gpu_options.per_process_gpu_memory_fraction = options.per_process_gpu_memory_fraction
    return config


@dataclass(frozen=True)
class LoadOptions:
    """How ``load_version`` loads a version folder (TF Serving's loading flags)."""

    tags: tuple[str, ...] = ("serve",)
    prefer_tflite: bool = False
    session: SessionOptions = field(default_factory=SessionOptions)
    warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    runner: Runner = "auto"
    # --num_tflite_pools: interpreters in a TF Lite model's pool (None: one per CPU).
    tflite_interpreters: int | None = None


def _tf() -> Any:
    import tensorflow as tf  # lazy: importing TensorFlow takes seconds

    return tf


_configured: SessionOptions | None = None
_configure_lock = threading.Lock()


def configure_tensorflow(options: SessionOptions) -> bool:
    """Apply process-wide threading and GPU memory growth, once, before TensorFlow initializes.

    Sessions get the options through their ConfigProto; TF2 functions only see
    these global settings, which TensorFlow freezes at its first operation.

    Args:
        options: The settings; later calls (same or other options) change nothing.

    Returns:
        True when this call applied the settings, False when they were applied
        before or TensorFlow was already initialized.
    """
    global _configured
    with _configure_lock:
        if _configured is not None:
            return False
        _configured = options
        tf = _tf()
        try:
            if options.intra_op_parallelism > 0:
                tf.config.threading.set_intra_op_parallelism_threads(options.intra_op_parallelism)
            if options.inter_op_parallelism > 0:
                tf.config.threading.set_inter_op_parallelism_threads(options.inter_op_parallelism)
            config = session_config_proto(options)
            if config.gpu_options.allow_growth:
                for gpu in tf.config.list_physical_devices("GPU"):
                    tf.config.experimental.set_memory_growth(gpu, True)
            # The rest of a ConfigProto that eager TensorFlow has a setting for (sessions get all of it).
            if config.graph_options.optimizer_options.global_jit_level > 0:
                tf.config.optimizer.set_jit(True)
            if config.log_device_placement:
                tf.debugging.set_log_device_placement(True)
        except RuntimeError as exc:  # TensorFlow already initialized its context
            log.warning("TensorFlow settings not applied: %s", exc)
            return False
        return True


def tf_error(exc: BaseException) -> TfServeError:
    """A TensorFlow error as TF Serving reports it: the op error's code and first line."""
    tf = _tf()
    if isinstance(exc, tf.errors.OpError):
        code, message = ErrorCode(exc.error_code), exc.message
    else:
        code, message = ErrorCode.INVALID_ARGUMENT, str(exc)
    first = _OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", _headline(message))) or type(exc).__name__
    if code == ErrorCode.INVALID_ARGUMENT:
        return InvalidArgument(first)
    if code == ErrorCode.FAILED_PRECONDITION:
        return FailedPrecondition(first)
    return TfServeError(first, code=code)


def _headline(message: str) -> str:
    """The line that says what went wrong, past eager's "Graph execution error" trace or a root-error list."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if _ROOT_ERRORS.match(lines[0]):
        for line in lines[1:]:
            first_error = _FIRST_ROOT_ERROR.match(line)
            if first_error:
                return first_error.group(1)
    if lines[0].startswith("Graph execution error"):
        trace = ("Detected at node", "Node:", "<stack traces", "\t", " ")
        return next((line for line in lines[1:] if not line.startswith(trace)), lines[0])
    return lines[0]


# Request checks of TF Serving's predict_util.cc and saved_model::GetInputValues, shared with tflite.py.


def find_signature(signatures: Mapping[str, SignatureInfo], name: str) -> SignatureInfo:
    """The signature a request names ("" is serving_default); FailedPrecondition when absent."""
    key = name or DEFAULT_SIGNATURE
    signature = signatures.get(key)
    if signature is None:
        raise FailedPrecondition(f'Serving signature key "{key}" not found.')
    return signature


def bind_inputs(
    signature: SignatureInfo,
    inputs: Mapping[str, Any],
    defaults: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Inputs by alias in sorted order, defaults filled and cast to the signature dtypes."""
    defaults = defaults or {}
    wanted = signature.inputs
    if len(inputs) > len(wanted) or (len(inputs) < len(wanted) and not defaults):
        sent, known = set(inputs), set(wanted)
        raise InvalidArgument(
            f"input size does not match signature: {len(inputs)}!={len(wanted)} "
            f"len({{{_join(sent)}}}) != len({{{_join(known)}}}). "
            f"Sent extra: {{{_join(sent - known)}}}. Missing but required: {{{_join(known - sent)}}}."
        )
    bound: dict[str, np.ndarray] = {}
    used = 0
    for alias in sorted(wanted):
        info = wanted[alias]
        if alias in inputs:
            value, used = inputs[alias], used + 1
        elif alias in defaults:
            value = defaults[alias]
        else:
            raise InvalidArgument(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request and no default "
                f"value provided. Inputs expected to be in the request {{{_join(inputs)}}}, or default input "
                f"alias set: {_join(defaults)}"
            )
        bound[alias] = coerce(value, info.dtype)
    if inputs and used != len(inputs):
        raise InvalidArgument(
            f"Inputs contains invalid name. Used request inputs: {_join(set(inputs) & set(wanted))}, "
            f"request input: {_join(inputs)}"
        )
    return bound


def select_outputs(signature: SignatureInfo, output_keys: Sequence[str] | None) -> tuple[str, ...]:
    """The output aliases to fetch: the filter, checked, or every output."""
    if not output_keys:
        return tuple(signature.outputs)
    seen: set[str] = set()
    for alias in output_keys:
        if alias not in signature.outputs:
            raise InvalidArgument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{_join(signature.outputs)}}}."
            )
        if alias in seen:
            raise InvalidArgument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return tuple(output_keys)


def coerce(value: Any, dtype: str) -> np.ndarray:
    """Cast to the signature dtype where no value changes meaning (JSON numbers arrive as float64/int64)."""
    array = np.asarray(value)
    try:
        target = numpy_for_dt(dtype.removesuffix("_REF"))
    except KeyError:
        return array
    source = array.dtype
    if source == target:
        return array
    if target.kind == "O":
        if source.kind == "U":
            return np.char.encode(array, "utf-8").astype(object)
        return array.astype(object) if source.kind == "S" else array
    if source.kind in "iu" and target.kind in "iu":
        if not np.can_cast(source, target, "safe"):
            info = np.iinfo(target)
            if array.size and (array.min() < info.min or array.max() > info.max):
                return array  # out of range: TensorFlow reports the dtype mismatch
        return array.astype(target)
    if source.kind in "iuf" and target.kind in "fc":
        return array.astype(target)
    return array


def _join(names: Any) -> str:
    return ",".join(sorted(names))


# The two runners: TF2 signature functions and TF1 sessions.


class _FunctionRunner:
    """TF2: ``tf.saved_model.load`` signature functions (eager, thread-safe)."""

    kind = "function"

    def __init__(self, path: str, tags: Sequence[str]) -> None:
        tf = _tf()
        self._tf = tf
        self._loaded = tf.saved_model.load(path, tags=list(tags))
        self._functions = dict(self._loaded.signatures)
        self._to_tensor = _numpy_to_tensor(tf)
        # Per function: flat argument order and traced specs (dims, None for unknown rank; dtype), when
        # the parameters are the signature's aliases; otherwise only the public call is used.
        self._specs: dict[str, tuple[list[str], dict[str, tuple[Any, Any]]] | None] = {}
        for name, fn in self._functions.items():
            specs = fn.structured_input_signature[1]
            order = list(fn.function_type.parameters)
            dims = {
                k: (tuple(s.shape.as_list()) if s.shape.rank is not None else None, s.dtype) for k, s in specs.items()
            }
            self._specs[name] = (order, dims) if set(order) == set(dims) and hasattr(fn, "_call_flat") else None
        # Eager, with no gradient tape and no distribution strategy (both thread-local, and the engine's
        # threads have neither), ``_call_flat`` comes down to the atomic function's ``call_preflattened``
        # on the inputs and captures; calling that skips the layers above it (~20 us a call here).
        self._plain_eager = _plain_eager_check()
        self._atomic = {
            name: atomic
            for name, fn in self._functions.items()
            if self._specs[name] is not None
            and hasattr(atomic := getattr(fn, "_inference_function", None), "call_preflattened")
        }
        # Captures are variable handles, fixed for the life of the load, unless one is a deferred capture
        # (a callable TensorFlow evaluates per call): those functions read ``captured_inputs`` each time.
        self._captures = {
            name: list(fn.captured_inputs)
            for name, fn in self._functions.items()
            if not any(callable(c) for c in getattr(fn, "_captured_inputs", [lambda: None]))
        }

    def call(
        self, name: str, signature: SignatureInfo, inputs: dict[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        fn = self._functions.get(name)
        if fn is None:
            raise FailedPrecondition(f'Serving signature key "{name}" has no function to run in this SavedModel.')
        to_tensor = self._to_tensor
        tensors = {alias: to_tensor(value) for alias, value in inputs.items()}
        spec = self._specs[name]
        if spec is None or tensors.keys() != spec[1].keys() or any(tensors[k].dtype != spec[1][k][1] for k in spec[0]):
            # The public call: it words a dtype mismatch the way TensorFlow does.
            result = fn(**tensors)
        else:
            # The flat call skips the public call's argument binding (~50 us a call here), and TF Serving
            # ignores traced shapes (the TF2 half_plus_two declares x: [1]), as this path does.
            flat = [tensors[k] for k in spec[0]]
            atomic = self._atomic.get(name)
            if atomic is not None and self._plain_eager():
                captures = self._captures.get(name)
                result = atomic.call_preflattened(flat + (fn.captured_inputs if captures is None else captures))
            else:
                result = fn._call_flat(flat, fn.captured_inputs)
        return {alias: np.asarray(result[alias].numpy()) for alias in outputs}

    def close(self) -> None:
        self._functions.clear()
        self._loaded = None


def _plain_eager_check() -> Callable[[], bool]:
    """Whether this thread has no gradient tape and no distribution strategy (False when unknown)."""
    try:
        from tensorflow.python.distribute import distribute_lib
        from tensorflow.python.eager import record

        could_record, has_strategy = record.could_possibly_record, distribute_lib.has_strategy
    except (ImportError, AttributeError):
        return lambda: False
    return lambda: not could_record() and not has_strategy()


def _numpy_to_tensor(tf: Any) -> Callable[[Any], Any]:
    """``tf.convert_to_tensor`` for arrays, without its dispatch layers for numeric ones (half its ~14 us here).

    TensorFlow's own ``convert_to_eager_tensor`` makes the same tensor; strings, and any TensorFlow
    without that function, take the public call.
    """
    try:
        from tensorflow.python.eager import context as tf_context
        from tensorflow.python.framework import constant_op

        make = constant_op.convert_to_eager_tensor
        eager = tf_context.context()
    except (ImportError, AttributeError):
        return tf.convert_to_tensor  # type: ignore[no-any-return]
    public = tf.convert_to_tensor

    def to_tensor(value: Any) -> Any:
        if type(value) is np.ndarray and value.dtype.kind in "biuf":
            return make(value, eager)
        return public(value)

    return to_tensor


@contextlib.contextmanager
def quiet_tensorflow_logs() -> Iterator[None]:
    """TensorFlow's Python log lines below WARNING, and its "is deprecated" notices, hidden for the block.

    Loads and exports log lines (``Assets written to``, ``Restoring parameters``) that say what the
    caller reports better; the logger is process-wide, so this is kept to the call that logs them.
    """
    tf = _tf()
    logger = tf.get_logger()
    level = logger.level
    if level < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        from tensorflow.python.util import deprecation

        silence: Any = deprecation.silence()
    except (ImportError, AttributeError):
        silence = contextlib.nullcontext()
    try:
        with silence:
            yield
    finally:
        logger.setLevel(level)


class _SessionRunner:
    """TF1: a ``tf.compat.v1.Session`` on its own graph, fed and fetched by tensor names."""

    kind = "session"

    def __init__(self, path: str, tags: Sequence[str], options: SessionOptions) -> None:
        tf = _tf()
        from tensorflow.core.protobuf import config_pb2

        config = session_config_proto(options)
        self._callable_options = config_pb2.CallableOptions
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)
        try:
            # The TF1 loader is the one TF Serving's session bundles match; its deprecation notice and
            # "Restoring parameters" line are not something a user of the server can act on.
            with self._graph.as_default(), quiet_tensorflow_logs():
                tf.compat.v1.saved_model.loader.load(self._session, list(tags), path)
        except BaseException:
            self._session.close()
            raise
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def call(
        self, name: str, signature: SignatureInfo, inputs: dict[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        key = (tuple(signature.inputs[a].name for a in inputs), tuple(signature.outputs[a].name for a in outputs))
        run = self._callables.get(key) or self._make_callable(*key)
        values = run(*inputs.values())
        return {alias: np.asarray(value) for alias, value in zip(outputs, values, strict=True)}

    def _make_callable(self, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Callable[..., Any]:
        with self._lock:
            run = self._callables.get((feeds, fetches))
            if run is not None:
                return run
            make = getattr(self._session, "_make_callable_from_options", None)
            if make is not None:
                # Session::MakeCallable: ~25 us a call against ~150 us for session.run (which
                # make_callable(feed_list=...) wraps), and no Python-side shape check, like TF Serving.
                run = make(self._callable_options(feed=list(feeds), fetch=list(fetches)))
            else:
                session = self._session

                def run(*values: np.ndarray) -> Any:
                    return session.run(list(fetches), feed_dict=dict(zip(feeds, values, strict=True)))

            self._callables[(feeds, fetches)] = run
            return run

    def close(self) -> None:
        with self._lock:
            self._callables.clear()
        self._session.close()


class SavedModelServable:
    """A loaded SavedModel version; ``run`` is safe to call from several threads."""

    def __init__(
        self,
        path: str,
        signatures: dict[str, SignatureInfo],
        defaults: dict[str, dict[str, np.ndarray]],
        runner: _FunctionRunner | _SessionRunner,
    ) -> None:
        self.path = path
        self._signatures = signatures
        self._defaults = defaults
        self._runner: _FunctionRunner | _SessionRunner | None = runner
        self.runner = runner.kind
        self.warmup_records = 0
        self.warmup_latency_s = 0.0

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        """SignatureDefs by key, every one the meta graph declares."""
        return self._signatures

    def run(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run a signature; aliases are checked and errors worded as TF Serving words them."""
        name = signature_name or DEFAULT_SIGNATURE
        signature = find_signature(self._signatures, name)
        bound = bind_inputs(signature, inputs, self._defaults.get(name))
        outputs = select_outputs(signature, output_keys)
        runner = self._runner
        if runner is None:
            raise FailedPrecondition(f"The SavedModel at {self.path} was unloaded.")
        tf = _tf()
        try:
            return runner.call(name, signature, bound, outputs)
        except (tf.errors.OpError, TypeError, ValueError) as exc:
            raise tf_error(exc) from exc

    def close(self) -> None:
        """Release the session or the loaded functions."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()


def load_saved_model(
    path: str,
    *,
    tags: Sequence[str] = ("serve",),
    session_config: SessionOptions | None = None,
    warmup: bool = True,
    num_request_iterations_for_warmup: int = 0,
    runner: Runner = "auto",
) -> SavedModelServable:
    """Load the SavedModel in a version folder, then replay its warmup requests.

    Args:
        path: The version folder (``saved_model.pb`` or ``.pbtxt`` and ``variables/``).
        tags: The meta graph's tag set (``--saved_model_tags``); empty means ``serve``.
        session_config: Threading and GPU memory options; None keeps TensorFlow's defaults.
        warmup: Replay ``assets.extra/tf_serving_warmup_requests`` (``--enable_model_warmup``).
        num_request_iterations_for_warmup: Times each warmup record runs; 0 means once.
        runner: ``auto`` runs TF2 SavedModels (those with an object graph) through
            ``tf.saved_model.load`` functions and TF1 ones in a session; ``function`` or
            ``session`` force one (``function`` still falls back to a session when loading fails).

    Returns:
        The servable; ``runner`` says which runner serves it, ``warmup_records`` how many
        warmup records ran and ``warmup_latency_s`` how long they took.

    Raises:
        TfServeError: With TensorFlow's code and message when the folder cannot be loaded
            or a warmup request fails.
    """
    tags = tuple(tags) or ("serve",)
    options = session_config or SessionOptions()
    if session_config is not None:
        configure_tensorflow(session_config)
    meta_graph = find_meta_graph(read_saved_model(path), tags)
    signatures = signatures_of(meta_graph)
    tf = _tf()
    defaults = {
        key: {a: tf.make_ndarray(t) for a, t in sig.defaults.items()}
        for key, sig in meta_graph.signature_def.items()
        if sig.defaults
    }
    chosen: _FunctionRunner | _SessionRunner | None = None
    if runner == "function" or (runner == "auto" and len(meta_graph.object_graph_def.nodes) > 0):
        try:
            chosen = _FunctionRunner(path, tags)
        except (tf.errors.OpError, ValueError, TypeError, KeyError, AssertionError) as exc:
            log.warning("tf.saved_model.load failed for %s (%s); serving it from a session", path, exc)
    try:
        chosen = chosen or _SessionRunner(path, tags, options)
    except (tf.errors.OpError, ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        raise _load_error(exc) from exc
    servable = SavedModelServable(path, signatures, defaults, chosen)
    if warmup:
        try:
            servable.warmup_records, servable.warmup_latency_s = run_warmup(
                servable, path, num_request_iterations_for_warmup
            )
        except BaseException:
            servable.close()
            raise
    return servable


def _load_error(exc: BaseException) -> TfServeError:
    error = tf_error(exc)
    if not isinstance(exc, _tf().errors.OpError):
        return TfServeError(error.message, code=ErrorCode.UNKNOWN)
    return error


def load_version(path: str, options: LoadOptions | None = None) -> Servable:
    """Load one version folder: ``model.tflite`` when preferred and present, else the SavedModel.

    Args:
        path: The version folder.
        options: Tags, TFLite preference, session settings and warmup flags.

    Returns:
        A ``TfLiteServable`` or a ``SavedModelServable``.

    Raises:
        TfServeError: NOT_FOUND when the folder holds no SavedModel (yet), or the load's error.
    """
    options = options or LoadOptions()
    if options.prefer_tflite and os.path.isfile(os.path.join(path, "model.tflite")):
        from tfserve_lab.core.servables.tflite import load_tflite_model  # here: tflite imports this module

        return load_tflite_model(
            path,
            warmup=options.warmup,
            num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
            num_interpreters=options.tflite_interpreters,
        )
    return load_saved_model(
        path,
        tags=options.tags,
        session_config=options.session,
        warmup=options.warmup,
        num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
        runner=options.runner,
    )
