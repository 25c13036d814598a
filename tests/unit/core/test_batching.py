"""Batcher and BatchingParameters: merging, padding, splitting, refusals and cancellation, without TensorFlow."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfserve_lab.batching_params import parse_batching_parameters, read_batching_parameters
from tfserve_lab.config import BatchingConfig, ModelConfig
from tfserve_lab.core.batch_merge import merge_inputs, round_to_allowed_size, split_outputs
from tfserve_lab.core.batching import Batcher
from tfserve_lab.core.call_costs import CallCosts
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.events import BatchRun, EngineEvent
from tfserve_lab.core.loop import EngineLoop
from tfserve_lab.core.placement import CallPlacement
from tfserve_lab.core.requests import ArrayInputs
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, SignatureInfo
from tfserve_lab.errors import ConfigError, ErrorCode, FailedPrecondition, InvalidArgument, Unavailable

WORK_S = 0.05  # what one model call costs where a test measures times

SIG = SignatureInfo(
    "tensorflow/serving/predict",
    {"x": tensor_info("x:0", shape=(-1, 3))},
    {"y": tensor_info("y:0", shape=(-1, 3)), "total": tensor_info("total:0", shape=(-1,))},
)


class Model:
    """y = 2x and total = row sum; records batch sizes; a gate holds model calls; negative rows fail."""

    def __init__(self, fn: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]] | None = None) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.sizes: list[int] = []
        self._fn = fn
        self.servable = CallableServable({"serving_default": (SIG, self._call)})

    def _call(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.sizes.append(len(inputs["x"]))
        self.started.set()
        assert self.gate.wait(5)
        if self._fn is not None:
            return self._fn(inputs)
        x = inputs["x"]
        if (x < 0).any():
            raise InvalidArgument("negative input")
        return {"y": x * 2, "total": x.sum(axis=1)}

    @property
    def seen(self) -> list[np.ndarray]:
        """The merged ``x`` of each model call."""
        return [inputs["x"] for _, inputs in self.servable.calls]


@dataclass
class Handle:
    """Stands in for ServableHandle (the batcher reads model, version and servable)."""

    servable: CallableServable
    model: str = "m"
    version: int = 1


@dataclass
class Rig:
    """A batcher over one Model, with the BatchRun events it emitted."""

    model: Model
    batcher: Batcher
    handle: Handle
    runs: list[BatchRun] = field(default_factory=list)

    async def submit(self, x: np.ndarray, *, output_keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        return await self.batcher.submit(self.handle, "serving_default", {"x": x}, output_keys)  # type: ignore[arg-type]

    async def block(self, rows: int = 1) -> asyncio.Task[dict[str, np.ndarray]]:
        """Start a request whose model call holds the only batch thread until ``release``."""
        self.model.gate.clear()
        task = asyncio.ensure_future(self.submit(rows_of(99, rows)))
        await until(self.model.started)
        return task

    def release(self) -> None:
        self.model.gate.set()


@pytest.fixture
def placement() -> Iterator[CallPlacement]:
    """Every batch on a thread (no call counts as cheap), so a gated model call holds a thread, never the loop."""
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-batch")
    yield CallPlacement(pool, CallCosts(0.0))
    pool.shutdown(wait=True)


@pytest.fixture
def rig(placement: CallPlacement) -> Callable[..., Rig]:
    def make(model: Model | None = None, **options: Any) -> Rig:
        model = model or Model()
        options.setdefault("num_batch_threads", 1)
        runs: list[BatchRun] = []
        batcher = Batcher(BatchingConfig(**options), placement, runs.append)
        return Rig(model, batcher, Handle(model.servable), runs)

    return make


def rows_of(tag: int, count: int) -> np.ndarray:
    """``count`` rows that name their request and row: [tag*100 + row, 0.5, -0.0]."""
    return np.array([[tag * 100 + r, 0.5, 0.0] for r in range(count)], np.float32).reshape(count, 3)


async def until(event: threading.Event) -> None:
    """Wait, without blocking the loop, until a batch thread sets ``event``."""
    if not await asyncio.to_thread(event.wait, 5):
        raise AssertionError("the model was never called")


async def settle() -> None:
    """Let tasks created just now run up to their first wait (their submit enqueues).

    Not a sleep: ``sleep(0)`` yields one loop pass, and a task created before it has run its first
    step after it, by asyncio's FIFO scheduling.
    """
    for _ in range(3):
        await asyncio.sleep(0)


# -- merging and delivery -----------------------------------------------------


def test_concurrent_requests_get_their_own_rows_from_one_merged_call(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=64)
    sizes = [1, 3, 2, 5, 1, 4]

    async def main() -> list[dict[str, np.ndarray]]:
        blocker = await r.block()
        tasks = [asyncio.ensure_future(r.submit(rows_of(i, n))) for i, n in enumerate(sizes)]
        await settle()
        r.release()
        await blocker
        return await asyncio.gather(*tasks)

    results = asyncio.run(main())
    for i, (n, out) in enumerate(zip(sizes, results, strict=True)):
        np.testing.assert_array_equal(out["y"], rows_of(i, n) * 2)
        np.testing.assert_array_equal(out["total"], rows_of(i, n).sum(axis=1))
    assert r.model.sizes == [1, sum(sizes)]
    assert [(run.input_size, run.padded_size) for run in r.runs] == [(1, 1), (16, 16)]
    assert all(run.model == "m" and run.version == 1 and run.signature == "serving_default" for run in r.runs)


def test_a_batch_run_reports_the_mean_queuing_time_and_the_model_call_time(rig: Callable[..., Rig]) -> None:
    """Bounds from clocks read around the requests and inside the model call, which a wrong measure breaks."""
    calls: list[tuple[float, float]] = []  # (entry, exit) of each model call, on the loop's clock

    def work(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        entry = time.monotonic()
        time.sleep(WORK_S)  # the workload: a model call that computes for WORK_S
        calls.append((entry, time.monotonic()))
        return {"y": inputs["x"] * 2, "total": inputs["x"].sum(axis=1)}

    r = rig(Model(work), max_batch_size=64)

    async def main() -> tuple[float, float, float, float]:
        loop = asyncio.get_running_loop()
        blocker = await r.block()
        first_queued = loop.time()
        tasks = [asyncio.ensure_future(r.submit(rows_of(i, 2))) for i in range(3)]
        await settle()
        all_queued = loop.time()
        r.release()
        released = loop.time()
        await asyncio.gather(blocker, *tasks)
        return first_queued, all_queued, released, loop.time()

    first_queued, all_queued, released, done = asyncio.run(main())
    (_, blocker_exit), (batch_entry, batch_exit) = calls
    blocked, merged = r.runs
    assert (merged.input_size, merged.padded_size) == (6, 6)
    # The three requests waited from their submit until the blocker's call ended and theirs began.
    assert blocker_exit - all_queued <= merged.queuing_s <= batch_entry - first_queued
    assert merged.queuing_s >= WORK_S
    # The model call time covers the model's own work and fits between the release and the answers.
    assert batch_exit - batch_entry <= merged.runtime_s <= done - blocker_exit
    assert WORK_S <= blocked.runtime_s <= done - released


def test_requests_beyond_max_batch_size_go_to_the_next_batch(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=4)

    async def main() -> None:
        blocker = await r.block()
        tasks = [asyncio.ensure_future(r.submit(rows_of(i, 2))) for i in range(5)]
        await settle()
        r.release()
        await asyncio.gather(blocker, *tasks)

    asyncio.run(main())
    assert r.model.sizes == [1, 4, 4, 2]


def test_output_filter_and_distinct_input_sets_use_separate_queues(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8)

    async def main() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        blocker = await r.block()
        only_y = asyncio.ensure_future(r.submit(rows_of(1, 2), output_keys=("y",)))
        both = asyncio.ensure_future(r.submit(rows_of(2, 1)))
        await settle()
        r.release()
        await blocker
        return await only_y, await both

    only_y, both = asyncio.run(main())
    assert set(only_y) == {"y"}
    assert set(both) == {"y", "total"}
    assert sorted(r.model.sizes) == [1, 1, 2]


def test_padding_to_allowed_sizes_is_invisible_to_clients(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8, allowed_batch_sizes=(2, 4, 8))

    async def main() -> list[dict[str, np.ndarray]]:
        blocker = await r.block()
        tasks = [asyncio.ensure_future(r.submit(rows_of(i, n))) for i, n in enumerate([2, 3])]
        await settle()
        r.release()
        await blocker
        return await asyncio.gather(*tasks)

    first, second = asyncio.run(main())
    np.testing.assert_array_equal(first["y"], rows_of(0, 2) * 2)
    np.testing.assert_array_equal(second["y"], rows_of(1, 3) * 2)
    assert r.model.sizes == [2, 8]  # the 1-row blocker padded to 2, then 5 rows padded to 8
    merged = r.model.seen[1]
    # TF Serving pads with the first row of the last task's tensor.
    np.testing.assert_array_equal(merged[5:], np.repeat(rows_of(1, 1), 3, axis=0))
    assert [(run.input_size, run.padded_size) for run in r.runs] == [(1, 2), (5, 8)]


def test_timeout_closes_a_batch_that_never_fills(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=100, batch_timeout_micros=30_000, num_batch_threads=2)

    async def main() -> dict[str, np.ndarray]:
        return await asyncio.wait_for(r.submit(rows_of(1, 2)), 5)

    np.testing.assert_array_equal(asyncio.run(main())["y"], rows_of(1, 2) * 2)
    assert r.model.sizes == [2]


def test_a_full_batch_runs_without_waiting_for_the_timeout(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=4, batch_timeout_micros=60_000_000, num_batch_threads=2)

    async def main() -> list[dict[str, np.ndarray]]:
        tasks = [r.submit(rows_of(i, 2)) for i in range(2)]
        return await asyncio.wait_for(asyncio.gather(*tasks), 5)

    asyncio.run(main())
    assert r.model.sizes == [4]


# -- refusals -----------------------------------------------------------------


def test_full_queue_refuses_at_once_with_tf_message(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=2, max_enqueued_batches=2)

    async def main() -> None:
        blocker = await r.block(2)
        queued = [asyncio.ensure_future(r.submit(rows_of(i, 2))) for i in range(2)]
        await settle()
        with pytest.raises(Unavailable) as info:
            await r.submit(rows_of(7, 1))
        assert info.value.code is ErrorCode.UNAVAILABLE
        assert info.value.message == (
            "The batch scheduling queue to which this task was submitted is full; currently 2 batches enqueued "
            "and max_enqueued_batches is 2"
        )
        with pytest.raises(InvalidArgument, match=r"^Task size 3 is larger than maximum input batch size 2$"):
            await r.submit(rows_of(8, 3))
        r.release()
        await asyncio.gather(blocker, *queued)

    asyncio.run(main())
    assert r.model.sizes == [2, 2, 2]


def test_inputs_that_cannot_be_batched_are_refused(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8)
    handle = r.handle

    async def main() -> None:
        submit = r.batcher.submit
        with pytest.raises(InvalidArgument, match=r"^Batching Run\(\) input tensors must have at least one dimension$"):
            await submit(handle, "serving_default", {"x": np.float32(1)}, None)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match=r"must have equal 0th-dimension size$"):
            await submit(handle, "serving_default", {"x": np.zeros((2, 3)), "w": np.zeros(3)}, None)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match=r"must have at least one input tensor$"):
            await submit(handle, "serving_default", {}, None)  # type: ignore[arg-type]

    asyncio.run(main())
    assert r.model.sizes == []


def test_different_shapes_without_padding_fail_that_batch(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8)

    async def main() -> list[Any]:
        blocker = await r.block()
        tasks = [r.submit(np.zeros((1, 3), np.float32)), r.submit(np.zeros((1, 4), np.float32))]
        tasks = [asyncio.ensure_future(t) for t in tasks]
        await settle()
        r.release()
        await blocker
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(e, FailedPrecondition) for e in results)
    assert results[0].message.startswith(
        "Tensors with name 'x' from different tasks have different shapes and padding is turned off. Set "
        "pad_variable_length_inputs to true"
    )


def test_variable_length_inputs_are_padded_with_each_tensors_first_element(rig: Callable[..., Rig]) -> None:
    model = Model(lambda inputs: {"y": inputs["x"] + 0})
    r = rig(model, max_batch_size=8, pad_variable_length_inputs=True)

    async def main() -> list[dict[str, np.ndarray]]:
        blocker = await r.block()
        short = np.array([[7, 8]], np.int64)
        long = np.array([[1, 2, 3, 4]], np.int64)
        tasks = [asyncio.ensure_future(r.submit(short)), asyncio.ensure_future(r.submit(long))]
        await settle()
        r.release()
        await blocker
        return await asyncio.gather(*tasks)

    short_out, long_out = asyncio.run(main())
    np.testing.assert_array_equal(short_out["y"], [[7, 8, 7, 7]])  # outputs keep the padded width, as in TF
    np.testing.assert_array_equal(long_out["y"], [[1, 2, 3, 4]])


def test_wrong_output_batch_size_fails_with_tf_message(rig: Callable[..., Rig]) -> None:
    r = rig(Model(lambda inputs: {"y": np.zeros((1, 3))}), max_batch_size=8)

    async def main() -> None:
        with pytest.raises(FailedPrecondition, match=r"^Batched output tensor's 0th dimension does not equal"):
            await r.submit(rows_of(1, 2))

    asyncio.run(main())


# -- splitting ----------------------------------------------------------------


def test_large_batch_splitting_fills_the_open_batch_then_reassembles_in_order(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=10, enable_large_batch_splitting=True, max_execution_batch_size=4)

    async def main() -> list[dict[str, np.ndarray]]:
        blocker = await r.block()
        small = asyncio.ensure_future(r.submit(rows_of(1, 1)))
        big = asyncio.ensure_future(r.submit(rows_of(2, 7)))
        await settle()
        r.release()
        await blocker
        return await asyncio.gather(small, big)

    small, big = asyncio.run(main())
    np.testing.assert_array_equal(small["y"], rows_of(1, 1) * 2)
    np.testing.assert_array_equal(big["y"], rows_of(2, 7) * 2)
    np.testing.assert_array_equal(big["total"], rows_of(2, 7).sum(axis=1))
    assert r.model.sizes == [1, 4, 4]  # 1 small + 3 rows of big, then the other 4 rows of big


def test_splitting_queue_full_message(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=10, enable_large_batch_splitting=True, max_execution_batch_size=4, max_enqueued_batches=2)

    async def main() -> None:
        blocker = await r.block()
        with pytest.raises(Unavailable) as info:
            await r.submit(rows_of(1, 9))
        assert info.value.message == (
            "The batch scheduling queue to which this task was submitted is full; task size is 9 but scheduling "
            "capacity is only 8 (num_enqueued_batches=1, max_enqueued_batches=2, open_batch_size=0, "
            "max_execution_batch_size=4)"
        )
        fits = asyncio.ensure_future(r.submit(rows_of(2, 8)))
        await settle()
        r.release()
        await blocker
        np.testing.assert_array_equal((await fits)["y"], rows_of(2, 8) * 2)

    asyncio.run(main())


def test_a_failing_part_fails_the_whole_split_task(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8, enable_large_batch_splitting=True, max_execution_batch_size=2)
    x = rows_of(1, 4)
    x[3, 0] = -1  # the second part fails

    async def main() -> None:
        with pytest.raises(InvalidArgument, match="negative input"):
            await r.submit(x)
        np.testing.assert_array_equal((await r.submit(rows_of(2, 3)))["y"], rows_of(2, 3) * 2)

    asyncio.run(main())


# -- failures and cancellation ------------------------------------------------


def test_a_batch_failure_reaches_only_the_tasks_of_that_batch(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=2)
    bad = rows_of(2, 1) * -1

    async def main() -> list[Any]:
        blocker = await r.block()
        inputs = [rows_of(1, 1), bad, rows_of(3, 1), rows_of(4, 1)]
        tasks = [asyncio.ensure_future(r.submit(x)) for x in inputs]
        await settle()
        r.release()
        await blocker
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, second, third, fourth = asyncio.run(main())
    assert isinstance(first, InvalidArgument)
    assert first.message == "negative input"
    assert second is first  # one model call failed, and both of its tasks get its error
    np.testing.assert_array_equal(third["y"], rows_of(3, 1) * 2)
    np.testing.assert_array_equal(fourth["y"], rows_of(4, 1) * 2)
    assert r.model.sizes == [1, 2, 2]
    assert len(r.runs) == 3  # a failed model call is still a model call


def test_a_cancelled_queued_request_leaves_its_batch(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8)

    async def main() -> list[Any]:
        blocker = await r.block()
        tasks = [asyncio.ensure_future(r.submit(rows_of(i, 2))) for i in range(3)]
        await settle()
        tasks[1].cancel()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(r.submit(rows_of(5, 1)), 0.01)  # times out while queued
        r.release()
        await blocker
        return await asyncio.gather(tasks[0], tasks[2])

    first, third = asyncio.run(main())
    np.testing.assert_array_equal(first["y"], rows_of(0, 2) * 2)
    np.testing.assert_array_equal(third["y"], rows_of(2, 2) * 2)
    assert r.model.sizes == [1, 4]
    np.testing.assert_array_equal(r.model.seen[1], np.concatenate([rows_of(0, 2), rows_of(2, 2)]))


def test_a_cancelled_running_request_does_not_disturb_its_batch(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8)

    async def main() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        r.model.gate.clear()
        keep = asyncio.ensure_future(r.submit(rows_of(1, 2)))
        drop = asyncio.ensure_future(r.submit(rows_of(2, 3)))
        await until(r.model.started)
        drop.cancel()
        await settle()
        r.release()
        kept = await keep
        return kept, await r.submit(rows_of(3, 1))

    kept, later = asyncio.run(main())
    np.testing.assert_array_equal(kept["y"], rows_of(1, 2) * 2)
    np.testing.assert_array_equal(later["y"], rows_of(3, 1) * 2)
    assert r.model.sizes == [5, 1]


def test_close_runs_queued_requests_and_refuses_new_ones(rig: Callable[..., Rig]) -> None:
    r = rig(max_batch_size=8, batch_timeout_micros=60_000_000)

    async def main() -> None:
        queued = asyncio.ensure_future(r.submit(rows_of(1, 1)))
        await settle()
        r.batcher.close()
        np.testing.assert_array_equal((await asyncio.wait_for(queued, 5))["y"], rows_of(1, 1) * 2)
        with pytest.raises(Unavailable) as refused:
            await r.submit(rows_of(2, 1))
        assert refused.value.message == "The batch scheduler is closed; the server is shutting down."

    asyncio.run(main())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 5), min_size=1, max_size=10), st.booleans())
def test_batching_on_and_off_give_identical_outputs(
    placement: CallPlacement, sizes: list[int], splitting: bool
) -> None:
    model = Model()
    extra: dict[str, Any] = {"enable_large_batch_splitting": True, "max_execution_batch_size": 4} if splitting else {}
    config = BatchingConfig(max_batch_size=8, allowed_batch_sizes=(4, 8) if not splitting else (), **extra)
    batcher = Batcher(config, placement)
    handle = Handle(model.servable)
    inputs = [rows_of(i, n) for i, n in enumerate(sizes)]

    async def main() -> list[dict[str, np.ndarray]]:
        calls = [batcher.submit(handle, "serving_default", {"x": x}, None) for x in inputs]  # type: ignore[arg-type]
        return await asyncio.gather(*calls)

    batched = asyncio.run(main())
    for x, out in zip(inputs, batched, strict=True):
        direct = model.servable.run("serving_default", {"x": x})
        assert set(out) == set(direct)
        for key in direct:
            assert out[key].dtype == direct[key].dtype
            np.testing.assert_array_equal(out[key], direct[key])


def test_engine_batches_requests_from_many_threads_on_its_loop(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    model = Model()
    config = BatchingConfig(max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=2)
    engine = Engine(lambda path: model.servable, EngineOptions(batching=config))
    events: list[EngineEvent] = []
    engine.add_observer(events.append)
    engine.load([ModelConfig("m", str(tmp_path / "m"))])
    loop = EngineLoop()

    def one(i: int) -> np.ndarray:
        result = loop.run_sync(engine.predict(ModelSpec("m"), ArrayInputs({"x": rows_of(i, 1 + i % 3)})), timeout=5)
        return result.outputs["y"]

    try:
        with ThreadPoolExecutor(max_workers=16) as clients:
            outputs = list(clients.map(one, range(48)))
    finally:
        loop.close()
        engine.stop()
    for i, y in enumerate(outputs):
        np.testing.assert_array_equal(y, rows_of(i, 1 + i % 3) * 2)
    runs = [e for e in events if isinstance(e, BatchRun)]
    assert sum(run.input_size for run in runs) == sum(1 + i % 3 for i in range(48))
    assert len(runs) == len(model.sizes)


def test_each_queue_batches_with_its_own_parameters(placement: CallPlacement) -> None:
    """A per-model config overrides sizes and padding for its servable's queue; the threads stay shared."""
    small, large = Model(), Model()
    runs: list[BatchRun] = []
    batcher = Batcher(BatchingConfig(max_batch_size=2, num_batch_threads=1), placement, runs.append)
    own = BatchingConfig(max_batch_size=8, allowed_batch_sizes=(4, 8), num_batch_threads=1)
    to_small, to_large = Handle(small.servable), Handle(large.servable, "big")

    def submit(handle: Handle, tag: int, config: BatchingConfig | None = None) -> asyncio.Future[Any]:
        return asyncio.ensure_future(batcher.submit(handle, "serving_default", {"x": rows_of(tag, 1)}, None, config))  # type: ignore[arg-type]

    async def main() -> list[dict[str, np.ndarray]]:
        small.gate.clear()
        blocker = submit(to_small, 99)  # holds the only batch thread
        await until(small.started)
        tasks = [submit(to_large, i, own) for i in range(3)] + [submit(to_small, i) for i in range(3)]
        await settle()
        small.gate.set()
        await blocker
        return await asyncio.gather(*tasks)

    results = asyncio.run(main())
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["y"], rows_of(i % 3, 1) * 2)
    assert large.sizes == [4]  # three requests in one call, padded to the allowed size 4
    assert sorted(small.sizes[1:]) == [1, 2]  # the batcher's own max_batch_size 2
    assert [(run.input_size, run.padded_size) for run in runs if run.model == "big"] == [(3, 4)]


def test_per_model_batching_parameters_come_from_the_version_folder(tmp_path: Path) -> None:
    """--enable_per_model_batching_parameters: batching_params.pbtxt batches its version, others run unbatched."""
    models = {"with": Model(), "without": Model()}
    for name in models:
        (tmp_path / name / "1").mkdir(parents=True)
    (tmp_path / "with" / "1" / "batching_params.pbtxt").write_text(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 5000 }\nallowed_batch_sizes: 16\n"
    )
    engine = Engine(
        lambda path: models[Path(path).parent.name].servable,
        EngineOptions(batching=BatchingConfig(max_batch_size=2, num_batch_threads=2), per_model_batching=True),
    )
    events: list[EngineEvent] = []
    engine.add_observer(events.append)
    engine.load([ModelConfig(name, str(tmp_path / name)) for name in models])
    loop = EngineLoop()

    async def burst(name: str) -> list[np.ndarray]:
        async def one(i: int) -> np.ndarray:
            return (await engine.predict(ModelSpec(name), ArrayInputs({"x": rows_of(i, 1)}))).outputs["y"]

        return await asyncio.gather(*(one(i) for i in range(5)))

    try:
        with_outputs = loop.run_sync(burst("with"), timeout=5)
        without_outputs = loop.run_sync(burst("without"), timeout=5)
    finally:
        loop.close()
        engine.stop()
    for i in range(5):
        np.testing.assert_array_equal(with_outputs[i], rows_of(i, 1) * 2)
        np.testing.assert_array_equal(without_outputs[i], rows_of(i, 1) * 2)
    assert models["with"].sizes == [16]  # five requests merged by the 5 ms timeout, padded to 16
    assert models["without"].sizes == [1] * 5  # no file: not batched (the global max_batch_size 2 is not used)
    runs = [e for e in events if isinstance(e, BatchRun)]
    assert [(run.model, run.input_size, run.padded_size) for run in runs] == [("with", 5, 16)]


def test_a_bad_per_model_batching_file_fails_only_that_version(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "batching_params.pbtxt").write_text("max_batch_size { value: 0 }\n")
    model = Model()
    engine = Engine(
        lambda path: model.servable,
        EngineOptions(batching=BatchingConfig(num_batch_threads=1), per_model_batching=True),
    )
    try:
        engine.load([ModelConfig("m", str(tmp_path / "m"))])
        (status,) = engine.status("m")
    finally:
        engine.stop()
    assert status.error_code is ErrorCode.INVALID_ARGUMENT
    assert status.error_message == "max_batch_size must be positive."


# -- pure helpers -------------------------------------------------------------


def test_merge_and_split_helpers() -> None:
    parts = [{"x": np.array([[1], [2]])}, {"x": np.array([[3]])}]
    merged = merge_inputs(parts, 4)
    np.testing.assert_array_equal(merged["x"][:, 0], [1, 2, 3, 3])
    pieces = split_outputs({"y": merged["x"] * 10}, [2, 1], 4)
    np.testing.assert_array_equal(pieces[1]["y"], [[30]])
    assert round_to_allowed_size(5, (2, 4, 8)) == 8
    assert round_to_allowed_size(9, (2, 4, 8)) == 9
    with pytest.raises(FailedPrecondition, match=r"^Batched output tensor has 0 dimensions$"):
        split_outputs({"y": np.float32(1)}, [1], 1)
    with pytest.raises(InvalidArgument, match=r"^Only tensors with rank from 1 to 6 can be padded\.$"):
        merge_inputs([{"x": np.zeros((1,) * 7)}] * 2, 2, pad_variable_length=True)
    with pytest.raises(InvalidArgument, match=r"^Got empty tensor in batch of non-empty tensors\.$"):
        merge_inputs([{"x": np.zeros((1, 0))}, {"x": np.zeros((1, 2))}], 2, pad_variable_length=True)


# -- configuration ------------------------------------------------------------


def test_batcher_refuses_options_tf_serving_refuses(placement: CallPlacement) -> None:
    with pytest.raises(ConfigError, match=r"^num_batch_threads must be positive; was 0$"):
        Batcher(BatchingConfig(num_batch_threads=0), placement)
    with pytest.raises(ConfigError, match=r"^batch_timeout_micros must be non-negative; was -1$"):
        Batcher(BatchingConfig(batch_timeout_micros=-1), placement)
    with pytest.raises(ConfigError, match=r"^When enable_large_batch_splitting is true, input_batch_size_limit"):
        Batcher(
            BatchingConfig(max_batch_size=4, enable_large_batch_splitting=True, max_execution_batch_size=8), placement
        )
    with pytest.raises(ConfigError, match=r"^max_enqueued_batches must be positive; was 0$"):
        Batcher(BatchingConfig(max_enqueued_batches=0, enable_large_batch_splitting=True), placement)
    Batcher(BatchingConfig(max_enqueued_batches=0), placement)  # rewritten to 1 without splitting, as TF does


def test_shared_batching_config_file_parses(testdata: Path) -> None:
    config = read_batching_parameters(testdata / "batching_config.txt")
    assert (config.max_batch_size, config.batch_timeout_micros) == (128, 0)
    assert (config.max_enqueued_batches, config.num_batch_threads) == (1_000_000, 8)
    assert config.thread_pool_name == "batch_threads"


def test_absent_fields_take_tf_serving_defaults() -> None:
    config = parse_batching_parameters("")
    assert config.max_batch_size == 1000
    assert config.batch_timeout_micros == 0
    assert config.max_enqueued_batches == 10
    assert config.num_batch_threads == (os.cpu_count() or 1)
    assert config.allowed_batch_sizes == ()
    assert not config.pad_variable_length_inputs
    assert not config.enable_large_batch_splitting
    assert config.execution_batch_size == 1000


def test_all_fields_parse() -> None:
    config = parse_batching_parameters(
        """
        max_batch_size { value: 16 } batch_timeout_micros { value: 500 } max_enqueued_batches { value: 3 }
        num_batch_threads { value: 2 } thread_pool_name { value: "pool" } allowed_batch_sizes: [4, 8]
        allowed_batch_sizes: 16 pad_variable_length_inputs: true enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 16 }
        """
    )
    assert config == BatchingConfig(16, 500, 3, 2, "pool", (4, 8, 16), True, True, 16)


def test_invalid_allowed_batch_sizes_use_tf_message() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^Last entry in allowed_batch_sizes must match max_batch_size; last entry was 8; expected 1000$",
    ):
        parse_batching_parameters("allowed_batch_sizes: 4 allowed_batch_sizes: 8")


def test_parse_errors_use_tf_message(tmp_path: Path) -> None:
    path = tmp_path / "batching.txt"
    path.write_text("max_batch_size: 12\n")  # a wrapper, not a scalar
    with pytest.raises(ConfigError) as info:
        read_batching_parameters(path)
    assert info.value.message == f"Invalid protobuf file: '{path}'"
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    with pytest.raises(ConfigError) as missing:
        read_batching_parameters(tmp_path / "absent.txt")
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert missing.value.message == f"{tmp_path / 'absent.txt'}; No such file or directory"
