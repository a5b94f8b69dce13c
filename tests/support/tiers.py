"""Artifacts in warm or cold for tests about something else: put into hot, then promoted.

``put --tier warm|cold`` is refused (authorization rule ``put_tier``): warm and
cold are reached only by promotion. A test that needs an artifact in warm or
cold puts it into hot and promotes it through the real promotion (claim, copy,
rewrap, attestation, commit, escrow, source removal). Those tests are not about
the admission gates, and their content (a few arbitrary files, no provenance)
could not pass them, so the promotion runs under an admission policy that
admits everything, installed in a directory of its own beside the real
``authz.rego``; the caller's vault and settings are left as they were.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from tests.support.durable_store import ALLOW_ALL_POLICY
from weightvault.artifacts import Vault
from weightvault.lifecycle import ingest
from weightvault.lifecycle.promote import promote


def permissive(vault: Vault) -> Vault:
    """``vault`` (same identity, store and home) under the admit-everything admission policy."""
    policies = vault.settings.home / "test-permissive-policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "weightvault.rego").write_text(ALLOW_ALL_POLICY)
    shutil.copyfile(vault.settings.policy_dir / "authz.rego", policies / "authz.rego")
    return Vault.open(replace(vault.settings, policy_dir=policies), identity=vault.identity)


def promote_into(vault: Vault, artifact_id: str, tier: str) -> None:
    """Promote a hot artifact into ``tier`` (hot: nothing; cold: by way of warm)."""
    if tier == "hot":
        return
    gated = permissive(vault)
    promote(gated, artifact_id, "warm", justification="test fixture: staging")
    if tier == "cold":
        promote(gated, artifact_id, "cold", justification="test fixture: release")


def stored_in(
    vault: Vault, source: Path, name: str, tier: str, labels: dict[str, str] | None = None
) -> str:
    """Put ``source`` into hot and promote it into ``tier``; returns the artifact id."""
    artifact_id = ingest.put(vault, source, name, labels=labels).artifact_id
    promote_into(vault, artifact_id, tier)
    return artifact_id
