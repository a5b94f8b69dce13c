"""Claims: the catalog's "this artifact is moving" mark, as an immutable token.

Every tier move (promotion, quarantine, release) takes a claim first, so of
two concurrent moves of one artifact exactly one wins. The claim is returned
as a frozen :class:`Claim` carrying the placement's generation: the steps
after it check they still hold it, and releasing it drops only that claim,
never a newer one taken by someone else.
"""

from __future__ import annotations

from dataclasses import dataclass

from weightvault.artifacts import Vault
from weightvault.errors import ConflictError

__all__ = ["Claim", "held", "release", "take"]


@dataclass(frozen=True)
class Claim:
    """A held claim on one artifact's move from ``source`` to ``target``."""

    artifact_id: str
    source: str
    target: str
    generation: int


def take(vault: Vault, artifact_id: str, source: str, target: str) -> Claim:
    """Mark the artifact as moving; ConflictError if another move holds it."""
    generation = vault.catalog.claim(artifact_id, source, target)
    return Claim(artifact_id, source, target, generation)


def held(vault: Vault, claim: Claim) -> bool:
    """True while ``claim`` is held; False once the move it guards is indexed.

    Raises ConflictError when the claim was lost (released, or the artifact was
    moved elsewhere): the step that asked must not go on.
    """
    row = vault.catalog.artifact(claim.artifact_id)
    placement = vault.catalog.placement(claim.artifact_id)
    if row.tier == claim.target and placement["pending"] is None:
        return False
    if (
        row.tier == claim.source
        and placement["pending"] == claim.target
        and placement["generation"] == claim.generation
    ):
        return True
    raise ConflictError(
        f"artifact {claim.artifact_id} is no longer claimed for {claim.source}->{claim.target} "
        f"(now {row.tier}, pending {placement['pending'] or 'nothing'})"
    )


def release(vault: Vault, claim: Claim) -> bool:
    """Drop ``claim`` if it is still held; idempotent. True if it was dropped now."""
    return vault.catalog.release(claim.artifact_id, claim.generation)
