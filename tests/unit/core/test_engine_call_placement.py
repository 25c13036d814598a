"""Where Engine runs a model call: inline on its loop, or on a batch thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.loop import loop_is_idle
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, SignatureInfo
from tfserve_lab.core.watcher import WatcherOptions

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
    with engine.acquire(ModelSpec("m")) as handle:
        result = await engine.predict(handle, "", {"x": np.array([[1.0]], np.float32)})
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
    # The other requests are ready to run (or a call is on a thread): overlap wins, no call blocks the loop.
    assert on_threads(model.threads) == [True] * 4


def test_long_calls_never_block_the_loop(repo: Path) -> None:
    model = SleepyModel(0.012)  # over IDLE_INLINE_BELOW times the limit

    async def one_at_a_time(engine: Engine) -> None:
        for _ in range(3):
            await predict(engine)

    serve(model, repo, one_at_a_time)
    assert on_threads(model.threads) == [True] * 3


def test_loop_is_idle_sees_ready_callbacks_and_waiting_io() -> None:
    async def check() -> None:
        loop = asyncio.get_running_loop()
        assert loop_is_idle(loop)
        loop.call_soon(lambda: None)
        assert not loop_is_idle(loop)
        await asyncio.sleep(0)
        assert loop_is_idle(loop)
        ours, theirs = socket.socketpair()
        loop.add_reader(ours, ours.recv, 1)
        try:
            theirs.send(b"x")  # readable now; the loop has not had a turn to read it
            assert not loop_is_idle(loop)
            await asyncio.sleep(0.01)
            assert loop_is_idle(loop)
        finally:
            loop.remove_reader(ours)
            ours.close()
            theirs.close()

    asyncio.run(check())
