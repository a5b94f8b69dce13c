"""Prefect tasks over key rotation and compromise response: one task per core step.

Each task calls exactly one step of :mod:`weightvault.lifecycle.rotation` or
:mod:`weightvault.lifecycle.rekey` (the CLI runs the same steps in a row), and
adds only retries and reports. Tasks take ids and immutable values (strings,
ints, tuples, frozen dataclasses) and return the steps' frozen results; every
step is idempotent, so a retry or a re-run converges. They retry only on
StoreUnavailableError; results are never persisted and hold ids, versions and
counts, never key material.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect.artifacts import create_markdown_artifact

from tasks.vault_tasks import vault, vault_task
from weightvault.lifecycle import compromise as core_compromise
from weightvault.lifecycle import rekey as core_rekey
from weightvault.lifecycle import rotation

# -- rotation -------------------------------------------------------------------


@vault_task("find-due-keys")
def find_due(
    now: datetime, force_tiers: tuple[str, ...], force_signing: bool
) -> tuple[rotation.DueKey, ...]:
    """Keys past or near the end of their lifetime, forced tiers, unfinished rotations."""
    return rotation.find_due(vault(), now, force_tiers=force_tiers, force_signing=force_signing)


@vault_task("start-rotation", task_run_name="start-rotation {tier}")
def start_tier(tier: str) -> rotation.TierRotation:
    """Create the tier's new KEK version, or reuse the one an interrupted run made."""
    return rotation.start_rotation(vault(), tier)


@vault_task("plan-batches", task_run_name="plan-batches {rot.tier}")
def plan_batches(rot: rotation.TierRotation, batch_size: int) -> rotation.RewrapPlan:
    """Artifact ids whose envelope is still on an old version, cut into batches."""
    return rotation.plan_rewrap(vault(), rot, batch_size)


@vault_task("rewrap-batch", task_run_name="rewrap {rot.tier} batch of {ids[0]}")
def rewrap(rot: rotation.TierRotation, ids: tuple[str, ...], workers: int) -> rotation.RewrapStats:
    """Rewrap one batch of envelopes in parallel; one catalog transaction."""
    return rotation.rewrap(vault(), rot, ids, workers=workers)


@vault_task("verify-sample")
def verify_sample(ids: tuple[str, ...], size: int) -> list[str]:
    """Decrypt and hash a few rotated artifacts end to end."""
    return rotation.verify_sample(vault(), ids, size)


@vault_task("retire-old-versions", task_run_name="retire {rot.tier}")
def retire(rot: rotation.TierRotation, workers: int) -> rotation.RetireResult:
    """Retire old versions nothing references (catalog and store double-checked)."""
    return rotation.retire_drained(vault(), rot, workers=workers)


@vault_task("rotate-signing-key")
def rotate_signing(replaces: int) -> str:
    """New signing key version (once); old public keys stay trusted for old signatures."""
    return rotation.rotate_signing(vault(), replaces)


@vault_task("publish-trust-root")
def publish_trust_root() -> dict[str, Any]:
    """Publish every non-destroyed public signing key to the audit bucket."""
    return rotation.publish_trust_root(vault())


@vault_task("ensure-escrow")
def repair_escrow() -> dict[str, int]:
    """Escrow cold artifacts that lack an envelope for the active escrow key."""
    return rotation.repair_escrow(vault())


@vault_task("record-rotation")
def record_run(record: rotation.RunRecord) -> None:
    """The audit event of the run (ids, versions and counts only)."""
    rotation.record_run(vault(), record)


@vault_task("publish-rotation-report", retry=False)
def publish_rotation_report(markdown: str) -> str:
    """Publish the run's markdown report (:func:`rotation.render_report`)."""
    create_markdown_artifact(
        markdown=markdown, key="rotation-report", description="weightvault key rotation run"
    )
    return markdown


# -- compromise response ------------------------------------------------------------


@vault_task("resume-reencryptions")
def resume_journals() -> tuple[core_rekey.ReencryptResult, ...]:
    """Roll forward re-encryptions an interrupted run left after their commit point."""
    return core_rekey.resume_journals(vault())


@vault_task("compromise-key")
def compromise(
    key: str, since: datetime | None, exposed: tuple[str, ...], all_exposed: bool
) -> core_compromise.CompromiseReport:
    """Mark the key version compromised (once) and list what it protects."""
    return core_compromise.compromise_key(
        vault(), key, since=since, exposed=exposed, all_exposed=all_exposed
    )


@vault_task("re-encrypt", task_run_name="re-encrypt {artifact_id}")
def reencrypt(artifact_id: str) -> core_rekey.ReencryptResult | core_rekey.Busy:
    """Re-encrypt one artifact under a fresh DEK (resumable); Busy if another move holds it."""
    return core_rekey.reencrypt(vault(), artifact_id)


@vault_task("rewrap-compromised", task_run_name="rewrap batch of {ids[0]}")
def rewrap_compromised(key: str, ids: tuple[str, ...], workers: int) -> rotation.RewrapStats:
    """Move envelopes off the compromised version to the tier's fresh version."""
    return core_rekey.rewrap_compromised(vault(), key, ids, workers=workers)


@vault_task("remaining-on-key")
def remaining(key: str) -> int:
    """Envelopes still on the key version."""
    return core_rekey.remaining_on(vault(), key)


@vault_task("publish-rekey-report", retry=False)
def publish_rekey_report(markdown: str) -> str:
    """Publish the compromise response report (:func:`core_rekey.render_report`)."""
    create_markdown_artifact(
        markdown=markdown, key="rekey-report", description="weightvault compromise response"
    )
    return markdown
