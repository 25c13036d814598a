"""TensorFlow's process-wide set-up: the lazy import, session options, threads and GPU memory, quiet logs."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SessionOptions",
    "configure_tensorflow",
    "import_tensorflow",
    "quiet_tensorflow_logs",
    "session_config_proto",
]

log = logging.getLogger(__name__)


def import_tensorflow() -> Any:
    """The ``tensorflow`` module, imported on first use: importing TensorFlow takes seconds."""
    import tensorflow as tf

    return tf


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
        tf = import_tensorflow()
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


@contextlib.contextmanager
def quiet_tensorflow_logs() -> Iterator[None]:
    """TensorFlow's Python log lines below WARNING, and its "is deprecated" notices, hidden for the block.

    Loads and exports log lines (``Assets written to``, ``Restoring parameters``) that say what the
    caller reports better; the logger is process-wide, so this is kept to the call that logs them.
    """
    tf = import_tensorflow()
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
