"""The promote flow: gates, server-side copy, rewrap, attest, commit.

Started from the Prefect UI by filling the form of the `promote` deployment.
The steps are the core's (``weightvault.lifecycle.promote``), run as tasks
that pass only ids and immutable values. A failed gate ends the run with every
reason in its report and the artifact untouched. The moving steps run in one
Prefect transaction: a failure before the commit point rolls it back, and the
tasks' ``on_rollback`` hooks discard the envelope and copies and release the
claim, so the artifact stays in its source tier with nothing half-promoted
visible. Past the commit point those hooks leave the target alone (the move
rolls forward; the commit step converges when run again).

A cold promotion started from the deployment (the UI's Run button, or the
API) pauses after the plan for review: the run waits for input whose form
lists the approvals the signed log backs (``check_approvals``: who, key, when,
until when, what does not count and why, how many are still needed) and
offers only a promote / cancel choice, so nothing typed into it can stand in
for an approval. The same listing is the run's ``approvals-<id>`` artifact. After
the resume the policy gate checks the log again. A ``promote(...)`` call
outside a deployment (tests, the demo, the CLI's steps) does not pause.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.transactions import transaction
from pydantic import Field

from flows._operator import field, refusals_fail
from tasks import gate_tasks, reports, vault_tasks
from weightvault.errors import PolicyError
from weightvault.lifecycle.promote import PromotionPlan

#: how long a paused cold promotion waits for its review (then the run fails)
REVIEW_TIMEOUT_S = 3600
REVIEW_POLL_S = 2


class PromotionReview(RunInput):
    """The review form of a paused cold promotion: a decision, and nothing that approves."""

    decision: Literal["promote", "cancel"] = Field(
        description="promote: run the gates (they check the signed approvals again)"
    )


def _from_deployment() -> bool:
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    return run is not None and run.deployment_id is not None


def review(plan: PromotionPlan) -> None:
    """Pause a cold promotion started from the deployment until someone reviews it.

    The form's description lists the approvals the log backs and the
    reproducibility certificate's status (found, missing, not valid, not
    required); cancelling refuses the promotion (PolicyError, logged as refused).
    """
    if plan.target != "cold" or not _from_deployment():
        return
    markdown = reports.publish_approvals(gate_tasks.approvals(plan))
    markdown += "\n\n" + reports.certificate_markdown(
        gate_tasks.certificate(plan), plan.artifact_id
    )
    answer = pause_flow_run(
        wait_for_input=PromotionReview.with_initial_data(description=markdown),
        timeout=REVIEW_TIMEOUT_S,
        poll_interval=REVIEW_POLL_S,
    )
    if answer.decision != "promote":
        raise PolicyError(f"promotion of {plan.artifact_id} to cold cancelled at review")


@flow(
    name="promote",
    description="Gated tier promotion.",
    flow_run_name="promote-{artifact_id}-to-{target_tier}",
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def promote(
    artifact_id: str = field("Artifact", "Artifact id (or a unique prefix of it) to promote"),
    target_tier: Literal["warm", "cold"] = field(
        "Target tier", "warm: from hot, for staging inference; cold: from warm, archived release"
    ),
    justification: str = field("Justification", "Why this artifact should move"),
    legal_hold: bool = field("Legal hold", "Cold only: place a legal hold on the objects", False),
) -> dict[str, Any]:
    """Promote one artifact; the summary carries no key material.

    The run is one logged ``artifact.promotion`` operation, as on the CLI: its
    intent is recorded before the gates, its outcome after. A refusing gate is
    the failed task of the run; the run then fails with the reasons.
    """
    details = {"to": target_tier, "justification": justification}
    vault = vault_tasks.vault()
    with vault.artifact_operation("artifact.promotion", artifact_id, details) as op:
        plan = gate_tasks.plan(artifact_id, target_tier, justification, legal_hold)
        review(plan)
        integrity = gate_tasks.run_gate(gate_tasks.integrity, plan)
        policy, digest = gate_tasks.run_policy_gate(plan, integrity)
        gates = (integrity, policy)
        if not all(g.passed for g in gates):
            reports.publish_promotion_report(plan.artifact_id, target_tier, gates, None)
            raise PolicyError(gate_tasks.refuse_move(plan, gates))
        with transaction():
            held = gate_tasks.claim(plan)
            gate_tasks.copy(plan, held)
            gate_tasks.rewrap(plan, held)
            result = gate_tasks.commit(plan, held, gates, digest)
        op.details["policy_digest"] = digest
    reports.publish_promotion_report(plan.artifact_id, target_tier, gates, result)
    return {
        "artifact_id": result.artifact_id,
        "from": result.source,
        "to": result.target,
        "attestation": result.attestation,
        "policy_digest": result.policy_digest,
        "retain_until": result.retain_until,
        "gates": [g.to_dict() for g in result.gates],
    }
