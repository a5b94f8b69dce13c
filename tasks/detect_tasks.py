"""Prefect tasks of the detect flow: one run of :func:`weightvault.lifecycle.incidents.detect`.

A run is one logged operation that resumes from the last completed run's cursor; a
retry after a transient store error starts again from that cursor and opens no
incident twice (the ids are deterministic and checked against the log).
"""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact

from tasks.vault_tasks import vault, vault_task
from weightvault.lifecycle import grants as grant_steps
from weightvault.lifecycle import incidents as steps


@vault_task("sync-grants")
def sync_grants() -> int:
    """Log the grant receipts collaborators left since the last sync (``grants sync``).

    A use of a revoked or expired grant becomes evidence only once its receipt is
    logged, so the detect flow syncs first. Returns how many receipts it recorded.
    """
    return len(grant_steps.sync_grants(vault()))


@vault_task("detect")
def run_detect() -> dict[str, Any]:
    """Run the detection rules on the log's new entries; open incidents."""
    report = steps.detect(vault())
    return {**report.to_dict(), "markdown": report.markdown()}


@vault_task("publish-incidents", retry=False)
def publish(report: dict[str, Any]) -> None:
    """Publish the incidents the run opened as a Prefect markdown artifact."""
    create_markdown_artifact(
        markdown=str(report["markdown"]),
        key="detect-incidents",
        description=f"weightvault detect: {len(report['opened'])} incident(s) opened",
    )
