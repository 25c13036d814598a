"""A served model's batching parameters, read and changed while it serves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tfserve_lab.api.session import current, require_model, running_engine
from tfserve_lab.config import BatchingConfig
from tfserve_lab.errors import InvalidArgument

if TYPE_CHECKING:
    from tfserve_lab.core.engine import Engine

__all__ = ["batching", "set_batching"]


def set_batching(name: str, params: BatchingConfig | str | Mapping[str, Any] | None) -> BatchingConfig | None:
    """Batch model ``name`` with new ``BatchingParameters`` while it serves: no restart, no request lost.

    Args:
        name: A served model.
        params: A ``BatchingConfig``, a ``BatchingParameters`` text proto, a dict of its fields
            (``{"max_batch_size": 32, "batch_timeout_micros": 2000}``; TF Serving's defaults for the
            rest), or None for the options the engine started with.

    Returns:
        The options the model's requests get now (None: not batched).
    """
    from tfserve_lab.batching_params import parse_batching_parameters

    require_model(name)
    if isinstance(params, str):
        config: BatchingConfig | None = parse_batching_parameters(params, source="batching parameters")
    elif isinstance(params, Mapping):
        given: dict[str, Any] = {k: tuple(v) if k == "allowed_batch_sizes" else v for k, v in params.items()}
        try:
            config = BatchingConfig(**given)
        except TypeError as exc:
            raise InvalidArgument(f"Not a BatchingParameters field: {exc}") from None
    else:
        config = params

    # On the engine's loop: the batcher's queues live there.
    async def apply(engine: Engine) -> BatchingConfig | None:
        engine.set_batching(name, config)
        return engine.batching(name)

    return current().call(apply)


def batching(name: str) -> BatchingConfig | None:
    """The batching options model ``name``'s requests get now (None: not batched)."""
    return running_engine().batching(name)
