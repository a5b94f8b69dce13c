"""Signed approvals: who approved what, proved by the approver's own key and the log.

``weightvault approve ID --to cold|warm|release|break-glass --justification TEXT`` writes an
in-toto statement (predicate type ``https://weightvault.dev/attestations/approval/v1``)
in a DSSE envelope signed by the **approver's identity key**, not the vault's,
stores it content-addressed at ``statements/<sha256>.dsse.json`` and binds it
to the ``artifact.approved`` outcome (``details.statement``). The log entry is
signed by the same principal, so an approval is two signatures by one key over
one decision.

:func:`check_approvals` is the only way an approval counts. For each
``artifact.approved`` entry :meth:`Vault.history` proves in the signed log, it
checks that the stored statement is the one the entry recorded (sha256), that
it verifies against the public key the enrolment in force gives the entry's
principal (a revoked approver's approvals stop counting), that this principal
holds the ``approver`` role, that it is not the artifact's creator (the
principal the log records ingesting it; ``[approvals] creator_may_approve``),
that it is about this artifact's content digest (as the log recorded it at
ingest) and this purpose, and that it is younger than ``[approvals]
window_hours`` counted from the time the *log* recorded it. The rule is met
when ``[approvals] required`` distinct principals passed. Nothing typed into a
form or a flag can add an approval: only a statement in the log can.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from weightvault._json import parse_canonical
from weightvault._time import iso_seconds, parse_iso
from weightvault.artifacts import (
    LoggedEvent,
    StatementRef,
    Vault,
    current_root,
    enrolled,
    log_origin,
    write_statement,
)
from weightvault.crypto import dsse
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PolicyError,
    StatementError,
)
from weightvault.provenance import Principal, predicate_type

__all__ = [
    "APPROVAL_KIND",
    "APPROVED",
    "PURPOSES",
    "Approval",
    "ApprovalCheck",
    "approve",
    "check_approvals",
]

APPROVED = "artifact.approved"
APPROVAL_KIND = "approval"
PURPOSES = ("cold", "warm", "release", "break-glass")
_INGESTED = "artifact.ingested"
_PREDICATE_TYPE = predicate_type(APPROVAL_KIND)
_LIMIT = 1 << 20


@dataclass(frozen=True)
class Approval:
    """One approval that passed every check."""

    index: int
    approver: str
    keyid: str
    purpose: str
    justification: str
    logged_at: str
    expires_at: str
    statement: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no key material: the keyid is a public fingerprint)."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class ApprovalCheck:
    """The approvals of one artifact for one purpose, as the log backs them."""

    artifact_id: str
    purpose: str
    required: int
    accepted: tuple[Approval, ...] = ()
    rejected: tuple[tuple[int, str], ...] = ()
    approvers: tuple[str, ...] = field(default=())

    @property
    def satisfied(self) -> bool:
        """At least ``required`` distinct principals approved."""
        return len(self.approvers) >= self.required

    def reasons(self) -> list[str]:
        """Why the rule is not met (empty when it is), each naming the log entry."""
        if self.satisfied:
            return []
        out = [
            f"two_person: {self.purpose} needs approvals from {self.required} distinct "
            f"principals, the log backs {len(self.approvers)}"
            + (f" ({', '.join(self.approvers)})" if self.approvers else "")
        ]
        out += [
            f"two_person: approval at log entry {i} does not count: {why}"
            for i, why in self.rejected
        ]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "artifact_id": self.artifact_id,
            "purpose": self.purpose,
            "required": self.required,
            "satisfied": self.satisfied,
            "approvers": list(self.approvers),
            "accepted": [a.to_dict() for a in self.accepted],
            "rejected": [{"log_index": i, "reason": why} for i, why in self.rejected],
        }


@dataclass(frozen=True)
class _Ingest:
    content_digest: str
    creator_name: str | None
    creator_keyid: str | None


def _ingest(vault: Vault, artifact_id: str) -> _Ingest:
    found = vault.history(artifact_id, {_INGESTED})
    if not found:
        raise PolicyError(f"{artifact_id}: the log records no ingest of it; nothing to approve")
    event = found[0].event
    digest = event.details.get("content_digest")
    if not isinstance(digest, str) or not digest:
        raise PolicyError(f"{artifact_id}: its ingest (log entry {found[0].index}) names no digest")
    principal = event.principal or {}
    name, keyid = principal.get("name"), principal.get("keyid")
    return _Ingest(
        digest,
        name if isinstance(name, str) else None,
        keyid if isinstance(keyid, str) else None,
    )


def _is_creator(ingest: _Ingest, principal: Principal) -> bool:
    return principal.keyid == ingest.creator_keyid or principal.name == ingest.creator_name


def _check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise InvalidInputError(f"approval purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    return purpose


def approve(vault: Vault, artifact_id: str, *, purpose: str, justification: str) -> Approval:
    """Sign and log the acting principal's approval of ``artifact_id`` for ``purpose``.

    Refused (PolicyError, logged as refused) when the principal lacks the
    ``approver`` role or created the artifact (unless configured otherwise).
    """
    _check_purpose(purpose)
    text = justification.strip()
    if not text or len(text) > 2000:
        raise InvalidInputError("an approval needs a justification of 1-2000 characters")
    details = {"purpose": purpose, "justification": text}
    with vault.artifact_operation(APPROVED, artifact_id, details) as op:
        if op.artifact_id is None:
            raise NotFoundError(f"no artifact {artifact_id[:100]}")
        principal = vault.principal()
        if principal is None:
            raise PolicyError("approve refused: the acting key is not enrolled")
        if "approver" not in principal.roles:
            raise PolicyError(f"approve refused: {principal.name} lacks the approver role")
        ingest = _ingest(vault, op.artifact_id)
        if _is_creator(ingest, principal) and not vault.settings.creator_may_approve:
            raise PolicyError(
                f"approve refused: {principal.name} created {op.artifact_id}; "
                "an approval must come from someone else"
            )
        now = vault.clock()
        approved_at = iso_seconds(now)
        not_after = iso_seconds(now + timedelta(hours=vault.settings.approval_window_hours))
        predicate = {
            "artifact_id": op.artifact_id,
            "purpose": purpose,
            "justification": text,
            "approver": {"name": principal.name, "keyid": principal.keyid},
            "log_origin": log_origin(vault.settings),
            "approved_at": approved_at,
            "not_after": not_after,
        }
        ref = write_statement(
            vault,
            op,
            APPROVAL_KIND,
            predicate,
            subject_name=op.artifact_id,
            subject_sha256=ingest.content_digest,
            signer=vault.identity.key,
        )
    logged = vault.history(op.artifact_id, {APPROVED})
    return Approval(
        index=logged[-1].index if logged else -1,
        approver=principal.name,
        keyid=principal.keyid,
        purpose=purpose,
        justification=text,
        logged_at=op.outcome.ts if op.outcome else approved_at,
        expires_at=not_after,
        statement=ref.key,
    )


class _NotCountedError(PolicyError):
    """Why one logged approval does not count (internal; never leaves this module)."""

    @property
    def why(self) -> str:
        """The one-line reason."""
        return self.message


def _signer(
    vault: Vault, event: Any, ingest: _Ingest, principals: dict[str, Principal]
) -> Principal:
    keyid = (event.principal or {}).get("keyid")
    principal = principals.get(keyid) if isinstance(keyid, str) else None
    if principal is None:
        raise _NotCountedError(
            "its key is not enrolled in the trust root in force (revoked or never enrolled)"
        )
    if "approver" not in principal.roles:
        raise _NotCountedError(f"{principal.name} lacks the approver role")
    if _is_creator(ingest, principal) and not vault.settings.creator_may_approve:
        raise _NotCountedError(f"{principal.name} created the artifact")
    return principal


def _statement(
    vault: Vault, logged: LoggedEvent, principal: Principal
) -> tuple[StatementRef, dict[str, Any]]:
    try:
        ref = StatementRef.of(logged, "approval")
        data = vault.store.get_bytes(vault.bucket("audit"), ref.key, limit=_LIMIT)
    except StatementError as exc:
        raise _NotCountedError(exc.message) from None
    except NotFoundError:
        raise _NotCountedError(f"its statement {ref.key} is missing from the store") from None
    if ref.kind != APPROVAL_KIND or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise _NotCountedError(f"{ref.key} is not the statement the log recorded")
    try:
        payload = dsse.verify_envelope(
            parse_canonical(data, ref.key), dsse.trust_map([principal.public_key])
        )
        statement = parse_canonical(payload, f"{ref.key} payload")
    except IntegrityError as exc:
        raise _NotCountedError(
            f"{ref.key} is not signed by {principal.name}'s key: {exc.message}"
        ) from None
    subject = statement.get("subject")
    if (
        statement.get("predicateType") != _PREDICATE_TYPE
        or not isinstance(statement.get("predicate"), dict)
        or not isinstance(subject, list)
        or len(subject) != 1
        or not isinstance(subject[0], dict)
    ):
        raise _NotCountedError(f"{ref.key} is not an approval statement")
    return ref, statement


def _verify(
    vault: Vault,
    logged: LoggedEvent,
    ingest: _Ingest,
    principals: dict[str, Principal],
    purpose: str,
    now: datetime,
) -> Approval:
    """The approval ``logged`` records; _NotCountedError says why it does not count."""
    event = logged.event
    principal = _signer(vault, event, ingest, principals)
    ref, statement = _statement(vault, logged, principal)
    predicate = statement["predicate"]
    digest = (statement["subject"][0].get("digest") or {}).get("sha256")
    if (
        predicate.get("artifact_id") != event.artifact_id
        or predicate.get("purpose") != purpose
        or predicate.get("log_origin") != log_origin(vault.settings)
        or (predicate.get("approver") or {}).get("keyid") != principal.keyid
    ):
        raise _NotCountedError(f"{ref.key} approves something else than its log entry says")
    if digest != ingest.content_digest.removeprefix("sha256:"):
        raise _NotCountedError(f"{ref.key} is about other content than the artifact's")
    expires = parse_iso(event.ts) + timedelta(hours=vault.settings.approval_window_hours)
    not_after = predicate.get("not_after")
    if isinstance(not_after, str):
        expires = min(expires, parse_iso(not_after))
    if now > expires:
        raise _NotCountedError(f"{principal.name}'s approval expired at {iso_seconds(expires)}")
    return Approval(
        index=logged.index,
        approver=principal.name,
        keyid=principal.keyid,
        purpose=purpose,
        justification=str(predicate.get("justification", "")),
        logged_at=event.ts,
        expires_at=iso_seconds(expires),
        statement=ref.key,
    )


def check_approvals(
    vault: Vault,
    artifact_id: str,
    purpose: str,
    *,
    after_index: int = -1,
    now: datetime | None = None,
) -> ApprovalCheck:
    """The approvals the signed log backs for ``artifact_id`` and ``purpose``.

    Only entries after ``after_index`` count (a release counts approvals
    logged after the quarantine it ends). Never raises for a bad approval: it
    is listed in ``rejected`` with the reason.
    """
    _check_purpose(purpose)
    row_id = vault.resolve(artifact_id).id
    ingest = _ingest(vault, row_id)
    root = current_root(vault.settings, vault.store, None)
    principals = {p.keyid: p for p in enrolled(root, vault.keys)}
    when = now or vault.clock()
    accepted: list[Approval] = []
    rejected: list[tuple[int, str]] = []
    for logged in vault.history(row_id, {APPROVED}):
        if logged.index <= after_index:
            continue
        if logged.event.details.get("purpose") != purpose:
            continue
        try:
            accepted.append(_verify(vault, logged, ingest, principals, purpose, when))
        except _NotCountedError as exc:
            rejected.append((logged.index, exc.why))
    names = tuple(sorted({a.approver for a in accepted}))
    return ApprovalCheck(
        artifact_id=row_id,
        purpose=purpose,
        required=vault.settings.approvals_required,
        accepted=tuple(accepted),
        rejected=tuple(rejected),
        approvers=names,
    )
