"""Signed approvals for tests: real identities, enrolled approvers, logged statements."""

from __future__ import annotations

from weightvault.artifacts import Vault, current_root
from weightvault.keys import create_identity, identity_path
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
    for name in names:
        if not identity_path(name).exists():
            enrol_principal(vault, name, create_identity(name).public_key, ["approver"])
    vault.forget_principal()
    for name in names:
        approve(
            Vault.open(vault.settings, identity=name),
            artifact_id,
            purpose=purpose,
            justification=f"{name} reviewed it",
        )
