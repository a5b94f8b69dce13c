"""Claims: the catalog's "this artifact is moving" mark, as an immutable token.

Every tier move (promotion, quarantine, release) takes a claim first, so of
two concurrent moves of one artifact exactly one wins. The claim is returned
as a frozen :class:`Claim` carrying the placement's generation: the steps
after it check they still hold it, and releasing it drops only that claim,
never a newer one taken by someone else.

A claim records its owner (host, pid and process start time) and a lease
that every check of it renews. A move killed mid-way leaves its claim behind;
the next attempt of the same move takes it over when the claim is stale: its
owner process on this host is gone (same pid and start time no longer
running), or, for an owner on another host, its lease expired; or it names
no owner (a claim taken before owners were recorded). A live claim is
respected. The takeover is recorded as an event, and the old holder's next
step finds its claim lost and stops.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from weightvault._time import iso_seconds, parse_iso
from weightvault.artifacts import Vault
from weightvault.catalog import ClaimHolder, ClaimOwner
from weightvault.errors import ConflictError
from weightvault.logs import get_logger
from weightvault.processes import ProcessRef, is_running

__all__ = ["LEASE", "TAKEN_OVER", "Claim", "held", "release", "stale_reason", "take"]

log = get_logger("weightvault.lifecycle.claims")

#: How long a claim stays valid without a check of it (each step renews it).
LEASE = timedelta(minutes=30)
TAKEN_OVER = "artifact.claim_taken_over"


@dataclass(frozen=True)
class Claim:
    """A held claim on one artifact's move from ``source`` to ``target``."""

    artifact_id: str
    source: str
    target: str
    generation: int


def _owner(vault: Vault) -> ClaimOwner:
    me = ProcessRef.of(os.getpid())
    return ClaimOwner(socket.gethostname(), me.pid, me.started, iso_seconds(_lease_end(vault)))


def _lease_end(vault: Vault) -> datetime:
    return vault.clock() + LEASE


def stale_reason(holder: ClaimHolder, now: datetime) -> str | None:
    """Why the pending claim ``holder`` may be taken over, or None while it is live."""
    owner = holder.owner
    if owner is None:
        return "the claim names no owner"
    if owner.host == socket.gethostname():
        # On this host the owner's liveness is known: a slow step of a live owner is no
        # reason to take its claim, however long it takes.
        if is_running(ProcessRef(owner.pid, owner.started)):
            return None
        return f"its owner (pid {owner.pid} on {owner.host}) is gone"
    if parse_iso(owner.lease_until) <= now:
        return f"its lease expired at {owner.lease_until}"
    return None


def take(vault: Vault, artifact_id: str, source: str, target: str) -> Claim:
    """Mark the artifact as moving; ConflictError if another live move holds it.

    A stale claim of the same move is taken over (and the takeover recorded).
    """
    try:
        generation = vault.catalog.claim(artifact_id, source, target, _owner(vault))
    except ConflictError:
        holder = vault.catalog.claim_holder(artifact_id)
        if holder is None or holder.source != source:
            raise
        reason = stale_reason(holder, vault.clock())
        if reason is None:
            raise
        if holder.target != target:
            if holder.owner is None:
                raise  # another kind of move (a re-encryption) without a recorded owner
            raise ConflictError(
                f"artifact {artifact_id} is claimed for {holder.source}->{holder.target} by a "
                f"move that is no longer running ({reason}): run that move again to finish it"
            ) from None
        previous = holder.owner
        details = {
            "from": source,
            "to": target,
            "reason": reason,
            "previous_owner": (
                f"pid {previous.pid} on {vault.private(previous.host)}" if previous else None
            ),
        }
        with vault.operation(TAKEN_OVER, artifact_id, source, details) as op:
            generation = vault.catalog.take_over(holder, _owner(vault))
            op.details["generation"] = generation
        log.warning("claim.taken_over", artifact_id=artifact_id, **op.details)
    return Claim(artifact_id, source, target, generation)


def held(vault: Vault, claim: Claim) -> bool:
    """True while ``claim`` is held (its lease renewed); False once the move is indexed.

    Raises ConflictError when the claim was lost (released, taken over, or the
    artifact was moved elsewhere): the step that asked must not go on.
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
        vault.catalog.renew(claim.artifact_id, claim.generation, iso_seconds(_lease_end(vault)))
        return True
    raise ConflictError(
        f"artifact {claim.artifact_id} is no longer claimed for {claim.source}->{claim.target} "
        f"(now {row.tier}, pending {placement['pending'] or 'nothing'})"
    )


def release(vault: Vault, claim: Claim) -> bool:
    """Drop ``claim`` if it is still held; idempotent. True if it was dropped now."""
    return vault.catalog.release(claim.artifact_id, claim.generation)
