"""The two ways a SavedModel runs: TF2 signature functions and TF1 sessions fed by tensor name."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tfserve_lab.core.servables.tf_setup import (
    SessionOptions,
    import_tensorflow,
    quiet_tensorflow_logs,
    session_config_proto,
)
from tfserve_lab.core.types import SignatureInfo
from tfserve_lab.errors import FailedPrecondition

__all__ = ["FunctionRunner", "SessionRunner"]


class FunctionRunner:
    """TF2: ``tf.saved_model.load`` signature functions (eager, thread-safe)."""

    kind = "function"

    def __init__(self, path: str, tags: Sequence[str]) -> None:
        tf = import_tensorflow()
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
        """Run the signature function ``name`` on checked inputs; return the requested outputs."""
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
        """Drop the loaded functions."""
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


class SessionRunner:
    """TF1: a ``tf.compat.v1.Session`` on its own graph, fed and fetched by tensor names."""

    kind = "session"

    def __init__(self, path: str, tags: Sequence[str], options: SessionOptions) -> None:
        tf = import_tensorflow()
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
        """Feed checked inputs by tensor name; fetch the requested outputs."""
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
        """Close the session and drop its callables."""
        with self._lock:
            self._callables.clear()
        self._session.close()
