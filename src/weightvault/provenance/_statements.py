"""Signed provenance: manifest + provenance as an in-toto statement in DSSE.

Every committed artifact has ``artifacts/<id>/statement.dsse.json`` beside its
manifest: an in-toto Statement v1 whose subject digest is the manifest's
content digest, with a SLSA provenance v1 predicate, signed with the vault's
hybrid Ed25519 + ML-DSA-65 key. Old public keys stay in the trust root so old
signatures keep verifying after a rotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, parse_iso
from weightvault.crypto import dsse
from weightvault.crypto.signing import ALGORITHM, HybridSigningKey, HybridVerifyKey
from weightvault.errors import IntegrityError
from weightvault.keys import KeyProvider, KeyRecord, KeyState
from weightvault.provenance._capture import Provenance
from weightvault.provenance._intoto import build_statement, parse_statement
from weightvault.provenance._trust_root import (
    TrustedKeys,
    check_signed_at,
    parse_root,
    signing_entries,
)
from weightvault.records import Manifest

SIGNING_KEY_ID = "vault-signing"
TRUST_ROOT_TYPE = "weightvault.trust-root/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


SecretStore = KeyProvider
"""The part of the key manager that holds signing keys."""


def _signing_key(record: KeyRecord) -> HybridSigningKey:
    return HybridSigningKey.from_private_bytes(record.key_id, record.version, record.material)


def signing_key(keys: SecretStore) -> HybridSigningKey:
    """The active signing key, created on first use."""
    record = keys.active(SIGNING_KEY_ID)
    if record is None:
        return rotate_signing_key(keys)
    return _signing_key(record)


def rotate_signing_key(keys: SecretStore) -> HybridSigningKey:
    """Create a new signing key version; older versions keep verifying."""
    version = 1 + max((r.version for r in keys.versions(SIGNING_KEY_ID)), default=0)
    key = HybridSigningKey.generate(SIGNING_KEY_ID, version)
    public = key.public_key()
    record = keys.put_secret(
        SIGNING_KEY_ID,
        "signing",
        ALGORITHM,
        key.private_bytes(),
        meta={"keyid": public.keyid},
    )
    return _signing_key(record)


def trust_root(keys: SecretStore) -> dict[str, Any]:
    """Every public signing key ever used that is not destroyed, with its state.

    A compromised version carries ``compromised_at``: what it signed from then
    on is refused (:func:`weightvault.provenance.check_signed_at`).
    """
    public = []
    for entry in signing_entries(keys, SIGNING_KEY_ID):
        if entry.public_key is None:
            continue
        doc = entry.public_key.to_dict()
        doc["state"] = entry.state
        if entry.compromised_at is not None:
            doc["compromised_at"] = iso(entry.compromised_at)
        public.append(doc)
    return {"type": TRUST_ROOT_TYPE, "keys": public}


def trusted_keys(root: Mapping[str, Any]) -> TrustedKeys:
    """keyid -> verify key from a trust root document.

    Either the keystore's unsigned key list (:func:`trust_root`, for the vault's
    own online checks) or a signed ``weightvault.root/v1`` document, whose
    destroyed keys are left out (its signatures are the caller's to check:
    :func:`weightvault.provenance.walk_chain`).
    """
    if set(root) == {"signed", "signatures"}:
        return parse_root(root).trusted()
    if root.get("type") != TRUST_ROOT_TYPE:
        raise IntegrityError("trust root has an unknown type")
    keys = []
    compromised: dict[str, datetime] = {}
    for doc in root.get("keys", []):
        clean = {k: v for k, v in doc.items() if k not in {"state", "compromised_at"}}
        key = HybridVerifyKey.from_dict(clean)
        keys.append(key)
        if doc.get("state") == str(KeyState.COMPROMISED):
            # A compromise of unknown time distrusts all the key signed.
            when = doc.get("compromised_at")
            compromised[key.keyid] = parse_iso(when) if isinstance(when, str) else _EPOCH
    return TrustedKeys(dsse.trust_map(keys), compromised)


def provenance_document(
    provenance: Provenance | None, artifact_id: str, parent_sha256: str | None = None
) -> dict[str, Any]:
    """Map captured provenance to the statement builder's provenance fields."""
    if provenance is None:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        return {
            "environment": {},
            "invocation_id": artifact_id,
            "started_on": now,
            "finished_on": now,
            "extra": {"artifact_id": artifact_id, "missing": ["provenance"]},
        }
    doc: dict[str, Any] = {
        "environment": dict(provenance.environment),
        "invocation_id": provenance.run_id or artifact_id,
        "started_on": provenance.started_at,
        "finished_on": provenance.finished_at,
        "extra": {
            "artifact_id": artifact_id,
            "missing": list(provenance.missing),
            "provenance": provenance.to_dict(),
        },
    }
    if provenance.git_commit is not None and provenance.git_dirty is not None:
        doc["git"] = {"commit": provenance.git_commit, "dirty": provenance.git_dirty}
        if provenance.git_remote:
            doc["git"]["repository"] = provenance.git_remote
    if provenance.datasets:
        doc["datasets"] = [
            {"name": d.path, "sha256": d.sha256, "md5": d.dvc_md5}
            | ({"uri": provenance.dvc_remote} if provenance.dvc_remote else {})
            for d in provenance.datasets
        ]
    if provenance.run_id:
        doc["training_run_id"] = provenance.run_id
    if provenance.creator:
        doc["creator"] = provenance.creator
    if provenance.parent and parent_sha256:
        doc["parent"] = {"name": provenance.parent, "sha256": parent_sha256}
    return doc


def _subject_hex(manifest: Manifest) -> str:
    return manifest.content_digest.removeprefix("sha256:")


def sign_manifest(
    keys: SecretStore, manifest: Manifest, provenance: Mapping[str, Any]
) -> tuple[bytes, str]:
    """The DSSE envelope (canonical bytes) and the signer's ``key@vN``."""
    statement = build_statement(
        manifest.name,
        _subject_hex(manifest),
        {"artifact_id": manifest.artifact_id, "files": [f.to_dict() for f in manifest.files]},
        provenance,
    )
    key = signing_key(keys)
    envelope = dsse.sign_envelope(canonical_json(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
    return canonical_json(envelope), f"{key.key_id}@v{key.version}"


def verify_statement(
    data: bytes, manifest: Manifest, trusted: Mapping[str, HybridVerifyKey]
) -> dict[str, Any]:
    """Check signature, subject digest and file list against the manifest."""
    envelope = parse_canonical(data, "statement envelope")
    payload = dsse.verify_envelope(envelope, trusted)
    statement = parse_statement(payload)
    finished = statement["predicate"]["runDetails"].get("metadata", {}).get("finishedOn")
    check_signed_at(
        trusted, envelope, parse_iso(finished) if isinstance(finished, str) else None, "statement"
    )
    subjects = statement["subject"]
    if (
        len(subjects) != 1
        or subjects[0]["digest"].get("sha256") != _subject_hex(manifest)
        or subjects[0]["name"] != manifest.name
    ):
        raise IntegrityError("statement subject does not match the manifest")
    signed = statement["predicate"]["buildDefinition"]["externalParameters"]["artifact"]
    expected = {"artifact_id": manifest.artifact_id, "files": [f.to_dict() for f in manifest.files]}
    if signed.get("manifest") != expected:
        raise IntegrityError("statement file list does not match the manifest")
    return statement
