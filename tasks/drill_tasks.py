"""Prefect tasks of the dr-drill flow: each one step of :mod:`weightvault.lifecycle.drill`."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact

from tasks.vault_tasks import vault, vault_task
from weightvault.lifecycle import drill as steps


@vault_task("dr-drill", retry=False)
def run_drill(sample: int, artifact_ids: tuple[str, ...]) -> dict[str, Any]:
    """Rehearse on a scratch vault: copy, destroy, restore, verify, clean up (logged)."""
    return steps.run_drill(vault(), sample=sample, artifact_ids=artifact_ids)


@vault_task("publish-drill-report", retry=False)
def publish(report: dict[str, Any]) -> None:
    """Publish the drill report as a Prefect markdown artifact."""
    create_markdown_artifact(
        markdown=str(report["markdown"]),
        key="dr-drill-report",
        description=f"weightvault DR drill {report['drill_id']}",
    )
