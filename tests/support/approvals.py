"""Signed approvals for tests: real identities, enrolled approvers, logged statements."""

from __future__ import annotations

from dataclasses import replace

from weightvault.artifacts import Vault, current_root, enrolled
from weightvault.keys import create_identity, identity_path, read_public
from weightvault.lifecycle.approvals import approve
from weightvault.lifecycle.trust import enrol_principal, init_root

APPROVERS = ("approver-1", "approver-2")


def approved(
    vault: Vault, artifact_id: str, purpose: str, names: tuple[str, ...] = APPROVERS
) -> None:
    """Have ``names`` (made and enrolled as approvers when new) approve ``artifact_id``.

    Publishes a trust root first when the vault has none (enrolment needs one).
    """
    if current_root(vault.settings, vault.store, None) is None:
        init_root(vault, keys=1, threshold=1)
    root = current_root(vault.settings, vault.store, None)
    known = {p.name for p in enrolled(root, vault.keys)}
    for name in names:
        if name in known:
            continue
        path = identity_path(name)
        public = read_public(path) if path.exists() else create_identity(name)
        enrol_principal(vault, name, public.public_key, ["approver"])
    vault.forget_principal()
    for name in names:
        approve(
            Vault.open(vault.settings, identity=name),
            artifact_id,
            purpose=purpose,
            justification=f"{name} reviewed it",
        )


def self_approved(vault: Vault, artifact_id: str, purpose: str = "cold") -> Vault:
    """The vault as configured for one approver who may be the creator, having approved.

    ``[approvals] required = 1`` and ``creator_may_approve = true`` (a configuration the
    policy honours) for tests about something else than the two-person rule, so they
    need no trust root; the returned vault acts as ``vault``'s identity and is the one
    to promote or release with.
    """
    solo = Vault.open(
        replace(vault.settings, approvals_required=1, creator_may_approve=True),
        identity=vault.identity,
    )
    approve(solo, artifact_id, purpose=purpose, justification="the only approver")
    return solo
