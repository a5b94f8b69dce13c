"""Evidence as signed statements bound to log entries: validation reports, key records.

A report is the predicate of a ``validation`` statement about the artifact's
content digest (:func:`weightvault.artifacts.write_statement`); the outcome of
the validation names it. The promotion gate and ``catalog rebuild`` read the
latest report from the log (:func:`latest_report`), never from the catalog:
the catalog's ``validation_sha256`` is an index that only has to agree.
The old unsigned objects at ``validations/<id>/…`` are never read.

Key rotation, retirement and compromise and the recovery of a vault home sign
their record the same way (:func:`sign_record`, one call per operation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weightvault._time import iso
from weightvault.artifacts import (
    Operation,
    StatementRef,
    TrustedStatement,
    Vault,
    trusted_statement,
    write_statement,
)
from weightvault.errors import StatementError

__all__ = [
    "REPORT_TYPE",
    "VALIDATED",
    "VALIDATION",
    "LoggedReport",
    "catalog_disagrees",
    "latest_report",
    "sign_record",
    "sign_report",
]

REPORT_TYPE = "weightvault.validation/v1"
VALIDATION = "validation"
VALIDATED = "artifact.validated"


@dataclass(frozen=True)
class LoggedReport:
    """The latest validation report as the log and its signature back it."""

    report: dict[str, Any]
    sha256: str
    key: str
    index: int
    #: the sha256 of every report the log records for the artifact (earlier ones too)
    logged: frozenset[str] = frozenset()


def sign_report(
    vault: Vault,
    op: Operation,
    *,
    artifact_id: str,
    name: str,
    content_digest: str,
    report: dict[str, Any],
) -> StatementRef:
    """Sign the report as a statement about the artifact's content and bind it to ``op``."""
    predicate = {
        **report,
        "type": REPORT_TYPE,
        "artifact_id": artifact_id,
        "at": iso(vault.clock()),
        "by": vault.actor,
    }
    return write_statement(
        vault, op, VALIDATION, predicate, subject_name=name, subject_sha256=content_digest
    )


def sign_record(
    vault: Vault, op: Operation, kind: str, subject: str, predicate: Mapping[str, Any]
) -> StatementRef:
    """Sign a key or recovery record (``key-rotation``, ``key-retirement``,
    ``key-compromise``, ``recovery``) and bind it to ``op``'s outcome.

    ``subject`` names what it is about (``key@vN``, a KEK id, a backup); its
    digest is the sha256 of that name (a KEK has no public part to digest).
    The predicate must hold no secret: key ids, versions, states, counts.
    """
    body = {**dict(predicate), "subject": subject, "at": iso(vault.clock()), "by": vault.actor}
    return write_statement(
        vault,
        op,
        kind,
        body,
        subject_name=subject,
        subject_sha256=hashlib.sha256(subject.encode()).hexdigest(),
    )


def _checked(found: TrustedStatement, artifact_id: str, logged: frozenset[str]) -> LoggedReport:
    report = found.predicate
    if report.get("type") != REPORT_TYPE or report.get("artifact_id") != artifact_id:
        raise StatementError(f"validation report {found.ref.key} is about another artifact")
    return LoggedReport(report, found.ref.sha256, found.ref.key, found.index, logged)


def latest_report(vault: Vault, artifact_id: str, content_digest: str) -> LoggedReport | None:
    """The latest report the log records for the artifact, verified; None if it records none.

    ``content_digest`` must come from the authenticated manifest (the
    statement's subject is checked against it). StatementError names a report
    that is missing, edited, or not signed by a trusted key.
    """
    found = vault.history(artifact_id, {VALIDATED})
    if not found:
        return None
    latest = trusted_statement(
        vault,
        found[-1],
        kind=VALIDATION,
        what="validation report",
        subject_sha256=content_digest,
    )
    logged = frozenset(str(e.event.details.get("report_sha256")) for e in found)
    return _checked(latest, artifact_id, logged)


def catalog_disagrees(catalog_sha256: str | None, logged: LoggedReport | None) -> str | None:
    """Why the catalog's validation record is not backed by the log, if it is not (named).

    A catalog that names none, or an earlier report the log does record
    (another host validated since), is no disagreement: the log decides.
    """
    if catalog_sha256 is None:
        return None
    if logged is None:
        return (
            f"the catalog names validation report {catalog_sha256} but no validation is in the log"
        )
    if catalog_sha256 != logged.sha256 and catalog_sha256 not in logged.logged:
        return (
            f"the catalog's validation report {catalog_sha256} is not the one log entry "
            f"{logged.index} recorded ({logged.sha256})"
        )
    return None
