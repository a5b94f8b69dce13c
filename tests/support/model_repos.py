"""Model repositories for rebuild tests: the session's reference repo, copied; a tiny one.

Building the reference pipeline (``pipeline.workspace.build_model_repo``: git,
``dvc repro`` of prepare/train/evaluate) is the slow part of a rebuild test's
setup. The session fixture ``model_repo`` (tests/conftest.py) builds it once;
a module that points it at its own DVC remote and pushes works on its own copy
(:func:`reference_copy`), so no module sees another's remote or credential.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

from pipeline.workspace import commit_all, configure_remote, run
from weightvault.store import DvcRemote

TRAIN_SCRIPT = """\
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

rows = [line.split(",") for line in Path("data/input.csv").read_text().splitlines()[1:]]
x = np.array([[float(v) for v in row] for row in rows], dtype=np.float32)
Path("model").mkdir(exist_ok=True)
save_file({"w": x.T @ x, "bias": x.mean(axis=0)}, "model/model.safetensors")
"""

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps:
      - data/input.csv
      - train.py
    outs:
      - model/model.safetensors
"""


def reference_copy(model_repo: Path, target: Path, remote: DvcRemote) -> Path:
    """A private copy of the session's reference repo, its datasets pushed to ``remote``."""
    shutil.copytree(model_repo, target, symlinks=True)
    configure_remote(target, remote)
    run(target, "dvc", "push", "-q")
    return target


def tiny_model_repo(root: Path, remote: DvcRemote, data: str, train: str = TRAIN_SCRIPT) -> Path:
    """A one-stage model repo (numpy + safetensors) trained on ``data``.

    Its dataset (``data/input.csv``, a CSV of numbers) is pushed to ``remote``; a
    rebuild takes a few seconds. ``train`` is the training script (default: a
    deterministic one, so a rebuild matches).
    """
    repo = root
    (repo / "data").mkdir(parents=True)
    (repo / "train.py").write_text(train)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "data" / "input.csv").write_text(data)
    pins = [f"{d}=={importlib.metadata.version(d)}" for d in ("numpy", "safetensors")]
    (repo / "requirements.txt").write_text("\n".join(pins) + "\n")
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "dvc", "init", "-q")
    run(repo, "dvc", "add", "-q", "data/input.csv")
    run(repo, "dvc", "repro", "-q")
    configure_remote(repo, remote)
    run(repo, "dvc", "push", "-q")
    commit_all(repo, "tiny model")
    return repo
