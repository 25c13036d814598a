"""Pure tensor work of the batcher: task sizes, merging, padding and splitting, in TF Serving's words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfserve_lab.errors import FailedPrecondition, InvalidArgument

__all__ = ["merge_inputs", "round_to_allowed_size", "split_outputs", "task_size"]

# PadTensorOfSpecificType in batching_util.cc handles ranks 1 to 6, like TensorFlow's PadOp.
_MAX_PAD_RANK = 6


def task_size(inputs: Mapping[str, np.ndarray]) -> int:
    """The rows one request adds to a batch (BatchingSession::ComputeInputSize).

    Raises:
        InvalidArgument: no inputs, a rank-0 input, or inputs that disagree on dimension 0.
    """
    if not inputs:
        raise InvalidArgument("Batching Run() must have at least one input tensor")
    size: int | None = None
    for array in inputs.values():
        if array.ndim == 0:
            raise InvalidArgument("Batching Run() input tensors must have at least one dimension")
        if size is None:
            size = int(array.shape[0])
        elif array.shape[0] != size:
            raise InvalidArgument("Batching Run() input tensors must have equal 0th-dimension size")
    assert size is not None
    return size


def round_to_allowed_size(size: int, allowed: Sequence[int]) -> int:
    """The smallest allowed batch size that holds ``size`` rows (RoundToLowestAllowedBatchSize)."""
    for candidate in allowed:
        if candidate >= size:
            return candidate
    return size


def merge_inputs(
    parts: Sequence[Mapping[str, np.ndarray]],
    padded_size: int,
    *,
    pad_variable_length: bool = False,
) -> dict[str, np.ndarray]:
    """Concatenate the tasks' inputs along dimension 0, as BatchingSession::MergeInputTensors does.

    Args:
        parts: each task's inputs, in batch order; all name the same tensors.
        padded_size: rows the merged batch must have; the missing rows repeat the first row of the
            last task's tensor (TF Serving's choice: a row known to be a valid input).
        pad_variable_length: pad dimensions 1.. of each tensor up to the batch's largest, filling
            with the tensor's own first element (batching_util.cc ``PadTensor``).

    Raises:
        FailedPrecondition: shapes differ beyond dimension 0 and padding is off.
        InvalidArgument: a tensor cannot be padded (empty, or rank above 6).
    """
    merged: dict[str, np.ndarray] = {}
    for name in parts[0]:
        tensors = [part[name] for part in parts]
        reference = tensors[0].shape
        if any(t.ndim != len(reference) for t in tensors):
            raise _shape_mismatch(name)
        if pad_variable_length:
            tensors = _pad_variable_length(tensors)
        elif any(t.shape[1:] != reference[1:] for t in tensors):
            raise _shape_mismatch(name)
        rows = sum(int(t.shape[0]) for t in tensors)
        if padded_size > rows:
            # TF slices the last task's tensor; a zero-row last task has no row, so take the last that has one.
            source = next((t for t in reversed(tensors) if t.shape[0]), None)
            if source is not None:
                tensors.append(np.repeat(source[:1], padded_size - rows, axis=0))
        merged[name] = tensors[0] if len(tensors) == 1 else np.concatenate(tensors, axis=0)
    return merged


def _shape_mismatch(name: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"Tensors with name '{name}' from different tasks have different shapes and padding is turned off. Set "
        "pad_variable_length_inputs to true, or ensure that all tensors with the same name have equal dimensions "
        "starting with the first dim."
    )


def _pad_variable_length(tensors: list[np.ndarray]) -> list[np.ndarray]:
    rank = tensors[0].ndim
    target = [max(int(t.shape[d]) for t in tensors) for d in range(rank)]
    padded: list[np.ndarray] = []
    for tensor in tensors:
        # TF checks the rank before it looks at whether this tensor needs padding at all.
        if not 1 <= tensor.ndim <= _MAX_PAD_RANK:
            raise InvalidArgument("Only tensors with rank from 1 to 6 can be padded.")
        shape = (tensor.shape[0], *target[1:])
        if shape == tensor.shape:
            padded.append(tensor)
            continue
        if tensor.size == 0:
            raise InvalidArgument("Got empty tensor in batch of non-empty tensors.")
        out = np.full(shape, tensor.flat[0], dtype=tensor.dtype)
        out[tuple(slice(0, n) for n in tensor.shape)] = tensor
        padded.append(out)
    return padded


def split_outputs(
    outputs: Mapping[str, np.ndarray],
    sizes: Sequence[int],
    padded_size: int,
) -> list[dict[str, np.ndarray]]:
    """Cut batched outputs into each task's rows, dropping the padding rows (SplitOutputTensors).

    Returns:
        One dict per task, in ``sizes`` order; the arrays are views into the batched outputs.

    Raises:
        FailedPrecondition: an output has no batch dimension or the wrong number of rows.
    """
    for array in outputs.values():
        if array.ndim == 0:
            raise FailedPrecondition("Batched output tensor has 0 dimensions")
        if array.shape[0] != padded_size:
            raise FailedPrecondition(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of the "
                "input tensors"
            )
    pieces: list[dict[str, np.ndarray]] = []
    start = 0
    for size in sizes:
        pieces.append({key: array[start : start + size] for key, array in outputs.items()})
        start += size
    return pieces
