"""Quarantine: an artifact isolated by an incident or a failed scan.

Objects stay where they are (cold objects cannot move under object lock); a
marker in the quarantine bucket, the catalog and every read path refuse reads
until :func:`release`.

The truth is the log: each move signs a statement (``quarantine``: origin,
reason, by; ``release``: origin, approvers, justification, by) bound to its ok
outcome, and the latest quarantined/released entry of the signed log decides
(:meth:`weightvault.artifacts.Vault.logged_quarantine`): reads are refused
when it is a quarantine whatever the catalog says, and ``catalog rebuild``
sets the state from it, re-creating a missing marker. The marker is only the
store-side read barrier (an unbacked one still keeps reads refused).

Both moves are written once, here, as named steps taking the vault and
immutable values; :func:`quarantine` and :func:`release` run them in a row.

- quarantine: :func:`plan_quarantine`, :func:`claim`, :func:`sign` (the
  statement), :func:`write_marker` (the commit point: the store now says
  "quarantined"), :func:`index`.
- release: :func:`plan_release`, :func:`claim`, :func:`sign`,
  :func:`remove_marker` (the commit point), :func:`index`.

Each move is one logged operation: its intent is in the audit log before the
claim is taken, its outcome (ok, or refused with the reason) after. Each step
is idempotent: the marker is written once and kept on a retry, and indexing
sets the same row. A failure before the commit point releases the claim
(:func:`abandon`); past it the move rolls forward (re-run the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso
from weightvault.artifacts import Operation, StatementRef, Vault, write_statement
from weightvault.errors import ConflictError, IntegrityError, NotFoundError, PolicyError
from weightvault.lifecycle import claims
from weightvault.lifecycle.approvals import check_approvals
from weightvault.lifecycle.claims import Claim
from weightvault.store.layout import quarantine_marker_key

__all__ = [
    "MARKER_TYPE",
    "QUARANTINED",
    "QuarantinePlan",
    "ReleasePlan",
    "abandon",
    "claim",
    "index",
    "plan_quarantine",
    "plan_release",
    "quarantine",
    "read_marker",
    "release",
    "remove_marker",
    "sign",
    "write_marker",
]

MARKER_TYPE = "weightvault.quarantine/v1"
QUARANTINED = "artifact.quarantined"
RELEASED = "artifact.released"


@dataclass(frozen=True)
class QuarantinePlan:
    """Which artifact to isolate, from which tier, and why."""

    artifact_id: str
    origin: str
    reason: str
    name: str = ""
    content_digest: str = ""

    @property
    def source(self) -> str:
        """The tier the claim moves from."""
        return self.origin

    @property
    def target(self) -> str:
        """The tier the claim moves to."""
        return "quarantine"


@dataclass(frozen=True)
class ReleasePlan:
    """Which quarantined artifact goes back to which tier, approved by whom."""

    artifact_id: str
    origin: str
    #: the distinct principals whose signed approvals the log backs
    approvers: tuple[str, ...]
    justification: str
    #: when the marker being removed was written (names this quarantine)
    marker_at: str
    name: str = ""
    content_digest: str = ""

    @property
    def source(self) -> str:
        """The tier the claim moves from."""
        return "quarantine"

    @property
    def target(self) -> str:
        """The tier the claim moves to."""
        return self.origin


def read_marker(vault: Vault, artifact_id: str) -> dict[str, Any] | None:
    """The marker of a quarantined artifact, or None."""
    try:
        data = vault.store.get_bytes(vault.bucket("quarantine"), quarantine_marker_key(artifact_id))
    except NotFoundError:
        return None
    marker = parse_canonical(data, "quarantine marker")
    if marker.get("type") != MARKER_TYPE or marker.get("artifact_id") != artifact_id:
        raise IntegrityError(f"quarantine marker of {artifact_id} has an unknown type or artifact")
    return marker


# -- shared steps -------------------------------------------------------------------


def claim(vault: Vault, p: QuarantinePlan | ReleasePlan) -> Claim:
    """Take the artifact for this move; ConflictError if another move holds it."""
    return claims.take(vault, p.artifact_id, p.source, p.target)


def index(vault: Vault, p: QuarantinePlan | ReleasePlan, since: str) -> None:
    """Index the move (releases the claim); retention and legal hold are unchanged."""
    placement = vault.catalog.placement(p.artifact_id)
    with vault.catalog.transaction() as conn:
        vault.catalog.move(
            conn,
            p.artifact_id,
            tier=p.target,
            # Objects never move: the bucket stays the origin tier's.
            bucket=vault.bucket(p.origin),
            since=since,
            retain_until=placement["retain_until"],
            legal_hold=bool(placement["legal_hold"]),
        )


def sign(vault: Vault, op: Operation, p: QuarantinePlan | ReleasePlan) -> StatementRef:
    """Sign the move as a statement about the artifact and bind it to ``op``'s outcome."""
    predicate: dict[str, Any] = {
        "artifact_id": p.artifact_id,
        "origin": p.origin,
        "by": vault.actor,
        "at": iso(vault.clock()),
    }
    if isinstance(p, QuarantinePlan):
        kind = "quarantine"
        predicate["reason"] = p.reason
    else:
        kind = "release"
        predicate.update(approvers=list(p.approvers), justification=p.justification)
    return write_statement(
        vault, op, kind, predicate, subject_name=p.name, subject_sha256=p.content_digest
    )


def abandon(vault: Vault, held: Claim) -> bool:
    """Compensation before the commit point: drop the claim; idempotent."""
    return claims.release(vault, held)


# -- quarantine ---------------------------------------------------------------------


def plan_quarantine(vault: Vault, artifact_id: str, *, reason: str) -> QuarantinePlan:
    """Check the artifact can be quarantined; nothing is written."""
    row = vault.resolve(artifact_id)
    if row.tier == "quarantine":
        raise ConflictError(f"artifact {row.id} is already quarantined")
    return QuarantinePlan(row.id, row.tier, reason, row.name, row.content_digest)


def write_marker(vault: Vault, p: QuarantinePlan) -> dict[str, Any]:
    """Store the marker (the commit point), create-only: a marker already there is kept.

    The write is conditional (``If-None-Match: *``), so a second write, a retry
    or a racing quarantine, never replaces the first marker; the one in the
    store is returned. Only :func:`remove_marker` (a release) ends it.
    """
    existing = read_marker(vault, p.artifact_id)
    if existing is not None:
        return existing
    marker = {
        "type": MARKER_TYPE,
        "artifact_id": p.artifact_id,
        "origin": p.origin,
        "reason": p.reason,
        "at": iso(vault.clock()),
        "by": vault.actor,
    }
    try:
        vault.store.put_bytes(
            vault.bucket("quarantine"),
            quarantine_marker_key(p.artifact_id),
            canonical_json(marker),
            if_none_match=True,
        )
    except ConflictError:
        kept = read_marker(vault, p.artifact_id)
        if kept is None:
            raise
        return kept
    return marker


def quarantine(vault: Vault, artifact_id: str, *, reason: str) -> dict[str, Any]:
    """Isolate an artifact: no reads until released. Every quarantine step in a row."""
    details = {"tier": "quarantine", "reason": reason}
    with vault.artifact_operation(QUARANTINED, artifact_id, details) as op:
        p = plan_quarantine(vault, artifact_id, reason=reason)
        op.details["origin"] = p.origin
        held = claim(vault, p)
        try:
            sign(vault, op, p)
            marker = write_marker(vault, p)
        except BaseException:
            abandon(vault, held)
            raise
    index(vault, p, op.ts)
    return marker


# -- release ------------------------------------------------------------------------


def plan_release(vault: Vault, artifact_id: str, *, justification: str) -> ReleasePlan:
    """Check the artifact is quarantined and enough signed approvals release it.

    The approvals are ``weightvault approve ID --to release`` statements the
    log records after the quarantine being ended
    (:func:`weightvault.lifecycle.approvals.check_approvals`); nobody can name
    an approver here. The origin is the one the log's quarantine entry records
    (the marker is unsigned); only a marker the log does not back falls back
    to its own.
    """
    row = vault.resolve(artifact_id)
    marker = read_marker(vault, row.id)
    if row.tier != "quarantine" or marker is None:
        raise PolicyError(f"artifact {row.id} is not quarantined")
    logged = vault.logged_quarantine(row.id)
    check = check_approvals(vault, row.id, "release", after_index=logged.index if logged else -1)
    if not check.satisfied:
        raise PolicyError(f"release of {row.id} refused: " + "; ".join(check.reasons()))
    origin = str(logged.event.details.get("origin")) if logged else str(marker["origin"])
    return ReleasePlan(
        row.id,
        origin,
        check.approvers,
        justification,
        str(marker["at"]),
        row.name,
        row.content_digest,
    )


def remove_marker(vault: Vault, p: ReleasePlan) -> bool:
    """Remove the marker (the commit point); idempotent. True if it was removed now."""
    try:
        vault.store.remove(vault.bucket("quarantine"), quarantine_marker_key(p.artifact_id))
    except NotFoundError:
        return False
    return True


def release(vault: Vault, artifact_id: str, *, justification: str) -> str:
    """Release an artifact back to the tier it came from. Every release step in a row."""
    details = {"justification": justification}
    with vault.artifact_operation(RELEASED, artifact_id, details) as op:
        p = plan_release(vault, artifact_id, justification=justification)
        op.details["tier"] = p.origin
        op.details["approvers"] = list(p.approvers)
        held = claim(vault, p)
        try:
            sign(vault, op, p)
            remove_marker(vault, p)
        except BaseException:
            abandon(vault, held)
            raise
    index(vault, p, op.ts)
    return p.origin
