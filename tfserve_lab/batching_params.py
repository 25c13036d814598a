"""BatchingParameters text protos (``--batching_parameters_file``) -> BatchingConfig, with TF Serving's defaults."""

from __future__ import annotations

import os

from tfserve_lab.config import BatchingConfig
from tfserve_lab.errors import ConfigError, ErrorCode

__all__ = ["batching_to_text", "check_batching_config", "parse_batching_parameters", "read_batching_parameters"]

# TF Serving's defaults for absent fields (shared_batch_scheduler.h QueueOptions, bundle_factory_util.cc).
_DEFAULT_MAX_BATCH_SIZE = 1000
_DEFAULT_BATCH_TIMEOUT_MICROS = 0
_DEFAULT_MAX_ENQUEUED_BATCHES = 10
_DEFAULT_THREAD_POOL_NAME = "batch_threads"


def parse_batching_parameters(text: str, *, source: str = "batching parameters") -> BatchingConfig:
    """Parse a ``BatchingParameters`` text proto (scalars are wrappers: ``max_batch_size { value: 128 }``).

    Args:
        text: the text proto.
        source: the file name TF Serving's parse error names.

    Returns:
        The configuration, TF Serving's defaults filling absent fields, checked with ``validate()``.

    Raises:
        ConfigError: ``Invalid protobuf file: '<source>'`` when the text does not parse, or the
            message ``BatchingConfig.validate`` gives for parameters TF Serving refuses.
    """
    from google.protobuf import text_format

    from tfserve_lab.protos.session_bundle_config_pb2 import BatchingParameters

    message = BatchingParameters()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        # TF's ParseProtoTextFile says only this; the parser's detail stays on the exception chain.
        raise ConfigError(f"Invalid protobuf file: '{source}'") from exc

    def wrapped(name: str, default: int) -> int:
        return int(getattr(message, name).value) if message.HasField(name) else default

    config = BatchingConfig(
        max_batch_size=wrapped("max_batch_size", _DEFAULT_MAX_BATCH_SIZE),
        batch_timeout_micros=wrapped("batch_timeout_micros", _DEFAULT_BATCH_TIMEOUT_MICROS),
        max_enqueued_batches=wrapped("max_enqueued_batches", _DEFAULT_MAX_ENQUEUED_BATCHES),
        # port::MaxParallelism(): the number of CPUs.
        num_batch_threads=wrapped("num_batch_threads", os.cpu_count() or 1),
        thread_pool_name=(
            message.thread_pool_name.value if message.HasField("thread_pool_name") else _DEFAULT_THREAD_POOL_NAME
        ),
        allowed_batch_sizes=tuple(int(size) for size in message.allowed_batch_sizes),
        pad_variable_length_inputs=bool(message.pad_variable_length_inputs),
        enable_large_batch_splitting=(
            bool(message.enable_large_batch_splitting.value)
            if message.HasField("enable_large_batch_splitting")
            else False
        ),
        # Absent means "max_batch_size" (BatchingConfig.execution_batch_size applies that).
        max_execution_batch_size=(
            int(message.max_execution_batch_size.value) if message.HasField("max_execution_batch_size") else None
        ),
    )
    config.validate()
    return config


def read_batching_parameters(path: str | os.PathLike[str]) -> BatchingConfig:
    """Read and parse a ``--batching_parameters_file``.

    Raises:
        ConfigError: the file cannot be read (NOT_FOUND when it is missing, in TF's ``{file}; {reason}``
            form) or does not parse (see ``parse_batching_parameters``).
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        code = ErrorCode.NOT_FOUND if isinstance(exc, FileNotFoundError) else ErrorCode.INVALID_ARGUMENT
        raise ConfigError(f"{name}; {exc.strerror}", code=code) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Invalid protobuf file: '{name}'") from exc
    return parse_batching_parameters(text, source=name)


def check_batching_config(config: BatchingConfig) -> None:
    """Reject what TF Serving refuses when it adds a batching queue (``AddQueueAfterRewritingOptions``).

    Raises:
        ConfigError: with TF Serving's message for the first bad option.
    """
    config.validate()
    if config.num_batch_threads < 1:
        raise ConfigError(f"num_batch_threads must be positive; was {config.num_batch_threads}")
    if config.batch_timeout_micros < 0:
        raise ConfigError(f"batch_timeout_micros must be non-negative; was {config.batch_timeout_micros}")
    if config.enable_large_batch_splitting:
        # Without splitting TF silently rewrites max_enqueued_batches 0 to 1; with it, 0 is an error.
        if config.max_enqueued_batches < 1:
            raise ConfigError(f"max_enqueued_batches must be positive; was {config.max_enqueued_batches}")
        if config.max_batch_size < config.execution_batch_size:
            # TF StrCats the three values onto the sentence without separators; kept for wire fidelity.
            raise ConfigError(
                "When enable_large_batch_splitting is true, input_batch_size_limit must be greater than or equal "
                f"to max_execution_batch_size.1{config.max_batch_size}{config.execution_batch_size}"
            )


def batching_to_text(config: BatchingConfig) -> str:
    """A ``BatchingParameters`` text proto (``--batching_parameters_file``) with every field written out.

    Every field is explicit, ``num_batch_threads`` included, so the cluster batches
    as the engine does rather than by its own machine's defaults. The inverse is
    ``tfserve_lab.batching_params.parse_batching_parameters``.
    """
    from google.protobuf import text_encoding

    lines = [
        f"max_batch_size {{ value: {config.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {config.batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {config.max_enqueued_batches} }}",
        f"num_batch_threads {{ value: {config.num_batch_threads} }}",
        f'thread_pool_name {{ value: "{text_encoding.CEscape(config.thread_pool_name, as_utf8=True)}" }}',
        f"enable_large_batch_splitting {{ value: {str(config.enable_large_batch_splitting).lower()} }}",
    ]
    if config.max_execution_batch_size is not None:
        lines.append(f"max_execution_batch_size {{ value: {config.max_execution_batch_size} }}")
    lines += [f"allowed_batch_sizes: {size}" for size in config.allowed_batch_sizes]
    lines.append(f"pad_variable_length_inputs: {str(config.pad_variable_length_inputs).lower()}")
    return "\n".join(lines) + "\n"
