"""A batch queue's state: requests, their pieces, the batches they wait in, and admission to a queue.

Loop-thread only, like the ``Batcher`` that owns them. The rules are
``SharedBatchScheduler``'s: see ``plan_pieces``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tfserve_lab.config import BatchingConfig
from tfserve_lab.core.registry import ServableHandle
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.errors import InvalidArgument, Unavailable

__all__ = [
    "Batch",
    "BatchPiece",
    "BatchQueue",
    "BatchRequest",
    "Outputs",
    "QueueKey",
    "enqueue",
    "plan_pieces",
    "withdraw",
]

QueueKey = tuple[str, int, int, str, tuple[str, ...], tuple[str, ...] | None, int]
Outputs = dict[str, np.ndarray]


@dataclass(slots=True, eq=False)
class BatchRequest:
    """One submit() call; split into several pieces only by large-batch splitting."""

    queue: BatchQueue
    future: asyncio.Future[Outputs]
    inputs: Mapping[str, np.ndarray]
    enqueued: float
    pieces: list[BatchPiece] = field(default_factory=list)
    parts: list[Outputs | None] = field(default_factory=list)
    pending: int = 0


@dataclass(slots=True, eq=False)  # identity equality: pieces and batches are removed from lists by identity
class BatchPiece:
    """Rows ``[start, stop)`` of a request inside one batch; ``batch`` is None once that batch runs."""

    request: BatchRequest
    index: int
    start: int
    stop: int
    batch: Batch | None


@dataclass(slots=True, eq=False)
class Batch:
    """Pieces bound for one model call, plus what the batch thread reports back for BatchRun."""

    pieces: list[BatchPiece] = field(default_factory=list)
    size: int = 0
    started: float = 0.0
    input_size: int = 0
    padded_size: int = 0
    queuing_s: float = 0.0
    runtime_s: float = 0.0
    ran: bool = False


class BatchQueue:
    """One servable version + signature + input names + output keys (TF's TensorSignature), with its options."""

    __slots__ = (
        "batches",
        "config",
        "exec_size",
        "key",
        "max_enqueued",
        "model",
        "output_keys",
        "running",
        "servable",
        "signature",
        "timeout_s",
        "version",
    )

    def __init__(
        self,
        key: QueueKey,
        handle: ServableHandle,
        signature: str,
        output_keys: tuple[str, ...] | None,
        config: BatchingConfig,
    ) -> None:
        self.key = key
        self.config = config
        self.exec_size = config.execution_batch_size
        self.max_enqueued = max(1, config.max_enqueued_batches)
        self.timeout_s = config.batch_timeout_micros / 1e6
        self.model = handle.model
        self.version = handle.version
        self.servable: Servable = handle.servable
        self.signature = signature
        self.output_keys = output_keys
        self.batches: deque[Batch] = deque([Batch()])
        self.running = 0

    @property
    def idle(self) -> bool:
        return self.running == 0 and len(self.batches) == 1 and not self.batches[0].pieces


def plan_pieces(queue: BatchQueue, size: int) -> list[int]:
    """Admission control and splitting of ``Queue::ScheduleWithoutOrEagerSplitImpl``: the piece sizes."""
    limit = queue.config.max_batch_size
    if size > limit:
        raise InvalidArgument(f"Task size {size} is larger than maximum input batch size {limit}")
    batches, open_size, exec_size, max_enqueued = (
        queue.batches,
        queue.batches[-1].size,
        queue.exec_size,
        queue.max_enqueued,
    )
    if not queue.config.enable_large_batch_splitting:
        if open_size + size > limit and len(batches) >= max_enqueued:
            raise Unavailable(
                "The batch scheduling queue to which this task was submitted is full; currently "
                f"{len(batches)} batches enqueued and max_enqueued_batches is {max_enqueued}"
            )
        return [size]
    capacity = (max_enqueued - len(batches)) * exec_size + (exec_size - open_size)
    if size > capacity:
        raise Unavailable(
            "The batch scheduling queue to which this task was submitted is full; task size is "
            f"{size} but scheduling capacity is only {capacity} (num_enqueued_batches={len(batches)}, "
            f"max_enqueued_batches={max_enqueued}, open_batch_size={open_size}, "
            f"max_execution_batch_size={exec_size})"
        )
    slot = exec_size - open_size
    if size <= slot:
        return [size]
    sizes = [slot] if slot > 0 else []
    left = size - slot
    while left > 0:
        sizes.append(min(left, exec_size))
        left -= exec_size
    return sizes


def enqueue(queue: BatchQueue, request: BatchRequest, sizes: list[int], now: float) -> None:
    """Add a request's pieces to the queue's open batch, closing it and opening more as they fill."""
    start = 0
    for index, rows in enumerate(sizes):
        if queue.batches[-1].size + rows > queue.exec_size:
            queue.batches.append(Batch())  # StartNewBatch: the old open batch is now closed
        batch = queue.batches[-1]
        if not batch.pieces:
            batch.started = now
        piece = BatchPiece(request, index, start, start + rows, batch)
        batch.pieces.append(piece)
        batch.size += rows
        request.pieces.append(piece)
        start += rows
    request.parts = [None] * len(sizes)
    request.pending = len(sizes)


def withdraw(request: BatchRequest) -> None:
    """Take a request's still-queued pieces out of their batches."""
    queue = request.queue
    for piece in request.pieces:
        batch, piece.batch = piece.batch, None
        if batch is None:
            continue
        batch.pieces.remove(piece)
        batch.size -= piece.stop - piece.start
        if not batch.pieces and batch is not queue.batches[-1]:
            queue.batches.remove(batch)
