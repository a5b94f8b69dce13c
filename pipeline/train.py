"""Stage 2, train: fit a softmax regression on the prepared digits, in numpy.

Mini-batch gradient descent with a seeded generator and a fixed number of
epochs, run with BLAS limited to one thread, so the same data and params give
bit-identical weights on the same machine and library versions. Writes
``model.safetensors`` (float32 ``weight`` and ``bias``) and ``config.json``.

The safetensors metadata holds one key on purpose: safetensors (0.8) writes
the metadata map in a per-process random order, so a file with two or more
metadata keys is not byte-reproducible. One key holding canonical JSON is.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import save_file
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from pipeline import (
    DEFAULT_DATA_DIR,
    DEFAULT_MODEL_DIR,
    DEFAULT_PARAMS,
    N_CLASSES,
    N_FEATURES,
    PIXEL_MAX,
    dump_json,
    load_params,
    param_float,
    param_int,
    read_dataset,
    report_error,
)
from weightvault.errors import VaultError

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METADATA_KEY = "weightvault.model"
ARCHITECTURE = "softmax_regression"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` section of ``params.yaml``."""

    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    l2: float

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainParams:
        """Validate and build from the parsed YAML section."""
        return cls(
            seed=param_int(values, "seed", minimum=0),
            epochs=param_int(values, "epochs", minimum=1),
            batch_size=param_int(values, "batch_size", minimum=1),
            learning_rate=param_float(values, "learning_rate", low=1e-6, high=10.0),
            l2=param_float(values, "l2", low=0.0, high=1.0),
        )


def predict_proba(weight: FloatArray, bias: FloatArray, features: npt.NDArray[Any]) -> FloatArray:
    """Class probabilities, shape ``(n, N_CLASSES)``, for raw integer pixel rows."""
    logits = (features.astype(np.float64) / PIXEL_MAX) @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probs: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return probs


def fit(
    features: npt.NDArray[np.int64], labels: npt.NDArray[np.int64], params: TrainParams
) -> tuple[FloatArray, FloatArray]:
    """Return ``(weight, bias)`` of shapes ``(10, 64)`` and ``(10,)`` in float64."""
    rng = np.random.default_rng(params.seed)
    onehot = np.eye(N_CLASSES)[labels]
    weight: FloatArray = rng.normal(0.0, 0.01, size=(N_CLASSES, N_FEATURES))
    bias: FloatArray = np.zeros(N_CLASSES)
    scaled = features.astype(np.float64) / PIXEL_MAX
    with threadpool_limits(limits=1):
        for _ in range(params.epochs):
            order = rng.permutation(labels.shape[0])
            for start in range(0, order.shape[0], params.batch_size):
                batch = order[start : start + params.batch_size]
                error = predict_proba(weight, bias, features[batch]) - onehot[batch]
                grad_w = error.T @ scaled[batch] / batch.shape[0] + params.l2 * weight
                weight = weight - params.learning_rate * grad_w
                bias = bias - params.learning_rate * error.mean(axis=0)
    return weight, bias


def model_config(params: TrainParams) -> dict[str, Any]:
    """The ``config.json`` document describing the saved model."""
    return {
        "architecture": ARCHITECTURE,
        "framework": "numpy",
        "dtype": "float32",
        "n_features": N_FEATURES,
        "n_classes": N_CLASSES,
        "input_scale": PIXEL_MAX,
        "feature_columns": [f"p{i}" for i in range(N_FEATURES)],
        "label_column": "label",
        "tensors": {"weight": [N_CLASSES, N_FEATURES], "bias": [N_CLASSES]},
        "train_params": asdict(params),
    }


def train(data_dir: Path, model_dir: Path, params: TrainParams) -> Path:
    """Train on ``data_dir/train.csv``; write the model into ``model_dir`` and return it."""
    features, labels = read_dataset(data_dir / "train.csv")
    weight, bias = fit(features, labels, params)
    model_dir.mkdir(parents=True, exist_ok=True)
    metadata = {
        "architecture": ARCHITECTURE,
        "input_scale": PIXEL_MAX,
        "n_classes": N_CLASSES,
        "n_features": N_FEATURES,
    }
    model_path = model_dir / MODEL_FILE
    save_file(
        {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)},
        str(model_path),
        metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True, separators=(",", ":"))},
    )
    dump_json(model_dir / CONFIG_FILE, model_config(params))
    return model_path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; defaults match ``dvc.yaml``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    try:
        params = TrainParams.from_mapping(load_params(args.params, "train"))
        train(args.data, args.out, params)
    except VaultError as exc:
        return report_error("train", exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
