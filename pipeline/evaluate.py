"""Stage 3, evaluate: score the saved model on the held-out CSV; write ``metrics.json``.

Metrics are rounded to 6 decimals and written with sorted keys, so the file is
byte-identical across runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from pipeline import (
    DEFAULT_DATA_DIR,
    DEFAULT_METRICS,
    DEFAULT_MODEL_DIR,
    N_CLASSES,
    N_FEATURES,
    dump_json,
    read_dataset,
    report_error,
)
from pipeline.train import MODEL_FILE, FloatArray, predict_proba
from weightvault.errors import InvalidInputError, VaultError

DIGITS = 6


def load_model(model_dir: Path) -> tuple[FloatArray, FloatArray]:
    """Load ``(weight, bias)`` as float64 from ``model_dir/model.safetensors``.

    Raises :class:`InvalidInputError` if the file is unreadable or the tensors
    do not have the expected names and shapes.
    """
    path = model_dir / MODEL_FILE
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise InvalidInputError(f"cannot load model {path}: {exc}") from exc
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is None or bias is None:
        raise InvalidInputError(f"model {path} lacks the weight or bias tensor")
    if weight.shape != (N_CLASSES, N_FEATURES) or bias.shape != (N_CLASSES,):
        raise InvalidInputError(f"model {path} has tensors of unexpected shape")
    return weight.astype(np.float64), bias.astype(np.float64)


def evaluate(data_dir: Path, model_dir: Path, metrics_path: Path) -> dict[str, Any]:
    """Score the model on ``data_dir/test.csv``, write ``metrics_path``, return the metrics."""
    features, labels = read_dataset(data_dir / "test.csv")
    weight, bias = load_model(model_dir)
    probs = predict_proba(weight, bias, features)
    predicted = probs.argmax(axis=1)
    correct = predicted == labels
    picked = np.clip(probs[np.arange(labels.shape[0]), labels], 1e-12, 1.0)
    per_class = {
        str(label): round(float(correct[labels == label].mean()), DIGITS)
        for label in range(N_CLASSES)
        if np.any(labels == label)
    }
    metrics: dict[str, Any] = {
        "accuracy": round(float(correct.mean()), DIGITS),
        "log_loss": round(float(-np.log(picked).mean()), DIGITS),
        "n_test": int(labels.shape[0]),
        "per_class_accuracy": per_class,
    }
    dump_json(metrics_path, metrics)
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; defaults match ``dvc.yaml``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_METRICS)
    args = parser.parse_args(argv)
    try:
        evaluate(args.data, args.model, args.out)
    except VaultError as exc:
        return report_error("evaluate", exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
