"""Batcher: TF Serving's shared batch scheduler on the engine loop, with model calls on the batch threads.

Thread and loop rules: every queue, batch, future and timer here belongs to the
loop the batcher is first used on and is touched only on its thread, so there is
no lock. A batch thread gets arrays and a servable, merges, runs and splits, and
its result comes back through the future ``CallPlacement.start`` returns (a batch
measured cheap runs inline on the loop instead).
Only ``close`` may be called from other threads.

Scheduling follows ``SharedBatchScheduler``: a queue is a deque of batches whose
last is open; a batch closes when the next task does not fit, and the open one
is taken when a thread is free and it is full, its first task waited
``batch_timeout_micros``, or the batcher is closing. No task per request: one
pump (a loop callback) runs when something changes, plus one timer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tfserve_lab.batching_params import check_batching_config
from tfserve_lab.config import BatchingConfig
from tfserve_lab.core.batch_merge import merge_inputs, round_to_allowed_size, split_outputs, task_size
from tfserve_lab.core.batch_queue import (
    Batch,
    BatchPiece,
    BatchQueue,
    BatchRequest,
    Outputs,
    QueueKey,
    enqueue,
    plan_pieces,
    withdraw,
)
from tfserve_lab.core.events import BatchRun
from tfserve_lab.core.placement import CallPlacement
from tfserve_lab.core.registry import ServableHandle
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.errors import FailedPrecondition, InvalidArgument, TfServeError, Unavailable

__all__ = ["Batcher"]


# Timers may fire up to one clock tick early (asyncio rounds by the clock resolution).
_SLACK_S = time.get_clock_info("monotonic").resolution


class Batcher:
    """Merges concurrent requests for the same servable and signature into batched model calls."""

    def __init__(
        self,
        config: BatchingConfig,
        placement: CallPlacement,
        on_batch: Callable[[BatchRun], None] | None = None,
    ) -> None:
        """Check ``config`` as TF Serving does at model load.

        Args:
            config: the BatchingParameters.
            placement: runs each batch inline or on a batch thread; the batcher itself keeps at most
                ``num_batch_threads`` batches in flight, across all its queues.
            on_batch: called on the loop thread after each model call.

        Raises:
            ConfigError: options TF Serving refuses.
        """
        check_batching_config(config)
        self.config = config
        self._placement = placement
        self._on_batch = on_batch
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset()

    def _reset(self) -> None:
        self._queues: dict[QueueKey, BatchQueue] = {}
        self._order: deque[BatchQueue] = deque()  # round-robin order, like SharedBatchScheduler's queue list
        self._threads = self.config.num_batch_threads
        self._free_threads = self._threads
        self._timer: asyncio.TimerHandle | None = None
        self._pump_scheduled = False

    # -- requests (loop thread) ---------------------------------------------

    async def submit(
        self,
        handle: ServableHandle,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str] | None = None,
        config: BatchingConfig | None = None,
    ) -> dict[str, np.ndarray]:
        """Queue one request and wait for its rows of the batched outputs.

        ``config`` overrides the batcher's options for this servable's queues (TF Serving's per-model
        ``batching_params.pbtxt``); the batch threads stay shared, as TF Serving shares its thread pool.

        Returns:
            The outputs by alias, with exactly this request's rows in its order.

        Raises:
            InvalidArgument: inputs that cannot be batched, or more rows than ``max_batch_size``.
            Unavailable: the queue is full, or the batcher is closed.
            TfServeError: whatever the batch's merge or model call raised (every task of that batch gets it).
        """
        loop = self._bind()
        if self._closed:
            raise Unavailable("The batch scheduler is closed; the server is shutting down.")
        arrays = {name: np.asarray(value) for name, value in inputs.items()}
        size = task_size(arrays)
        keys = tuple(output_keys) if output_keys else None
        options = config or self.config
        # New options make a new queue; the old one drains as it is (a live change fails no request in it).
        # Its queue keeps the options object alive, so the id is not reused while the key is.
        key = (
            handle.model,
            handle.version,
            id(handle.servable),
            signature_name,
            tuple(sorted(arrays)),
            keys,
            id(options),
        )
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = BatchQueue(key, handle, signature_name, keys, options)
            self._order.append(queue)
        try:
            sizes = plan_pieces(queue, size)
        except TfServeError:
            self._drop_if_idle(queue)
            raise
        request = BatchRequest(queue, loop.create_future(), arrays, loop.time())
        enqueue(queue, request, sizes, request.enqueued)
        self._schedule_pump()
        try:
            return await request.future
        except asyncio.CancelledError:
            # Cancelled or timed out by the caller: queued pieces leave their batches; running ones finish unread.
            self._withdraw(request)
            raise

    def set_threads(self, count: int) -> None:
        """Let ``count`` model calls run at once from now on (calls running now finish); loop thread only."""
        if count < 1:
            raise InvalidArgument("num_batch_threads must be positive.")
        self._free_threads += count - self._threads
        self._threads = count
        self._schedule_pump()

    def close(self) -> None:
        """Refuse new requests and run queued ones without waiting for their timeouts; callable from any thread."""
        self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._pump)
            except RuntimeError:
                pass  # the loop closed between the check and the call: nothing is queued any more

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop; queues and futures from a closed earlier loop are dropped (tests use asyncio.run)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("This Batcher already serves another event loop; submit on that loop.")
            self._loop = loop
            self._reset()
        return loop

    def _withdraw(self, request: BatchRequest) -> None:
        """Take a request's still-queued pieces out of their batches."""
        withdraw(request)
        self._drop_if_idle(request.queue)

    def _drop_if_idle(self, queue: BatchQueue) -> None:
        # Idle queues go, so that no queue keeps an unloaded servable alive.
        if queue.idle and self._queues.get(queue.key) is queue:
            del self._queues[queue.key]
            self._order.remove(queue)

    # -- scheduling (loop thread) -------------------------------------------

    def _schedule_pump(self) -> None:
        # Deferred to the next loop pass so requests arriving in the same pass share a batch.
        if not self._pump_scheduled and self._loop is not None:
            self._pump_scheduled = True
            self._loop.call_soon(self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_scheduled = False
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _pump(self) -> None:
        """Give free batch threads the batches that are ready, then wait for the next deadline."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        now = loop.time()
        while self._free_threads > 0:
            ready = self._take(now)
            if ready is None:
                break
            self._dispatch(*ready, now)
        self._arm_timer(now)

    def _take(self, now: float) -> tuple[BatchQueue, Batch] | None:
        """The next batch to run, round-robin over queues (``Queue::ScheduleBatch``)."""
        for _ in range(len(self._order)):
            queue = self._order[0]
            self._order.rotate(-1)
            batches = queue.batches
            if len(batches) > 1:
                return queue, batches.popleft()
            open_batch = batches[0]
            if open_batch.pieces and (
                self._closed
                or open_batch.size >= queue.exec_size
                or now + _SLACK_S >= open_batch.started + queue.timeout_s
            ):
                batches[0] = Batch()
                return queue, open_batch
        return None

    def _arm_timer(self, now: float) -> None:
        deadline = None
        if self._free_threads > 0:
            # With no free thread a finishing batch pumps again; with timeout 0 nothing queued is waiting on time.
            deadlines = [
                q.batches[0].started + q.timeout_s
                for q in self._order
                if q.timeout_s > 0 and len(q.batches) == 1 and q.batches[0].pieces
            ]
            if deadlines:
                deadline = min(deadlines)
        if self._timer is not None and (deadline is None or self._timer.when() != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _dispatch(self, queue: BatchQueue, batch: Batch, now: float) -> None:
        """Start a batch where the placement says (merging happens there too, see ``_run_batch``)."""
        assert self._loop is not None
        pieces = batch.pieces
        for piece in pieces:
            piece.batch = None  # running: a cancelled request can no longer leave this batch
        sizes = [piece.stop - piece.start for piece in pieces]
        total = sum(sizes)
        batch.input_size = total
        batch.padded_size = round_to_allowed_size(total, queue.config.allowed_batch_sizes) if total else 0
        batch.queuing_s = sum(now - piece.request.enqueued for piece in pieces) / len(pieces)
        job = functools.partial(
            _run_batch,
            queue.servable,
            queue.signature,
            queue.output_keys,
            [(piece.request.inputs, piece.start, piece.stop) for piece in pieces],
            sizes,
            batch,
            queue.config.pad_variable_length_inputs,
        )
        try:
            future = self._placement.start(
                (id(queue.servable), queue.signature), job, lambda: batch.runtime_s if batch.ran else None
            )
        except Unavailable as exc:
            for piece in pieces:
                self._fail(piece.request, exc)
            return
        self._free_threads -= 1
        queue.running += 1
        # A batch run inline is done already: the callback still comes on the next loop pass, which
        # keeps the pump from recursing and lets I/O in between.
        future.add_done_callback(functools.partial(self._finished, queue, batch))

    def _finished(self, queue: BatchQueue, batch: Batch, future: asyncio.Future[list[Outputs]]) -> None:
        """Back on the loop: fan the batch's outcome out to its tasks, then schedule more."""
        self._free_threads += 1
        queue.running -= 1
        error: BaseException | None
        if future.cancelled():
            error = Unavailable("The batch was cancelled; the server is stopping.")
        else:
            error = future.exception()
        if error is not None:
            for piece in batch.pieces:
                self._fail(piece.request, error)
        else:
            for piece, outputs in zip(batch.pieces, future.result(), strict=True):
                self._deliver(piece, outputs)
        self._drop_if_idle(queue)
        self._pump()
        if batch.ran and self._on_batch is not None:
            sizes = (batch.input_size, batch.padded_size, batch.queuing_s, batch.runtime_s)
            self._on_batch(BatchRun(queue.model, queue.version, queue.signature, *sizes))

    def _deliver(self, piece: BatchPiece, outputs: Outputs) -> None:
        request = piece.request
        if request.future.done():
            return  # cancelled, or another piece already failed it
        if len(request.pieces) == 1:
            request.future.set_result(outputs)
            return
        request.parts[piece.index] = outputs
        request.pending -= 1
        if request.pending:
            return
        parts = [part for part in request.parts if part is not None]
        # Reassembling a split task copies its outputs once, here on the loop; outputs are
        # usually far smaller than inputs, and this keeps the batch threads for model calls.
        try:
            request.future.set_result({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})
        except ValueError as exc:
            request.future.set_exception(
                FailedPrecondition(f"Outputs of the parts of a split task cannot be concatenated: {exc}")
            )

    def _fail(self, request: BatchRequest, error: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(error)
        self._withdraw(request)  # the other pieces of a split task need not run any more


def _run_batch(
    servable: Servable,
    signature: str,
    output_keys: tuple[str, ...] | None,
    parts: list[tuple[Mapping[str, np.ndarray], int, int]],
    sizes: list[int],
    batch: Batch,
    pad_variable_length: bool,
) -> list[Outputs]:
    """One batch on a batch thread: merge, run, split.

    Merging happens here rather than on the loop: concatenating a full batch copies every input
    row (megabytes for images), and on the loop that copy would stall every protocol handler;
    here it overlaps with them, as TF Serving's ProcessBatch does it on its batch thread. Only
    ``batch.ran`` and ``batch.runtime_s`` are written, and the loop reads them after this returns.
    """
    inputs = [{name: array[start:stop] for name, array in task.items()} for task, start, stop in parts]
    merged = merge_inputs(inputs, batch.padded_size, pad_variable_length=pad_variable_length)
    started = time.perf_counter()
    try:
        outputs = servable.run(signature, merged, output_keys)
    finally:
        batch.runtime_s = time.perf_counter() - started
        batch.ran = True
    return split_outputs({name: np.asarray(value) for name, value in outputs.items()}, sizes, batch.padded_size)
