"""Prefect tasks of the recover flow: each one step of :mod:`weightvault.lifecycle.recover`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.vault_tasks import vault, vault_task
from weightvault.artifacts import StatementRef
from weightvault.lifecycle import recover as steps
from weightvault.lifecycle.kit import KitDocument


@vault_task("recover-plan")
def plan(artifact_id: str, restore: bool) -> steps.RecoverPlan:
    """Record the intent; authenticate the manifest and statement; find the kit."""
    return steps.plan(vault(), artifact_id, restore=restore)


@vault_task("workspace", retry=False)
def workspace() -> Path:
    """A fresh private workspace."""
    return steps.workspace()


@vault_task("unpack-kit")
def unpack_kit(p: steps.RecoverPlan, ws: Path) -> KitDocument:
    """Decrypt the rebuild kit into the workspace."""
    return steps.unpack_kit(vault(), p, ws)


@vault_task("restore-source", retry=False)
def source(ws: Path, kit: KitDocument) -> tuple[Path, str]:
    """Clone the stored bundle (else the recorded remote) at the recorded commit."""
    return steps.source(ws, kit)


@vault_task("environment", retry=False)
def environment(p: steps.RecoverPlan, ws: Path, src: Path, mode: str) -> steps.EnvironmentInfo:
    """Recreate the recorded environment from its lock file, offline."""
    return steps.environment(p, ws, src, mode)


@vault_task("pull-datasets")
def datasets(p: steps.RecoverPlan, src: Path) -> tuple[dict[str, Any], ...]:
    """dvc pull the recorded datasets; check md5 and sha256."""
    return steps.datasets(vault(), p, src)


@vault_task("dvc-repro", retry=False)
def reproduce(p: steps.RecoverPlan, src: Path, env: steps.EnvironmentInfo) -> tuple[str, ...]:
    """dvc repro the recorded stages."""
    return steps.reproduce(p, src, env)


@vault_task("compare")
def compare(p: steps.RecoverPlan, ws: Path, src: Path, kit: KitDocument) -> steps.Comparison:
    """Compare every output file with the manifest (tensors of differing safetensors)."""
    return steps.compare(vault(), p, ws, src, kit)


@vault_task("certify", retry=False)
def certify(
    p: steps.RecoverPlan,
    kit: KitDocument,
    origin: str,
    env: steps.EnvironmentInfo,
    checked: tuple[dict[str, Any], ...],
    stages: tuple[str, ...],
    comparison: steps.Comparison,
    timings: dict[str, float],
) -> StatementRef:
    """Sign and store the reproducibility certificate."""
    return steps.certify(vault(), p, kit, origin, env, checked, stages, comparison, timings)


@vault_task("restore", retry=False)
def restore(
    p: steps.RecoverPlan, ws: Path, src: Path, kit: KitDocument, comparison: steps.Comparison
) -> int:
    """Put the rebuilt files back under the same id (only after a match)."""
    return steps.restore(vault(), p, ws, src, kit, comparison)


@vault_task("finish", retry=False)
def finish(
    p: steps.RecoverPlan, details: dict[str, Any], error: BaseException | None = None
) -> None:
    """Record the outcome."""
    steps.finish(vault(), p, details, error)


@vault_task("cleanup", retry=False)
def cleanup(ws: Path) -> None:
    """Remove the workspace."""
    steps.cleanup(ws)
