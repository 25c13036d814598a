"""Model calls: batched or not (TF Serving's batching options, per model), then placed by ``CallPlacement``.

Loop-thread only, except ``close_batches`` and ``shutdown``.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tfserve_lab.batching_params import check_batching_config, read_batching_parameters
from tfserve_lab.config import BatchingConfig
from tfserve_lab.core.batching import Batcher
from tfserve_lab.core.call_costs import CallCosts
from tfserve_lab.core.events import BatchRun
from tfserve_lab.core.placement import CallPlacement
from tfserve_lab.core.registry import ServableHandle
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.watcher import Loader
from tfserve_lab.errors import TfServeError

__all__ = ["PER_MODEL_BATCHING_FILE", "ModelCalls"]

# TF Serving's per-model batching parameters, read from the version folder (--enable_per_model_batching_parameters).
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"

# The most batch threads a live batching change may ask for (the pool makes its threads as calls need them).
_MAX_BATCH_THREADS = 64


class ModelCalls:
    """Runs a version's signature on arrays, through the batcher when its model is batched."""

    def __init__(
        self,
        batching: BatchingConfig | None,
        *,
        per_model_batching: bool,
        num_model_threads: int,
        inline_calls_below_s: float,
        on_batch: Callable[[BatchRun], None],
    ) -> None:
        self._batching = batching
        # With batching on: each version batches with its own batching_params.pbtxt, versions without one
        # are not batched, and only the batch threads come from ``batching`` (TF Serving's rule).
        self._per_model = batching is not None and per_model_batching
        self._model_batching: weakref.WeakKeyDictionary[Servable, BatchingConfig] = weakref.WeakKeyDictionary()
        threads = max(1, batching.num_batch_threads if batching else num_model_threads)
        self._executors = [ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tfserve-batch")]
        self._executor_size = threads
        self._on_batch = on_batch
        costs = CallCosts(inline_calls_below_s)
        self.placement = CallPlacement(self._executors[0], costs)
        # The batcher's own placement: the same pool at start-up, a larger one if batching grows while serving
        # (unbatched calls keep the start-up pool).
        self._batch_placement = CallPlacement(self._executors[0], costs)
        self._batcher = Batcher(batching, self._batch_placement, on_batch) if batching is not None else None
        # Batching options set while serving, per model (``set_batching``); read without a lock on the loop.
        self._overrides: dict[str, BatchingConfig] = {}

    def loader(self, loader: Loader) -> Loader:
        """``loader``, also reading a version's own batching parameters when batching is per model."""
        if not self._per_model:
            return loader

        def load(path: str) -> Servable:
            servable = loader(path)
            params = os.path.join(path, PER_MODEL_BATCHING_FILE)
            if os.path.isfile(params):
                try:
                    config = read_batching_parameters(params)
                    check_batching_config(config)
                except TfServeError:
                    servable.close()
                    raise
                self._model_batching[servable] = config
            return servable

        return load

    async def run(
        self,
        handle: ServableHandle,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str] | None,
        alone: Callable[[], bool] | None = None,
    ) -> dict[str, np.ndarray]:
        """The outputs of one call of ``signature`` on ``inputs``.

        ``alone``: whether no other request is in the engine now (see ``CallPlacement.run``); None: never.
        """
        batcher = self._batcher
        if batcher is not None:
            config = self._overrides.get(handle.model) if self._overrides else None
            if config is not None or not self._per_model:
                return await batcher.submit(handle, signature, inputs, output_keys, config)
            config = self._model_batching.get(handle.servable)
            if config is not None:
                return await batcher.submit(handle, signature, inputs, output_keys, config)
        servable = handle.servable
        # Batched models always hand off: the batcher keeps its threads for the batches.
        solo = alone if alone is not None and batcher is None else _never
        return await self.placement.run(
            (id(servable), signature), lambda: servable.run(signature, inputs, output_keys), solo
        )

    def set_batching(self, model: str, config: BatchingConfig | None) -> None:
        """Batch ``model``'s calls with ``config`` from now on (None: back to the start-up options).

        Requests already queued finish with the options they were queued under. ``num_batch_threads``
        is shared by every model, as TF Serving's batch threads are: it applies to all.

        Raises:
            ConfigError: options TF Serving would refuse.
        """
        if config is None:
            self._overrides.pop(model, None)
            if self._batcher is not None and self._batching is not None:
                self._batcher.set_threads(self._batching.num_batch_threads)
            return
        check_batching_config(config)
        threads = min(config.num_batch_threads, _MAX_BATCH_THREADS)
        if self._batcher is None:
            self._batch_placement.use_executor(self._larger_executor())
            self._batcher = Batcher(config, self._batch_placement, self._on_batch)
        elif threads > self._executor_size and len(self._executors) == 1:
            # More threads than the start-up pool has: batches go to a larger pool from now on.
            self._batch_placement.use_executor(self._larger_executor())
        self._batcher.set_threads(threads)
        self._overrides[model] = config

    def batching(self, model: str) -> BatchingConfig | None:
        """The batching options ``model``'s calls get now (None: not batched)."""
        override = self._overrides.get(model)
        return override if override is not None else self._batching

    def _larger_executor(self) -> ThreadPoolExecutor:
        """Threads for batches when batching changes while serving (made as calls need them)."""
        executor = ThreadPoolExecutor(max_workers=_MAX_BATCH_THREADS, thread_name_prefix="tfserve-batch")
        self._executors.append(executor)
        self._executor_size = _MAX_BATCH_THREADS
        return executor

    def close_batches(self) -> None:
        """Refuse new batched calls and run the queued ones without waiting for their timeouts; any thread."""
        if self._batcher is not None:
            self._batcher.close()

    def shutdown(self) -> None:
        """Stop the model threads once the calls running on them return; any thread."""
        for executor in self._executors:
            executor.shutdown(wait=True)


def _never() -> bool:
    return False
