"""The store layout: every object key the vault writes, and the one parser of them.

Buckets are ``<prefix>-<role>`` (:meth:`weightvault.config.StoreSettings.bucket`).
Inside them:

==============================  ==================================================
tier buckets (hot/warm/cold)    ``artifacts/<id>/files/NNNNNN.c2sp`` ciphertext,
                                ``artifacts/<id>/statement.dsse.json``,
                                ``artifacts/<id>/model.sig`` (OMS signature),
                                ``artifacts/<id>/manifest.json`` (the commit point)
quarantine                      ``quarantine/<id>.json`` markers (a quarantined
                                artifact's objects never move)
envelopes (versioned, object   ``envelopes/<id>/<tier>.json`` wrapped DEKs,
lock: cold ones retained)       ``envelopes/<id>/escrow.json``,
                                ``envelopes/<id>/rekey-<tier>.json`` re-key journals
audit                           ``events/YYYY/MM/DD/<event id>.json``,
                                ``attestations/<id>/NNNNNN-<kind>.json``,
                                ``statements/<sha256>.dsse.json`` signed
                                statements (content-addressed, written once),
                                ``validations/<id>/NNNNNN.json`` (old unsigned
                                reports, never trusted),
                                ``log/checkpoint``, ``log/tile/…`` (c2sp tlog-tiles)
                                and ``log/seq/<index>`` sequenced entries,
                                ``log/witness/<witness name>`` checkpoints a
                                witness cosigned,
                                ``keystore/versions/<20 digits>.json`` keystore
                                version records,
                                ``trust/root/<20 digits>.json`` the signed trust
                                root, one object per version (never overwritten),
                                ``keystore/backups/<20 digits>.sealed`` sealed
                                keystore backups (written once, never replaced),
                                ``dr/master-shares.json`` the record that the
                                master key was split (no share in it)
grants (unversioned, unlocked)  ``grants/<grant id>/files/NNNNNN.c2sp`` copies of
                                the granted ciphertext (what its presigned URLs
                                read), ``grants/<grant id>/grant.json`` the signed
                                grant, ``grants/<grant id>/receipt.json`` the
                                collaborator's signed receipt (``docs/grants.md``)
any bucket                      ``probe/…`` objects of the capability probe
                                (``weightvault store check``), never artifacts
==============================  ==================================================

Nothing else in the core builds or splits these strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ARTIFACTS_PREFIX",
    "ATTESTATIONS_PREFIX",
    "DATA_DOCS_PREFIX",
    "ENVELOPES_PREFIX",
    "ESCROW_NAME",
    "EVENTS_PREFIX",
    "GRANTS_PREFIX",
    "KEYSTORE_BACKUPS_PREFIX",
    "KEYSTORE_VERSIONS_PREFIX",
    "LOG_PREFIX",
    "MASTER_SHARES_KEY",
    "QUARANTINE_MARKERS_PREFIX",
    "STATEMENTS_PREFIX",
    "TRUST_ROOT_PREFIX",
    "VALIDATIONS_PREFIX",
    "ArtifactObject",
    "EnvelopeObject",
    "artifact_prefix",
    "attestation_key",
    "attestation_prefix",
    "conditional_probe_key",
    "data_docs_key",
    "envelope_key",
    "envelope_prefix",
    "escrow_envelope_key",
    "event_key",
    "file_key",
    "files_prefix",
    "grant_document_key",
    "grant_file_key",
    "grant_files_prefix",
    "grant_prefix",
    "grant_receipt_key",
    "keystore_backup_key",
    "keystore_version_key",
    "lock_probe_key",
    "log_checkpoint_key",
    "log_sequenced_key",
    "log_tile_key",
    "log_witness_key",
    "manifest_key",
    "oms_signature_key",
    "parse_artifact_key",
    "parse_envelope_key",
    "parse_keystore_backup_key",
    "parse_keystore_version_key",
    "parse_trust_root_key",
    "quarantine_marker_key",
    "rekey_journal_key",
    "signed_statement_key",
    "statement_key",
    "trust_root_key",
    "validation_key",
    "validation_prefix",
]

ARTIFACTS_PREFIX = "artifacts/"
ENVELOPES_PREFIX = "envelopes/"
EVENTS_PREFIX = "events/"
ATTESTATIONS_PREFIX = "attestations/"
VALIDATIONS_PREFIX = "validations/"
DATA_DOCS_PREFIX = "data-docs/"
QUARANTINE_MARKERS_PREFIX = "quarantine/"
STATEMENTS_PREFIX = "statements/"
KEYSTORE_VERSIONS_PREFIX = "keystore/versions/"
_KEYSTORE_VERSION = re.compile(r"^keystore/versions/(?P<v>[0-9]{20})\.json$")
KEYSTORE_BACKUPS_PREFIX = "keystore/backups/"
_KEYSTORE_BACKUP = re.compile(r"^keystore/backups/(?P<v>[0-9]{20})\.sealed$")
MASTER_SHARES_KEY = "dr/master-shares.json"
ESCROW_NAME = "escrow"
GRANTS_PREFIX = "grants/"
_REKEY = "rekey-"

_ARTIFACT_OBJECT = re.compile(
    r"^artifacts/(?P<id>[^/]+)/(?:(?P<doc>manifest|statement\.dsse)\.json|(?P<oms>model\.sig)"
    r"|files/(?P<idx>[0-9]{6})\.c2sp)$"
)
_ENVELOPE_OBJECT = re.compile(r"^envelopes/(?P<id>[^/]+)/(?P<name>[a-z][a-z-]*)\.json$")


def artifact_prefix(artifact_id: str) -> str:
    """Prefix of every object of an artifact in a tier bucket."""
    return f"{ARTIFACTS_PREFIX}{artifact_id}/"


def manifest_key(artifact_id: str) -> str:
    """The manifest: written last, the commit point."""
    return f"{artifact_prefix(artifact_id)}manifest.json"


def statement_key(artifact_id: str) -> str:
    """The signed in-toto statement (DSSE)."""
    return f"{artifact_prefix(artifact_id)}statement.dsse.json"


def oms_signature_key(artifact_id: str) -> str:
    """The OpenSSF model signing (OMS) signature of the artifact's files."""
    return f"{artifact_prefix(artifact_id)}model.sig"


def files_prefix(artifact_id: str) -> str:
    """Prefix of an artifact's ciphertext objects."""
    return f"{artifact_prefix(artifact_id)}files/"


def file_key(artifact_id: str, idx: int) -> str:
    """Ciphertext of the artifact's ``idx``-th file (paths stay in the manifest)."""
    return f"{files_prefix(artifact_id)}{idx:06d}.c2sp"


def envelope_prefix(artifact_id: str) -> str:
    """Prefix of every envelope object of an artifact."""
    return f"{ENVELOPES_PREFIX}{artifact_id}/"


def envelope_key(artifact_id: str, tier: str) -> str:
    """The DEK wrapped for a tier."""
    return f"{envelope_prefix(artifact_id)}{tier}.json"


def escrow_envelope_key(artifact_id: str) -> str:
    """The DEK HPKE-wrapped to the escrow key (cold artifacts)."""
    return f"{ENVELOPES_PREFIX}{artifact_id}/{ESCROW_NAME}.json"


def rekey_journal_key(artifact_id: str, tier: str) -> str:
    """Journal of a re-encryption in progress."""
    return f"{ENVELOPES_PREFIX}{artifact_id}/{_REKEY}{tier}.json"


def event_key(ts: str, event_id: str) -> str:
    """An audit event, partitioned by the day of its ISO 8601 timestamp."""
    day = ts[:10].replace("-", "/")
    return f"{EVENTS_PREFIX}{day}/{event_id}.json"


def attestation_prefix(artifact_id: str) -> str:
    """Prefix of an artifact's attestation chain."""
    return f"{ATTESTATIONS_PREFIX}{artifact_id}/"


def attestation_key(artifact_id: str, sequence: int, kind: str) -> str:
    """The ``sequence``-th attestation (1-based) of an artifact's chain."""
    return f"{attestation_prefix(artifact_id)}{sequence:06d}-{kind}.json"


def signed_statement_key(sha256: str) -> str:
    """A signed statement, named by the sha256 of its bytes (its log entry names both)."""
    return f"{STATEMENTS_PREFIX}{sha256}.dsse.json"


def validation_prefix(artifact_id: str) -> str:
    """Prefix of an artifact's validation reports."""
    return f"{VALIDATIONS_PREFIX}{artifact_id}/"


def validation_key(artifact_id: str, sequence: int) -> str:
    """The ``sequence``-th validation report (1-based) of an artifact."""
    return f"{validation_prefix(artifact_id)}{sequence:06d}.json"


def quarantine_marker_key(artifact_id: str) -> str:
    """The marker of a quarantined artifact."""
    return f"{QUARANTINE_MARKERS_PREFIX}{artifact_id}.json"


@dataclass(frozen=True)
class ArtifactObject:
    """What an object key in a tier bucket names."""

    artifact_id: str
    kind: str  # "manifest", "statement", "oms-signature" or "file"
    idx: int | None = None


@dataclass(frozen=True)
class EnvelopeObject:
    """What an object key in the envelopes bucket names."""

    artifact_id: str
    kind: str  # "tier", "escrow" or "rekey-journal"
    tier: str | None = None


def parse_artifact_key(key: str) -> ArtifactObject | None:
    """The artifact object ``key`` names, or None for a key outside the layout."""
    match = _ARTIFACT_OBJECT.fullmatch(key)
    if match is None:
        return None
    if match.group("idx") is not None:
        return ArtifactObject(match.group("id"), "file", int(match.group("idx")))
    if match.group("oms") is not None:
        return ArtifactObject(match.group("id"), "oms-signature")
    kind = "manifest" if match.group("doc") == "manifest" else "statement"
    return ArtifactObject(match.group("id"), kind)


def parse_envelope_key(key: str) -> EnvelopeObject | None:
    """The envelope object ``key`` names, or None for a key outside the layout."""
    match = _ENVELOPE_OBJECT.fullmatch(key)
    if match is None:
        return None
    artifact_id, name = match.group("id"), match.group("name")
    if name == ESCROW_NAME:
        return EnvelopeObject(artifact_id, "escrow")
    if name.startswith(_REKEY):
        return EnvelopeObject(artifact_id, "rekey-journal", name.removeprefix(_REKEY))
    return EnvelopeObject(artifact_id, "tier", name)


def keystore_version_key(version: int) -> str:
    """The record of keystore version ``version`` (zero-padded: key order is version order)."""
    return f"{KEYSTORE_VERSIONS_PREFIX}{version:020d}.json"


def parse_keystore_version_key(key: str) -> int | None:
    """The version a keystore version record's key names, or None."""
    match = _KEYSTORE_VERSION.fullmatch(key)
    return int(match.group("v")) if match else None


def keystore_backup_key(version: int) -> str:
    """The sealed backup of keystore version ``version`` (zero-padded like the records)."""
    return f"{KEYSTORE_BACKUPS_PREFIX}{version:020d}.sealed"


def parse_keystore_backup_key(key: str) -> int | None:
    """The version a keystore backup's key names, or None."""
    match = _KEYSTORE_BACKUP.fullmatch(key)
    return int(match.group("v")) if match else None


def lock_probe_key(day: str) -> str:
    """The Object Lock probe object of one day (``YYYY-MM-DD``) in a locked bucket."""
    return f"probe/object-lock-{day}"


def conditional_probe_key(token: str) -> str:
    """A conditional-write probe object, removed when the probe ends."""
    return f"probe/conditional-{token}"


LOG_PREFIX = "log/"


def log_checkpoint_key() -> str:
    """The transparency log's signed checkpoint: its one mutable object."""
    return f"{LOG_PREFIX}checkpoint"


def log_tile_key(tile_path: str) -> str:
    """A tile or entry bundle (``tile/...``, c2sp tlog-tiles) of the transparency log."""
    if not tile_path.startswith("tile/"):
        raise ValueError(f"{tile_path!r} is not a tile path")
    return f"{LOG_PREFIX}{tile_path}"


def log_sequenced_key(index: int) -> str:
    """The entry that won log index ``index`` (written once, If-None-Match)."""
    if index < 0:
        raise ValueError("a log index is never negative")
    return f"{LOG_PREFIX}seq/{index:020d}"


_WITNESS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def log_witness_key(name: str) -> str:
    """The latest checkpoint the witness ``name`` cosigned (the log's note plus its line)."""
    if len(name) > 200 or not _WITNESS_NAME.match(name) or ".." in name:
        raise ValueError(f"{name!r} is not a usable witness name")
    return f"{LOG_PREFIX}witness/{name}"


TRUST_ROOT_PREFIX = "trust/root/"
_TRUST_ROOT = re.compile(r"^trust/root/(?P<v>[0-9]{20})\.json$")


def trust_root_key(version: int) -> str:
    """Version ``version`` of the signed trust root (written once, If-None-Match)."""
    if version < 1:
        raise ValueError("a trust root version is at least 1")
    return f"{TRUST_ROOT_PREFIX}{version:020d}.json"


def parse_trust_root_key(key: str) -> int | None:
    """The trust root version a key names, or None."""
    match = _TRUST_ROOT.fullmatch(key)
    return int(match.group("v")) if match else None


def grant_prefix(grant_id: str) -> str:
    """Every object of one grant, in the grants bucket."""
    return f"{GRANTS_PREFIX}{grant_id}/"


def grant_files_prefix(grant_id: str) -> str:
    """The granted ciphertext copies of one grant."""
    return f"{grant_prefix(grant_id)}files/"


def grant_file_key(grant_id: str, idx: int) -> str:
    """The copy of the artifact's file ``idx`` that a grant's presigned URL reads."""
    return f"{grant_files_prefix(grant_id)}{idx:06d}.c2sp"


def grant_document_key(grant_id: str) -> str:
    """The signed grant document (DSSE), as issued."""
    return f"{grant_prefix(grant_id)}grant.json"


def grant_receipt_key(grant_id: str) -> str:
    """The collaborator's signed receipt, written once through a presigned PUT."""
    return f"{grant_prefix(grant_id)}receipt.json"


def data_docs_key(artifact_id: str, sha256: str) -> str:
    """A Great Expectations Data Docs page of a validation, named by its sha256 (the signed
    report lists each page's key and sha256)."""
    return f"{DATA_DOCS_PREFIX}{artifact_id}/{sha256}.html"
