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

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.vault_tasks import RETRYING, vault
from weightvault.lifecycle import rekey as core_rekey
from weightvault.lifecycle import rotation

# -- rotation -------------------------------------------------------------------


@task(name="find-due-keys", **RETRYING)
def find_due(
    now: datetime, force_tiers: tuple[str, ...], force_signing: bool
) -> tuple[rotation.DueKey, ...]:
    """Keys past or near the end of their lifetime, forced tiers, unfinished rotations."""
    return rotation.find_due(vault(), now, force_tiers=force_tiers, force_signing=force_signing)


@task(name="start-rotation", task_run_name="start-rotation {tier}", **RETRYING)
def start_tier(tier: str) -> rotation.TierRotation:
    """Create the tier's new KEK version, or reuse the one an interrupted run made."""
    return rotation.start_rotation(vault(), tier)


@task(name="plan-batches", task_run_name="plan-batches {rot.tier}", **RETRYING)
def plan_batches(rot: rotation.TierRotation, batch_size: int) -> rotation.RewrapPlan:
    """Artifact ids whose envelope is still on an old version, cut into batches."""
    return rotation.plan_rewrap(vault(), rot, batch_size)


@task(name="rewrap-batch", task_run_name="rewrap {rot.tier} batch of {ids[0]}", **RETRYING)
def rewrap(rot: rotation.TierRotation, ids: tuple[str, ...], workers: int) -> rotation.RewrapStats:
    """Rewrap one batch of envelopes in parallel; one catalog transaction."""
    return rotation.rewrap(vault(), rot, ids, workers=workers)


@task(name="verify-sample", **RETRYING)
def verify_sample(ids: tuple[str, ...], size: int) -> list[str]:
    """Decrypt and hash a few rotated artifacts end to end."""
    return rotation.verify_sample(vault(), ids, size)


@task(name="retire-old-versions", task_run_name="retire {rot.tier}", **RETRYING)
def retire(rot: rotation.TierRotation, workers: int) -> rotation.RetireResult:
    """Retire old versions nothing references (catalog and store double-checked)."""
    return rotation.retire_drained(vault(), rot, workers=workers)


@task(name="rotate-signing-key", **RETRYING)
def rotate_signing(replaces: int) -> str:
    """New signing key version (once); old public keys stay trusted for old signatures."""
    return rotation.rotate_signing(vault(), replaces)


@task(name="publish-trust-root", **RETRYING)
def publish_trust_root() -> dict[str, Any]:
    """Publish every non-destroyed public signing key to the audit bucket."""
    return rotation.publish_trust_root(vault())


@task(name="ensure-escrow", **RETRYING)
def repair_escrow() -> dict[str, int]:
    """Escrow cold artifacts that lack an envelope for the active escrow key."""
    return rotation.repair_escrow(vault())


@task(name="record-rotation", **RETRYING)
def record_run(record: rotation.RunRecord) -> None:
    """The audit event of the run (ids, versions and counts only)."""
    rotation.record_run(vault(), record)


@task(name="publish-rotation-report", persist_result=False, cache_policy=NO_CACHE)
def publish_rotation_report(markdown: str) -> str:
    """Publish the run's markdown report (:func:`rotation.render_report`)."""
    create_markdown_artifact(
        markdown=markdown, key="rotation-report", description="weightvault key rotation run"
    )
    return markdown


# -- compromise response ------------------------------------------------------------


@task(name="resume-reencryptions", **RETRYING)
def resume_journals() -> tuple[core_rekey.ReencryptResult, ...]:
    """Roll forward re-encryptions an interrupted run left after their commit point."""
    return core_rekey.resume_journals(vault())


@task(name="compromise-key", **RETRYING)
def compromise(
    key: str, since: datetime | None, exposed: tuple[str, ...], all_exposed: bool
) -> rotation.CompromiseReport:
    """Mark the key version compromised (once) and list what it protects."""
    return rotation.compromise_key(
        vault(), key, since=since, exposed=exposed, all_exposed=all_exposed
    )


@task(name="re-encrypt", task_run_name="re-encrypt {artifact_id}", **RETRYING)
def reencrypt(artifact_id: str) -> core_rekey.ReencryptResult | core_rekey.Busy:
    """Re-encrypt one artifact under a fresh DEK (resumable); Busy if another move holds it."""
    return core_rekey.reencrypt(vault(), artifact_id)


@task(name="rewrap-compromised", task_run_name="rewrap batch of {ids[0]}", **RETRYING)
def rewrap_compromised(key: str, ids: tuple[str, ...], workers: int) -> rotation.RewrapStats:
    """Move envelopes off the compromised version to the tier's fresh version."""
    return core_rekey.rewrap_compromised(vault(), key, ids, workers=workers)


@task(name="remaining-on-key", **RETRYING)
def remaining(key: str) -> int:
    """Envelopes still on the key version."""
    return core_rekey.remaining_on(vault(), key)


@task(name="publish-rekey-report", persist_result=False, cache_policy=NO_CACHE)
def publish_rekey_report(markdown: str) -> str:
    """Publish the compromise response report (:func:`core_rekey.render_report`)."""
    create_markdown_artifact(
        markdown=markdown, key="rekey-report", description="weightvault compromise response"
    )
    return markdown
