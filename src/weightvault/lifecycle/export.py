"""Air-gapped export bundles and their offline verification.

``export`` writes a self-contained directory:

=========================  ==================================================
``ciphertext/NNNNNN.c2sp``  every file's ciphertext, as stored
``manifest.json``           the stored manifest
``statement.dsse.json``     the signed in-toto provenance statement
``attestations/*.json``     the artifact's chain of signed attestations
``trust_root.json``         the vault's public signing keys
``escrow.json``             the DEK wrapped to the cold escrow key (HPKE,
                            ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM)
``bundle.json``             sha256 and size of every file above
``bundle.dsse.json``        ``bundle.json`` signed with the vault's key
=========================  ==================================================

``verify_bundle`` needs no store, catalog or network: it checks the bundle
signature, every listed file's digest, that no unlisted file is present, the
statement against the manifest, and the attestation chain. Any changed byte
anywhere fails.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault._fs import hash_file, staged_output
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso
from weightvault.artifacts import Vault
from weightvault.crypto import dsse
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    NotFoundError,
    PolicyError,
)
from weightvault.provenance import (
    attestation_keys,
    signing_key,
    trust_root,
    trusted_keys,
    verify_attestations,
    verify_statement,
)
from weightvault.records import Manifest
from weightvault.store.layout import manifest_key, statement_key

BUNDLE_TYPE = "weightvault.bundle/v1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BundleReport:
    """What offline verification checked."""

    artifact_id: str
    name: str
    content_digest: str
    files: int
    attestations: int
    signer: str


def _escrow_document(vault: Vault, artifact_id: str) -> bytes:
    """The artifact's escrow envelope (written now if the escrow key is newer)."""
    from weightvault.lifecycle.escrow import escrow_envelope, escrow_key
    from weightvault.store.layout import escrow_envelope_key

    if escrow_key(vault.keys) is None:
        raise KeyStateError("no escrow key: run `weightvault escrow split` first")
    bucket = vault.bucket("envelopes")
    try:
        return vault.store.get_bytes(bucket, escrow_envelope_key(artifact_id))
    except NotFoundError:
        escrow_envelope(vault, artifact_id)
        return vault.store.get_bytes(bucket, escrow_envelope_key(artifact_id))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export_bundle(vault: Vault, artifact_id: str, out: Path) -> Path:
    """Write the bundle of an artifact into a new directory ``out``."""
    out = out.absolute()
    with vault.artifact_operation(
        "artifact.exported", artifact_id, {"output": vault.private(str(out))}
    ) as op:
        row = vault.resolve(artifact_id)
        if row.tier != "cold":
            raise PolicyError(
                f"artifact {row.id} is in {row.tier}: only cold releases are exported; "
                "promote it first"
            )
        with staged_output(out) as staging:
            manifest, dek = vault.load_manifest(row.id, row.tier)
            vault.verify_statement(row.id, row.tier, manifest)
            bucket = vault.bucket(row.tier)
            _write(staging / "manifest.json", vault.store.get_bytes(bucket, manifest_key(row.id)))
            statement = vault.store.get_bytes(bucket, statement_key(row.id))
            _write(staging / "statement.dsse.json", statement)
            for key in attestation_keys(vault.store, vault.bucket("audit"), row.id):
                data = vault.store.get_bytes(vault.bucket("audit"), key)
                _write(staging / "attestations" / key.rsplit("/", 1)[1], data)
            _write(staging / "trust_root.json", canonical_json(trust_root(vault.keys)))
            del dek
            _write(staging / "escrow.json", _escrow_document(vault, row.id))
            for entry in manifest.files:
                target = staging / "ciphertext" / entry.object_key.rsplit("/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                with vault.store.open(bucket, entry.object_key) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            listing = []
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                found = hash_file(path)
                listing.append(
                    {
                        "path": path.relative_to(staging).as_posix(),
                        "sha256": found.sha256,
                        "size": found.size,
                    }
                )
            index = {
                "type": BUNDLE_TYPE,
                "artifact_id": row.id,
                "name": row.name,
                "content_digest": row.content_digest,
                "tier": row.tier,
                "exported_at": iso(vault.clock()),
                "files": listing,
            }
            body = canonical_json(index)
            _write(staging / "bundle.json", body)
            envelope = dsse.sign_envelope(
                body, "application/vnd.weightvault.bundle+json", signing_key(vault.keys)
            )
            _write(staging / "bundle.dsse.json", canonical_json(envelope))
        op.details["files"] = len(manifest.files)
    return out


def _read(root: Path, rel: str) -> bytes:
    path = root / rel
    if not path.is_file() or path.is_symlink():
        raise IntegrityError(f"bundle is missing {rel}")
    return path.read_bytes()


def verify_bundle(root: Path, pinned_root: dict[str, Any] | None = None) -> BundleReport:
    """Verify a bundle with nothing but its files (and optionally a pinned trust root)."""
    if not root.is_dir():
        raise InvalidInputError(f"{root} is not a bundle directory")
    try:
        bundled_root = json.loads(_read(root, "trust_root.json"))
    except json.JSONDecodeError:
        raise IntegrityError("bundle trust root is not JSON") from None
    root_doc = pinned_root if pinned_root is not None else bundled_root
    if pinned_root is not None and canonical_json(pinned_root) != canonical_json(bundled_root):
        # The bundle may carry newer keys, but every pinned key must be present.
        bundled_ids = {k.get("keyid") for k in bundled_root.get("keys", [])}
        if not {k.get("keyid") for k in pinned_root.get("keys", [])} <= bundled_ids:
            raise IntegrityError("bundle trust root does not contain the pinned keys")
    trusted = trusted_keys(root_doc)
    envelope = parse_canonical(_read(root, "bundle.dsse.json"), "bundle signature")
    body = dsse.verify_envelope(envelope, trusted, "application/vnd.weightvault.bundle+json")
    if body != _read(root, "bundle.json"):
        raise IntegrityError("bundle.json does not match its signature")
    index = parse_canonical(body, "bundle index")
    if index.get("type") != BUNDLE_TYPE:
        raise IntegrityError("bundle index has an unknown type")
    listed = {f["path"]: f for f in index["files"]}
    present = {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    } - {"bundle.json", "bundle.dsse.json"}
    if present != set(listed):
        extra = sorted(present ^ set(listed))
        raise IntegrityError(f"bundle file set differs from its index: {extra[0]}")
    for rel, entry in listed.items():
        found = hash_file(root / rel)
        digest, size = found.sha256, found.size
        if digest != entry["sha256"] or size != entry["size"]:
            raise IntegrityError(f"bundle file {rel} does not match its digest")
    manifest, _mac = Manifest.parse(_read(root, "manifest.json"))
    if (
        manifest.artifact_id != index["artifact_id"]
        or manifest.content_digest != index["content_digest"]
    ):
        raise IntegrityError("bundle manifest is not the indexed artifact")
    statement = verify_statement(_read(root, "statement.dsse.json"), manifest, trusted)
    for entry in manifest.files:
        rel = "ciphertext/" + entry.object_key.rsplit("/", 1)[1]
        if listed.get(rel, {}).get("size") != entry.ciphertext_size:
            raise IntegrityError(f"bundle ciphertext of {entry.path} has the wrong size")
    docs = (
        [
            (f"attestations/{p.name}", p.read_bytes())
            for p in sorted((root / "attestations").glob("*.json"))
        ]
        if (root / "attestations").is_dir()
        else []
    )
    chain = verify_attestations(docs, root_doc, manifest.content_digest)
    signer = statement.get("predicate", {}).get("runDetails", {}).get("builder", {}).get("id", "")
    return BundleReport(
        manifest.artifact_id,
        manifest.name,
        manifest.content_digest,
        len(manifest.files),
        len(chain),
        signer,
    )
