"""Stage 1, prepare: split scikit-learn's bundled digits into train/test CSV files.

The digits dataset ships inside scikit-learn, so nothing is downloaded. The
split is a seeded permutation, so the same params give byte-identical CSVs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import (
    DEFAULT_DATA_DIR,
    DEFAULT_PARAMS,
    load_params,
    param_float,
    param_int,
    report_error,
    write_dataset,
)
from weightvault.errors import VaultError

TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"


@dataclass(frozen=True)
class PrepareParams:
    """The ``prepare`` section of ``params.yaml``."""

    seed: int
    test_size: float

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> PrepareParams:
        """Validate and build from the parsed YAML section."""
        return cls(
            seed=param_int(values, "seed", minimum=0),
            test_size=param_float(values, "test_size", low=0.05, high=0.95),
        )


def prepare(out_dir: Path, params: PrepareParams) -> tuple[Path, Path]:
    """Write ``train.csv`` and ``test.csv`` into ``out_dir``; return their paths."""
    # Imported here: importing scikit-learn takes seconds, importing this module should not.
    from sklearn.datasets import load_digits

    digits = load_digits()
    features = np.asarray(digits.data).astype(np.int64)
    labels = np.asarray(digits.target).astype(np.int64)
    order = np.random.default_rng(params.seed).permutation(labels.shape[0])
    n_test = round(labels.shape[0] * params.test_size)
    test_idx, train_idx = order[:n_test], order[n_test:]
    train_path, test_path = out_dir / TRAIN_CSV, out_dir / TEST_CSV
    write_dataset(train_path, features[train_idx], labels[train_idx])
    write_dataset(test_path, features[test_idx], labels[test_idx])
    return train_path, test_path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; defaults match ``dvc.yaml``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        params = PrepareParams.from_mapping(load_params(args.params, "prepare"))
        prepare(args.out, params)
    except VaultError as exc:
        return report_error("prepare", exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
