"""Validation reports, stored with the artifact's evidence in the audit bucket.

A report is canonical JSON at ``validations/<artifact id>/<seq>.json``; its
sha256 goes into the catalog and the ``artifact.validated`` event, so the
promotion gate can check that the report it reads is the one recorded.
"""

from __future__ import annotations

import hashlib
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.artifacts import Vault
from weightvault.catalog import ArtifactRow
from weightvault.errors import IntegrityError
from weightvault.store.layout import validation_key, validation_prefix

REPORT_TYPE = "weightvault.validation/v1"


def store_report(vault: Vault, artifact_id: str, report: dict[str, Any]) -> tuple[str, str]:
    """Store a report; returns its key and sha256."""
    bucket = vault.bucket("audit")
    existing = sorted(o.key for o in vault.store.list(bucket, validation_prefix(artifact_id)))
    key = validation_key(artifact_id, len(existing) + 1)
    data = canonical_json({**report, "type": REPORT_TYPE, "artifact_id": artifact_id})
    vault.store.put_bytes(bucket, key, data)
    return key, hashlib.sha256(data).hexdigest()


def latest_report(vault: Vault, row: ArtifactRow) -> dict[str, Any] | None:
    """The latest report, checked against the sha256 the catalog recorded."""
    if row.validation_sha256 is None:
        return None
    bucket = vault.bucket("audit")
    keys = sorted(o.key for o in vault.store.list(bucket, validation_prefix(row.id)))
    if not keys:
        raise IntegrityError(f"validation report of {row.id} is missing from the store")
    data = vault.store.get_bytes(bucket, keys[-1])
    if hashlib.sha256(data).hexdigest() != row.validation_sha256:
        raise IntegrityError(f"validation report of {row.id} does not match the catalog")
    report = parse_canonical(data, "validation report")
    if report.get("type") != REPORT_TYPE or report.get("artifact_id") != row.id:
        raise IntegrityError(f"validation report of {row.id} is malformed")
    return report
