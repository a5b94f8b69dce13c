"""The promote flow: gates, server-side copy, rewrap, attest, commit.

Started from the Prefect UI by filling the form of the `promote` deployment.
A failed gate ends the run with every reason in its report and the artifact
untouched; a failure after the claim compensates, so the artifact stays in
its source tier.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, Field

from tasks import gate_tasks, reports


class PromoteParams(BaseModel):
    """The promotion form."""

    artifact_id: str = Field(description="Artifact id (or unique prefix) to promote")
    target_tier: Literal["warm", "cold"] = Field(
        description="warm from hot (staging inference), cold from warm (archived release)"
    )
    approver: str = Field(description="Who approves; for cold, not the artifact's creator")
    justification: str = Field(description="Why this artifact should move")
    legal_hold: bool = Field(default=False, description="Cold only: place a legal hold")


@flow(name="promote", description="Gated tier promotion.", persist_result=False)
def promote(params: PromoteParams) -> dict[str, Any]:
    """Promote one artifact; the summary carries no key material."""
    move = gate_tasks.prepare(
        params.artifact_id,
        params.target_tier,
        params.approver,
        params.justification,
        params.legal_hold,
    )
    integrity = gate_tasks.integrity(move)
    policy, digest = gate_tasks.policy(move, integrity)
    gates = [integrity, policy]
    if not all(g.passed for g in gates):
        reports.publish_promotion_report(move.artifact_id, params.target_tier, gates, None)
        gate_tasks.refuse_move(move, gates)
    gate_tasks.claim(move)
    try:
        gate_tasks.copy(move)
        gate_tasks.rewrap(move)
        result = gate_tasks.commit(move, gates, digest)
    except BaseException:
        gate_tasks.compensate(move)
        raise
    reports.publish_promotion_report(move.artifact_id, params.target_tier, gates, result)
    return {
        "artifact_id": result.artifact_id,
        "from": result.source,
        "to": result.target,
        "attestation": result.attestation,
        "policy_digest": result.policy_digest,
        "retain_until": result.retain_until,
        "gates": [g.to_dict() for g in result.gates],
    }
