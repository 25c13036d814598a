"""A profile shown in the notebook through TensorBoard's own notebook support, when TensorBoard is installed.

``pip install "tfserve-lab[profile]"`` brings ``tensorboard`` and its profile plugin;
without them the profile's table of the most expensive ops is what the notebook shows.
"""

from __future__ import annotations

import importlib.util

__all__ = ["show_in_tensorboard"]


def show_in_tensorboard(logdir: str) -> bool:
    """Start (or reuse) TensorBoard on ``logdir`` and show it in the output; False when it is not installed."""
    if importlib.util.find_spec("tensorboard") is None:
        return False
    from tensorboard import notebook

    notebook.start(f"--logdir {logdir}")
    return True
