"""Signed statements bound to the log: the one way the vault keeps evidence besides the log.

A statement (:func:`weightvault.provenance.build_signed_statement`) is stored
once in the audit bucket, content-addressed at ``statements/<sha256>.dsse.json``
(If-None-Match: never overwritten), and the operation's ok outcome names it:
``details.statement = {kind, key, sha256}``. Promotion attestations stay in
their per-artifact chain (``attestations/<id>/…``) and are bound the same way.

A reader trusts a statement only when (a) the log entry naming it is proved
in the signed log (:meth:`Vault.history`), (b) the stored bytes hash to the
sha256 the entry records, and (c) its signature verifies against the trust
root's signing keys, a key compromised before the time the log recorded the
entry not counting. Anything else is a :class:`~weightvault.errors.StatementError`
naming the statement, the log entry and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from weightvault._time import parse_iso
from weightvault.artifacts._vault import LoggedEvent, Operation, Vault
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import ConflictError, NotFoundError, StatementError
from weightvault.provenance import (
    build_signed_statement,
    open_signed_statement,
    trust_root,
    trusted_keys,
)
from weightvault.records import Event
from weightvault.store.layout import STATEMENTS_PREFIX, attestation_prefix, signed_statement_key

__all__ = [
    "StatementRef",
    "TrustedStatement",
    "bind_statement",
    "latest_statement",
    "trusted_statement",
    "write_statement",
]

_STATEMENT_LIMIT = 16 << 20


@dataclass(frozen=True)
class StatementRef:
    """What a log entry records of a statement: its kind, object key and sha256."""

    kind: str
    key: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        """The ``details.statement`` form."""
        return {"kind": self.kind, "key": self.key, "sha256": self.sha256}

    @classmethod
    def of(cls, logged: LoggedEvent, what: str) -> StatementRef:
        """The statement a logged outcome names; StatementError if it names none."""
        doc = logged.event.details.get("statement")
        if not isinstance(doc, Mapping) or not all(
            isinstance(doc.get(k), str) for k in ("kind", "key", "sha256")
        ):
            raise StatementError(f"{what}: log entry {logged.index} names no signed statement")
        return cls(str(doc["kind"]), str(doc["key"]), str(doc["sha256"]))


@dataclass(frozen=True)
class TrustedStatement:
    """A statement that passed every check, with the log entry that binds it."""

    ref: StatementRef
    index: int
    event: Event
    statement: dict[str, Any]

    @property
    def predicate(self) -> dict[str, Any]:
        """The statement's predicate."""
        return dict(self.statement["predicate"])

    @property
    def subject_sha256(self) -> str:
        """The subject's sha256 (hex)."""
        return str(self.statement["subject"][0].get("digest", {}).get("sha256", ""))


def bind_statement(op: Operation, ref: StatementRef, signer: str | None = None) -> None:
    """Name ``ref`` in the operation's outcome (and the key that signed it)."""
    op.details["statement"] = ref.to_dict()
    op.uses(signer)


def write_statement(
    vault: Vault,
    op: Operation,
    kind: str,
    predicate: Mapping[str, Any],
    *,
    subject_name: str,
    subject_sha256: str,
    signer: HybridSigningKey | None = None,
) -> StatementRef:
    """Sign a statement, store it once and bind it to ``op``'s outcome.

    Signed with the vault's signing key (named among the operation's keys), or
    with ``signer``, a principal's own key (the entry already names its keyid).
    """
    data, signed_by = build_signed_statement(
        vault.keys,
        kind=kind,
        subject_name=subject_name,
        subject_sha256=subject_sha256,
        predicate=predicate,
        signer=signer,
    )
    digest = hashlib.sha256(data).hexdigest()
    key = signed_statement_key(digest)
    bucket = vault.bucket("audit")
    try:
        vault.store.put_bytes(bucket, key, data, if_none_match=True)
    except ConflictError:
        if hashlib.sha256(vault.store.get_bytes(bucket, key)).hexdigest() != digest:
            raise StatementError(f"{bucket}/{key} holds other bytes than its name says") from None
    ref = StatementRef(kind, key, digest)
    bind_statement(op, ref, signed_by if signer is None else None)
    return ref


def _may_hold_statement(key: str, artifact_id: str | None) -> bool:
    if key.startswith(STATEMENTS_PREFIX):
        return True
    return artifact_id is not None and key.startswith(attestation_prefix(artifact_id))


def trusted_statement(
    vault: Vault,
    logged: LoggedEvent,
    *,
    kind: str,
    what: str,
    subject_sha256: str | None = None,
) -> TrustedStatement:
    """The statement ``logged`` (an entry :meth:`Vault.history` proved) names, checked.

    StatementError: the entry names none or another kind, the object is
    missing, its bytes are not the ones the entry recorded, its signature is
    not by a trusted key (at the time the log recorded the entry), or its
    subject is not ``subject_sha256``.
    """
    ref = StatementRef.of(logged, what)
    where = f"{what} {ref.key}"
    if ref.kind != kind or not _may_hold_statement(ref.key, logged.event.artifact_id):
        raise StatementError(f"{what}: log entry {logged.index} names a {ref.kind} statement")
    try:
        data = vault.store.get_bytes(vault.bucket("audit"), ref.key, limit=_STATEMENT_LIMIT)
    except NotFoundError:
        raise StatementError(
            f"{where}, recorded by log entry {logged.index}, is missing from the store"
        ) from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise StatementError(f"{where} is not the one log entry {logged.index} recorded")
    statement = open_signed_statement(
        data,
        trusted_keys(trust_root(vault.keys)),
        kind=kind,
        signed_at=parse_iso(logged.event.ts),
        what=where,
    )
    out = TrustedStatement(ref, logged.index, logged.event, statement)
    if subject_sha256 is not None and out.subject_sha256 != subject_sha256.removeprefix("sha256:"):
        raise StatementError(f"{where} is about other content than the artifact's")
    return out


def latest_statement(
    vault: Vault,
    artifact_id: str,
    event_kinds: Collection[str],
    *,
    kind: str,
    what: str,
    subject_sha256: str | None = None,
) -> TrustedStatement | None:
    """The statement of the artifact's latest logged ``event_kinds`` outcome, checked; None
    when the log records none."""
    found = vault.history(artifact_id, event_kinds)
    if not found:
        return None
    return trusted_statement(vault, found[-1], kind=kind, what=what, subject_sha256=subject_sha256)
