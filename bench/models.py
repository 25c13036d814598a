"""The two bench models, built with Keras 3 and exported as TF Serving version folders (cached).

``seed``: Dense 64 relu on 10 inputs, Dense 32 relu, Dense 1 sigmoid (a tiny model: the per-call
cost dominates). ``mlp``: 784 -> 1024 -> 1024 -> 10 (wide inputs: decoding dominates REST).

Run ``python -m bench.models`` to build both; ``model_dir(name)`` builds on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["INPUT_NAME", "MODELS", "WORK_DIR", "ModelSpec", "model_dir", "version_dir"]

WORK_DIR = Path(os.environ.get("TFSERVE_BENCH_WORK", Path(__file__).resolve().parent / "results" / "work"))
INPUT_NAME = "x"  # the signature's input alias (the Keras Input's name)
_VERSION = 1
_SEED = 1234


@dataclass(frozen=True)
class ModelSpec:
    """A bench model: its input width, its layers and its output width."""

    name: str
    inputs: int
    hidden: tuple[tuple[int, str], ...]
    outputs: int


MODELS: dict[str, ModelSpec] = {
    "seed": ModelSpec("seed", 10, ((64, "relu"), (32, "relu"), (1, "sigmoid")), 1),
    "mlp": ModelSpec("mlp", 784, ((1024, "relu"), (1024, "relu"), (10, "linear")), 10),
}


def model_dir(name: str) -> Path:
    """The model's base path (holding version folder ``1``), built and exported when missing."""
    base = WORK_DIR / "models" / name
    version = base / str(_VERSION)
    if not (version / "saved_model.pb").is_file():
        _export(MODELS[name], version)
    return base


def version_dir(name: str) -> Path:
    """The exported version folder of a model."""
    return model_dir(name) / str(_VERSION)


def _export(spec: ModelSpec, target: Path) -> None:
    import keras  # lazy: TensorFlow takes seconds to import

    keras.utils.set_random_seed(_SEED)
    inputs = keras.Input(shape=(spec.inputs,), name=INPUT_NAME, dtype="float32")
    x = inputs
    for units, activation in spec.hidden:
        x = keras.layers.Dense(units, activation=activation)(x)
    model = keras.Model(inputs, x, name=spec.name)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(tmp), format="tf_saved_model", verbose=False)
    tmp.rename(target)  # a half-written export never looks like a version folder


if __name__ == "__main__":
    for model_name in MODELS:
        print(model_name, version_dir(model_name))
