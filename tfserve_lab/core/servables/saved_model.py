"""SavedModel versions: loading one as TF Serving loads it, and the servable that runs its signatures."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from tfserve_lab.core.servables.checks import bind_inputs, find_signature, select_outputs
from tfserve_lab.core.servables.saved_model_reader import find_meta_graph, read_saved_model, signatures_of
from tfserve_lab.core.servables.tf_errors import tf_error
from tfserve_lab.core.servables.tf_runners import FunctionRunner, SessionRunner
from tfserve_lab.core.servables.tf_setup import SessionOptions, configure_tensorflow, import_tensorflow
from tfserve_lab.core.servables.warmup import run_warmup
from tfserve_lab.core.types import DEFAULT_SIGNATURE, SignatureInfo
from tfserve_lab.errors import ErrorCode, FailedPrecondition, TfServeError

__all__ = ["RunnerKind", "SavedModelServable", "load_saved_model"]

log = logging.getLogger(__name__)

RunnerKind = Literal["auto", "function", "session"]
"""Which runner serves a SavedModel: ``auto`` picks by the SavedModel's kind (TF2 or TF1)."""


class SavedModelServable:
    """A loaded SavedModel version; ``run`` is safe to call from several threads."""

    def __init__(
        self,
        path: str,
        signatures: dict[str, SignatureInfo],
        defaults: dict[str, dict[str, np.ndarray]],
        runner: FunctionRunner | SessionRunner,
    ) -> None:
        self.path = path
        self._signatures = signatures
        self._defaults = defaults
        self._runner: FunctionRunner | SessionRunner | None = runner
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
        tf = import_tensorflow()
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
    runner: RunnerKind = "auto",
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
    tf = import_tensorflow()
    defaults = {
        key: {a: tf.make_ndarray(t) for a, t in sig.defaults.items()}
        for key, sig in meta_graph.signature_def.items()
        if sig.defaults
    }
    chosen: FunctionRunner | SessionRunner | None = None
    if runner == "function" or (runner == "auto" and len(meta_graph.object_graph_def.nodes) > 0):
        try:
            chosen = FunctionRunner(path, tags)
        except (tf.errors.OpError, ValueError, TypeError, KeyError, AssertionError) as exc:
            log.warning("tf.saved_model.load failed for %s (%s); serving it from a session", path, exc)
    try:
        chosen = chosen or SessionRunner(path, tags, options)
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
    if not isinstance(exc, import_tensorflow().errors.OpError):
        return TfServeError(error.message, code=ErrorCode.UNKNOWN)
    return error
