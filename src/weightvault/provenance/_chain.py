"""Signed lifecycle attestations, chained per artifact.

Promotions, validations, rotations and recoveries each produce an in-toto
statement about the artifact (subject: its content digest) whose predicate
names the sha256 of the artifact's previous attestation. They are DSSE
envelopes signed with the vault's hybrid key, stored in the audit bucket at
``attestations/<artifact id>/<seq>-<kind>.json``; a gap or an edit anywhere in
the chain fails :func:`verify_chain`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weightvault._json import parse_canonical
from weightvault._time import parse_iso
from weightvault.crypto import dsse
from weightvault.errors import IntegrityError
from weightvault.provenance._signed import PREDICATE_PREFIX, build_signed_statement
from weightvault.provenance._statements import SecretStore, trusted_keys
from weightvault.provenance._trust_root import check_signed_at
from weightvault.store import ObjectStore
from weightvault.store.layout import attestation_key, attestation_prefix


@dataclass(frozen=True)
class Attestation:
    """One stored attestation."""

    key: str
    sha256: str
    kind: str
    predicate: dict[str, Any]


def attestation_keys(store: ObjectStore, bucket: str, artifact_id: str) -> list[str]:
    """Keys of an artifact's attestations, oldest first."""
    return sorted(o.key for o in store.list(bucket, attestation_prefix(artifact_id)))


def append_attestation(
    store: ObjectStore,
    bucket: str,
    keys: SecretStore,
    *,
    artifact_id: str,
    name: str,
    content_digest: str,
    kind: str,
    predicate: Mapping[str, Any],
) -> Attestation:
    """Sign and store the next attestation of an artifact's chain."""
    existing = attestation_keys(store, bucket, artifact_id)
    previous = None
    if existing:
        previous = hashlib.sha256(store.get_bytes(bucket, existing[-1])).hexdigest()
    body = {**dict(predicate), "previous": previous, "sequence": len(existing) + 1}
    data, _ = build_signed_statement(
        keys, kind=kind, subject_name=name, subject_sha256=content_digest, predicate=body
    )
    key = attestation_key(artifact_id, len(existing) + 1, kind)
    store.put_bytes(bucket, key, data)
    return Attestation(key, hashlib.sha256(data).hexdigest(), kind, body)


def _dated(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def verify_attestations(
    documents: list[tuple[str, bytes]], root: Mapping[str, Any], content_digest: str
) -> list[Attestation]:
    """Verify an ordered chain of (key, bytes): signatures, subject, links."""
    trusted = trusted_keys(root)
    out: list[Attestation] = []
    previous: str | None = None
    for i, (key, data) in enumerate(documents, start=1):
        envelope = parse_canonical(data, f"attestation {key}")
        payload = dsse.verify_envelope(envelope, trusted)
        statement = parse_canonical(payload, f"attestation {key} payload")
        try:
            subject = statement["subject"][0]["digest"]["sha256"]
            predicate = statement["predicate"]
            kind = statement["predicateType"].removeprefix(PREDICATE_PREFIX).rsplit("/", 1)[0]
        except (KeyError, IndexError, TypeError, AttributeError):
            raise IntegrityError(f"attestation {key} is malformed") from None
        if subject != content_digest.removeprefix("sha256:"):
            raise IntegrityError(f"attestation {key} is about another artifact")
        if predicate.get("previous") != previous or predicate.get("sequence") != i:
            raise IntegrityError(f"attestation chain is broken at {key}")
        check_signed_at(trusted, envelope, _dated(predicate.get("at")), f"attestation {key}")
        digest = hashlib.sha256(data).hexdigest()
        out.append(Attestation(key, digest, kind, predicate))
        previous = digest
    return out


def verify_chain(
    store: ObjectStore, bucket: str, artifact_id: str, root: Mapping[str, Any], content_digest: str
) -> list[Attestation]:
    """Verify every stored attestation of an artifact."""
    docs = [(k, store.get_bytes(bucket, k)) for k in attestation_keys(store, bucket, artifact_id)]
    return verify_attestations(docs, root, content_digest)


def find_attestation(
    store: ObjectStore,
    bucket: str,
    artifact_id: str,
    root: Mapping[str, Any],
    content_digest: str,
    *,
    kind: str,
    match: Mapping[str, Any],
) -> Attestation | None:
    """The first attestation of ``kind`` whose predicate has every item of ``match``.

    The whole chain is verified first (fail closed): a step that asks "was this
    already attested?" before appending never trusts an unverified answer.
    """
    for att in verify_chain(store, bucket, artifact_id, root, content_digest):
        if att.kind == kind and all(att.predicate.get(k) == v for k, v in match.items()):
            return att
    return None
