"""Shadow traffic: a copy of each live predict request sent to a candidate version, whose answer is only recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfserve_lab.core.registry import Registry, ServableHandle
from tfserve_lab.core.types import ModelSpec
from tfserve_lab.errors import TfServeError

__all__ = ["SHADOW_LOG_SIZE", "ShadowRecord", "ShadowTraffic"]

log = logging.getLogger("tfserve_lab")

SHADOW_LOG_SIZE = 2000

ModelCall = Callable[
    [ServableHandle, str, Mapping[str, np.ndarray], Sequence[str] | None], Awaitable[dict[str, np.ndarray]]
]


@dataclass(frozen=True)
class ShadowRecord:
    """One live request and the shadow candidate's answer to the same inputs."""

    live_version: int
    shadow_version: int
    inputs: dict[str, np.ndarray]
    live_outputs: dict[str, np.ndarray]
    shadow_outputs: dict[str, np.ndarray]
    live_runtime_s: float
    shadow_runtime_s: float


class ShadowTraffic:
    """Runs the shadow copies on the engine loop and keeps the last ``SHADOW_LOG_SIZE`` answer pairs per model."""

    def __init__(self, registry: Registry, run: ModelCall) -> None:
        self._registry = registry
        self._run = run
        self._records: dict[str, deque[ShadowRecord]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def records(self, model: str) -> list[ShadowRecord]:
        """The recorded (live, shadow) answer pairs of ``model``, oldest first."""
        return list(self._records.get(model, ()))

    def send(
        self,
        live: ServableHandle,
        candidate: int,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        runtime: float,
    ) -> None:
        """Send a copy of a live request to version ``candidate``; loop thread."""

        async def run() -> None:
            try:
                with self._registry.acquire(ModelSpec(live.model, candidate)) as handle:
                    _, info = handle.signature(signature)
                    feed = dict(inputs)
                    if len(feed) == 1 and len(info.inputs) == 1 and next(iter(feed)) not in info.inputs:
                        # One input under another name (Keras numbers unnamed inputs per process).
                        feed = {next(iter(info.inputs)): next(iter(feed.values()))}
                    started = time.perf_counter()
                    shadow_outputs = await self._run(handle, signature, feed, None)
                    elapsed = time.perf_counter() - started
            except TfServeError as exc:
                log.warning("Shadow request to %s version %d failed: %s", live.model, candidate, exc.message)
                return
            records = self._records.setdefault(live.model, deque(maxlen=SHADOW_LOG_SIZE))
            records.append(
                ShadowRecord(live.version, candidate, dict(inputs), outputs, shadow_outputs, runtime, elapsed)
            )

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
