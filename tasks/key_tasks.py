"""Prefect tasks over key rotation, compromise response and escrow.

Thin adapters over :mod:`weightvault.lifecycle.rotation`, :mod:`weightvault.lifecycle.rekey` and
:mod:`weightvault.lifecycle.escrow`. They retry only on StoreUnavailableError (every
step is idempotent, so a retry or a re-run converges); results are never
persisted and hold ids, versions and counts, never key material.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.vault_tasks import RETRYING, vault
from weightvault.errors import ConflictError
from weightvault.lifecycle import rekey as core_rekey
from weightvault.lifecycle import rotation
from weightvault.lifecycle.escrow import escrow_all_cold


def _rotation(rot: dict[str, Any]) -> rotation.TierRotation:
    return rotation.TierRotation(
        tier=str(rot["tier"]),
        kek_id=str(rot["kek_id"]),
        target_version=int(rot["target_version"]),
        old_versions=tuple(int(v) for v in rot["old_versions"]),
        created=bool(rot["created"]),
    )


# -- rotation -------------------------------------------------------------------


@task(name="find-due-keys", **RETRYING)
def find_due(force_tiers: list[str], force_signing: bool) -> list[dict[str, Any]]:
    """Keys past or near the end of their lifetime, forced tiers, unfinished rotations."""
    v = vault()
    due = rotation.due_keys(
        v,
        rotation.load_policy(v),
        datetime.now(UTC),
        force_tiers=force_tiers,
        force_signing=force_signing,
    )
    return [d.to_dict() for d in due]


@task(name="start-rotation", task_run_name="start-rotation {tier}", **RETRYING)
def start_tier(tier: str) -> dict[str, Any]:
    """Create the tier's new KEK version, or reuse the one an interrupted run made."""
    return rotation.start_rotation(vault(), tier).to_dict()


@task(name="plan-batches", **RETRYING)
def plan_batches(rot: dict[str, Any], batch_size: int) -> list[list[str]]:
    """Artifact ids whose envelope is still on an old version, cut into batches."""
    refs = rotation.pending_envelopes(vault(), _rotation(rot))
    return rotation.batches([r.artifact_id for r in refs], batch_size)


@task(name="rewrap-batch", task_run_name="rewrap {rot[tier]} batch of {ids[0]}", **RETRYING)
def rewrap(rot: dict[str, Any], ids: list[str], workers: int) -> dict[str, int]:
    """Rewrap one batch of envelopes in parallel; one catalog transaction."""
    r = _rotation(rot)
    refs = [rotation.EnvelopeRef(a, r.tier) for a in ids]
    return rotation.rewrap_batch(vault(), r, refs, workers=workers).to_dict()


@task(name="verify-sample", **RETRYING)
def verify_sample(ids: list[str], size: int) -> list[str]:
    """Decrypt and hash a few rotated artifacts end to end."""
    return rotation.verify_sample(vault(), ids, size)


@task(name="retire-old-versions", task_run_name="retire {rot[tier]}", **RETRYING)
def retire(rot: dict[str, Any], workers: int) -> dict[str, Any]:
    """Retire old versions nothing references (catalog and store double-checked)."""
    return rotation.retire_drained(vault(), _rotation(rot), workers=workers).to_dict()


@task(name="rotate-signing-key", **RETRYING)
def rotate_signing() -> str:
    """New signing key version; old public keys stay trusted for old signatures."""
    return rotation.rotate_signing(vault())


@task(name="publish-trust-root", **RETRYING)
def publish_trust_root() -> dict[str, Any]:
    """Publish every non-destroyed public signing key to the audit bucket."""
    return rotation.publish_trust_root(vault())


@task(name="ensure-escrow", **RETRYING)
def ensure_escrow() -> dict[str, int]:
    """Escrow cold artifacts that lack an envelope for the active escrow key."""
    return escrow_all_cold(vault())


@task(name="record-rotation", **RETRYING)
def record_run(summary: dict[str, Any]) -> None:
    """The audit event of the run (ids, versions and counts only)."""
    vault().record_event(
        "keys.rotation_run",
        None,
        {
            "tiers": [t["target"] for t in summary["tiers"]],
            "rewrapped": summary["rewrapped"],
            "retired": [r for t in summary["tiers"] for r in t["retired"]],
            "signing": summary["signing"],
            "duration_s": summary["duration_s"],
        },
    )


@task(name="publish-rotation-report", persist_result=False, cache_policy=NO_CACHE)
def publish_rotation_report(summary: dict[str, Any]) -> str:
    """Publish the run's markdown report; returns the markdown."""
    markdown = rotation.render_report(summary)
    create_markdown_artifact(
        markdown=markdown, key="rotation-report", description="weightvault key rotation run"
    )
    return markdown


# -- compromise response ------------------------------------------------------------


@task(name="resume-reencryptions", **RETRYING)
def resume_journals() -> list[dict[str, Any]]:
    """Roll forward re-encryptions an interrupted run left after their commit point."""
    return [r.to_dict() for r in core_rekey.resume_journals(vault())]


@task(name="compromise-key", **RETRYING)
def compromise(
    key: str, since: datetime | None, exposed: list[str], all_exposed: bool
) -> dict[str, Any]:
    """Mark the key version compromised (once) and list what it protects."""
    return rotation.compromise_key(
        vault(), key, since=since, exposed=exposed, all_exposed=all_exposed
    ).to_dict()


@task(name="re-encrypt", task_run_name="re-encrypt {artifact_id}", **RETRYING)
def reencrypt(artifact_id: str) -> dict[str, Any]:
    """Re-encrypt one artifact under a fresh DEK (resumable)."""
    try:
        return core_rekey.reencrypt_artifact(vault(), artifact_id).to_dict()
    except ConflictError as exc:
        return {"artifact_id": artifact_id, "busy": exc.message}


@task(name="rewrap-compromised", task_run_name="rewrap batch of {ids[0]}", **RETRYING)
def rewrap_compromised(key: str, ids: list[str], workers: int) -> dict[str, int]:
    """Move envelopes off the compromised version to the tier's fresh version."""
    v = vault()
    rec = rotation.resolve_key(v, key)
    return core_rekey.rewrap_compromised(v, rec, ids, workers=workers).to_dict()


@task(name="remaining-on-key", **RETRYING)
def remaining(key: str) -> int:
    """Envelopes still on the key version."""
    return core_rekey.remaining_on(vault(), key)


def rekey_markdown(summary: dict[str, Any]) -> str:
    """The compromise response report."""
    lines = [
        f"# Compromise response for `{summary['key']}`",
        "",
        f"Took {summary['duration_s']:.2f} s. New wraps go to `{summary['replacement']}`.",
        "",
        "| | count |",
        "|---|---|",
        f"| artifacts protected | {len(summary['protected'])} |",
        f"| re-encrypted under a fresh DEK | {len(summary['reencrypted'])} |",
        f"| rewrapped under a fresh KEK version | {summary['rewrapped']['rewrapped']} |",
        f"| resumed from an interrupted run | {len(summary['resumed'])} |",
        f"| busy (retry later) | {len(summary['busy'])} |",
        f"| envelopes still on the key | {summary['remaining']} |",
        "",
        "## Artifacts",
        "",
        "| artifact | tier | action | why |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{p['artifact_id']}` | {p['tier']} | {p['action']} | {p['why']} |"
        for p in summary["protected"]
    ]
    return "\n".join(lines)


@task(name="publish-rekey-report", persist_result=False, cache_policy=NO_CACHE)
def publish_rekey_report(summary: dict[str, Any]) -> str:
    """Publish the compromise response report."""
    markdown = rekey_markdown(summary)
    create_markdown_artifact(
        markdown=markdown, key="rekey-report", description="weightvault compromise response"
    )
    return markdown
