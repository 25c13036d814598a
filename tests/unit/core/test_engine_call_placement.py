"""Where a model call runs (``core/placement.py``): inline on the engine loop, or on a model thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.call_costs import CallCosts
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.placement import CallPlacement
from tfserve_lab.core.requests import ArrayInputs
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, SignatureInfo
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.errors import Unavailable

SIG = SignatureInfo("tensorflow/serving/predict", {"x": tensor_info("x:0")}, {"y": tensor_info("y:0")})
LIMIT = 0.001  # inline_calls_below_s: a 3 ms call is not cheap, but short enough to run inline when idle


class SleepyModel:
    """A model call of a fixed duration that notes the thread it ran on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    def __call__(self, path: str) -> CallableServable:
        def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.threads.append(threading.current_thread().name)
            time.sleep(self.seconds)
            return {"y": inputs["x"] + 1}

        return CallableServable({"serving_default": (SIG, run)})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "m" / "1").mkdir(parents=True)
    return tmp_path / "m"


def serve(model: SleepyModel, repo: Path, requests: Callable[[Engine], Awaitable[None]]) -> None:
    """Runs ``requests`` against an engine serving ``model``, on a fresh asyncio loop."""
    engine = Engine(model, EngineOptions(inline_calls_below_s=LIMIT, watcher=WatcherOptions(poll_wait_seconds=0)))
    engine.load([ModelConfig("m", str(repo))])
    try:
        asyncio.run(requests(engine))
    finally:
        engine.stop()


async def predict(engine: Engine) -> float:
    result = await engine.predict(ModelSpec("m"), ArrayInputs({"x": np.array([[1.0]], np.float32)}))
    return float(result.outputs["y"][0, 0])


def on_threads(names: list[str]) -> list[bool]:
    return [name.startswith("tfserve-batch") for name in names]


def test_an_idle_loop_runs_moderate_calls_itself(repo: Path) -> None:
    model = SleepyModel(0.003)

    async def one_at_a_time(engine: Engine) -> None:
        for _ in range(4):
            assert await predict(engine) == 2.0

    serve(model, repo, one_at_a_time)
    # Unmeasured, the first call goes to a thread; measured at 3 ms with nothing to overlap, the rest run inline.
    assert on_threads(model.threads) == [True, False, False, False]


def test_concurrent_calls_keep_the_threads(repo: Path) -> None:
    model = SleepyModel(0.003)

    async def measured_then_concurrent(engine: Engine) -> None:
        await predict(engine)
        assert await asyncio.gather(predict(engine), predict(engine), predict(engine)) == [2.0] * 3

    serve(model, repo, measured_then_concurrent)
    # The other requests were ready on the loop: they reach the engine before the first call would run
    # inline, so overlap wins and no call blocks the loop.
    assert on_threads(model.threads) == [True] * 4


def test_long_calls_never_block_the_loop(repo: Path) -> None:
    model = SleepyModel(0.012)  # over IDLE_INLINE_BELOW times the limit

    async def one_at_a_time(engine: Engine) -> None:
        for _ in range(3):
            await predict(engine)

    serve(model, repo, one_at_a_time)
    assert on_threads(model.threads) == [True] * 3


def test_a_cheap_call_runs_inline_and_a_shut_down_pool_refuses_the_rest() -> None:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfserve-batch")
    placement = CallPlacement(pool, CallCosts(LIMIT))
    threads: list[str] = []

    def job() -> int:
        threads.append(threading.current_thread().name)
        return 7

    async def calls() -> None:
        assert await placement.run("k", job, lambda: False) == 7  # unmeasured: a thread
        assert await placement.run("k", job, lambda: False) == 7  # measured cheap: inline
        pool.shutdown()
        with pytest.raises(Unavailable) as info:
            await placement.run("slow", job, lambda: False)
        assert info.value.message == "The model threads are shut down; the server is stopping."
        # A batch measured cheap still runs inline: its future is done when start returns.
        future = placement.start("k", job, lambda: 0.0)
        assert future.done()
        assert future.result() == 7

    asyncio.run(calls())
    assert on_threads(threads) == [True, False, False]
