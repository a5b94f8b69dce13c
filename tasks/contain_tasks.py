"""Prefect tasks over the contain playbook: one task per step of
:mod:`weightvault.lifecycle.contain` (the CLI's ``weightvault contain`` runs the same steps
in a row). Steps are never retried by Prefect: each one is idempotent and logged, and a
failed step stops the playbook (fail closed); the next run skips what the log shows done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact

from tasks.vault_tasks import vault, vault_task
from weightvault.lifecycle import contain as core


@vault_task("find-incidents", retry=False)
def find_incidents(hint: dict[str, Any], run_detector: bool = True) -> list[core.ContainmentPlan]:
    """The incidents the signed log supports for a trigger's hint (the detector's seam)."""
    return core.find_incidents(vault(), hint, run_detector=run_detector)


@vault_task("revoke-grants", task_run_name="revoke-grants {plan.incident_id}", retry=False)
def revoke_grants(plan: core.ContainmentPlan) -> core.StepResult:
    """Revoke the grants issued to or by the incident's principals."""
    return core.run_step(vault(), plan, "revoke_grants")


@vault_task(
    "quarantine-artifacts", task_run_name="quarantine-artifacts {plan.incident_id}", retry=False
)
def quarantine_artifacts(plan: core.ContainmentPlan) -> core.StepResult:
    """Quarantine the incident's artifacts."""
    return core.run_step(vault(), plan, "quarantine_artifacts")


@vault_task("isolate-tiers", task_run_name="isolate-tiers {plan.incident_id}", retry=False)
def isolate_tiers(plan: core.ContainmentPlan) -> core.StepResult:
    """Isolate the tiers of a tier-wide incident."""
    return core.run_step(vault(), plan, "isolate_tiers")


@vault_task("compromise-keys", task_run_name="compromise-keys {plan.incident_id}", retry=False)
def compromise_keys(plan: core.ContainmentPlan) -> core.StepResult:
    """Mark the incident's keys compromised."""
    return core.run_step(vault(), plan, "compromise_keys")


@vault_task("rekey-inline", task_run_name="rekey-inline {plan.incident_id}", retry=False)
def rekey_keys(plan: core.ContainmentPlan) -> core.StepResult:
    """The rekey response in this process (when the rekey deployment is not served)."""
    return core.run_step(vault(), plan, "rekey_keys")


@vault_task("recover-artifacts", task_run_name="recover-artifacts {plan.incident_id}", retry=False)
def recover_artifacts(plan: core.ContainmentPlan) -> core.StepResult:
    """Rebuild the incident's artifacts from their kits, restore after a match, verify."""
    return core.run_step(vault(), plan, "recover_artifacts")


@vault_task("finish-containment", task_run_name="finish {plan.incident_id}", retry=False)
def finish(
    plan: core.ContainmentPlan, steps: list[core.StepResult], out: str | None
) -> core.ContainmentResult:
    """The incident bundle, ``incident.contained`` and the report file."""
    v = vault()
    target = Path(out) if out else core.default_out(v, plan)
    return core.finish_playbook(v, plan, list(steps), target)


@vault_task("publish-containment-report", retry=False)
def publish_report(incident_id: str, markdown: str) -> str:
    """Publish the report as a Prefect markdown artifact."""
    key = "".join(c if c.isalnum() else "-" for c in incident_id.lower())[:90]
    create_markdown_artifact(
        markdown=markdown,
        key=f"contain-{key}",
        description=f"weightvault containment of incident {incident_id}",
    )
    return markdown
