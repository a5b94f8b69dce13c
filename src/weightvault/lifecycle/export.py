"""Air-gapped export bundles and their offline verification.

``export`` writes a self-contained directory:

=========================  ==================================================
``ciphertext/NNNNNN.c2sp``  every file's ciphertext, as stored
``manifest.json``           the stored manifest
``statement.dsse.json``     the signed in-toto provenance statement
``attestations/*.json``     the artifact's chain of signed attestations
``roots/<N>.json``          the signed trust root, every version 1..n, so a
                            verifier pinned to any version can walk up
``escrow.json``             the DEK wrapped to the cold escrow key (HPKE,
                            ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM)
``bundle.json``             sha256 and size of every file above
``bundle.dsse.json``        ``bundle.json`` signed with the vault's key
=========================  ==================================================

``verify_bundle`` needs no store, catalog or network, but it needs a root the
verifier trusts already: a pinned root (a file got out of band, or the host's
``trust pin``), from which it walks the bundle's root chain to its newest
version; or, asked for explicitly, trust on first use of the bundle's version 1.
Then it checks the bundle signature, every listed file's digest, that no
unlisted file is present, the statement against the manifest, and the
attestation chain, each signature by a key the newest root lists, not
destroyed, and (for a key the root marks compromised) dated before the
compromise. Any changed byte anywhere fails.

Hook for the transparency log: :func:`_evidence` is where the artifact's
events and their c2sp tlog-proofs go into the bundle (``proofs/``), and
:func:`_verify_evidence` where they are checked against the root's ``log``
keys; until then a bundle that carries proofs is refused rather than trusted
unchecked.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from weightvault._fs import hash_file, staged_output
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, parse_iso, utcnow
from weightvault.artifacts import Vault
from weightvault.crypto import dsse
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    NotFoundError,
    NoTrustRootError,
    PolicyError,
    TrustRootError,
)
from weightvault.lifecycle.trust import ensure_current_root, root_chain
from weightvault.provenance import (
    Root,
    attestation_keys,
    parse_root,
    signing_key,
    verify_attestations,
    verify_root,
    verify_statement,
    walk_chain,
)
from weightvault.records import Manifest
from weightvault.store.layout import manifest_key, statement_key

BUNDLE_TYPE = "weightvault.bundle/v1"
_CHUNK = 1 << 20


_ROOTS_DIR = "roots"
_PROOFS_DIR = "proofs"


@dataclass(frozen=True)
class BundleReport:
    """What offline verification checked, and the trust root it checked against."""

    artifact_id: str
    name: str
    content_digest: str
    files: int
    attestations: int
    signer: str
    root_version: int = 0
    root_fingerprint: str = ""
    pinned_version: int = 0
    trusted_on_first_use: bool = False


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
        ensure_current_root(vault)
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
            for version in root_chain(vault):
                _write(staging / _ROOTS_DIR / f"{version.version}.json", version.to_bytes())
            for rel, data in _evidence(vault, row.id).items():
                _write(staging / rel, data)
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


def _evidence(vault: Vault, artifact_id: str) -> dict[str, bytes]:
    """Bundle files proving the artifact's events are in the transparency log.

    The hook for c2sp tlog-proofs (``proofs/<event>.tlog-proof``, checked
    against the root's ``log`` keys by :func:`_verify_evidence`); empty until
    the operations are recorded in the log.
    """
    del vault, artifact_id
    return {}


def _verify_evidence(root: Path, trusted: Root) -> int:
    """Check the bundle's tlog-proofs against the root's log keys; the count checked."""
    proofs = root / _PROOFS_DIR
    if proofs.exists():
        raise IntegrityError(
            f"bundle carries transparency-log proofs, which this verifier cannot check yet "
            f"(trust root v{trusted.version}): refused rather than trusted unchecked"
        )
    return 0


def _read(root: Path, rel: str) -> bytes:
    path = root / rel
    if not path.is_file() or path.is_symlink():
        raise IntegrityError(f"bundle is missing {rel}")
    return path.read_bytes()


def bundle_roots(root: Path) -> list[Root]:
    """The trust root chain a bundle carries, oldest first (parsed, not verified)."""
    folder = root / _ROOTS_DIR
    if not folder.is_dir() or folder.is_symlink():
        raise IntegrityError(f"bundle carries no trust root ({_ROOTS_DIR}/)")
    out = []
    for path in sorted(folder.iterdir()):
        stem = path.name.removesuffix(".json")
        if not stem.isdigit() or path.name != f"{int(stem)}.json":
            raise IntegrityError(f"bundle trust root file {_ROOTS_DIR}/{path.name} is misnamed")
        found = parse_root(_read(root, f"{_ROOTS_DIR}/{path.name}"))
        if found.version != int(stem):
            raise IntegrityError(
                f"bundle file {_ROOTS_DIR}/{path.name} holds trust root v{found.version}"
            )
        out.append(found)
    if not out:
        raise IntegrityError(f"bundle carries no trust root ({_ROOTS_DIR}/)")
    return sorted(out, key=lambda r: r.version)


def _when(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None


def _check_signer(trusted: Root, envelope: dict[str, Any], when: datetime | None) -> str:
    """The signing key of a verified DSSE envelope, refused if the root does not allow it."""
    refs = []
    for entry in envelope.get("signatures", []):
        refs.append(trusted.signer(str(entry.get("keyid")), when).ref)
    return ",".join(refs)


def _first_use(chain: list[Root], trust_on_first_use: bool) -> Root:
    """The bundle's own version 1, when the caller explicitly trusts it on first use."""
    if not trust_on_first_use:
        raise NoTrustRootError(
            "offline verification needs a pinned trust root: --trust-root FILE (got out of "
            "band), `weightvault trust pin`, or an explicit --trust-on-first-use"
        )
    first = chain[0]
    if first.version != 1:
        raise TrustRootError("the bundle's trust root chain does not start at version 1")
    verify_root(first)
    return first


def verify_bundle(
    root: Path,
    pinned: Root | None = None,
    *,
    trust_on_first_use: bool = False,
    now: datetime | None = None,
) -> BundleReport:
    """Verify a bundle with nothing but its files and a trust root pinned beforehand.

    ``pinned`` is a root the verifier got out of band; without it the bundle is
    refused (NoTrustRootError) unless ``trust_on_first_use``, which trusts the
    bundle's own version 1: the caller says so loudly.
    """
    if not root.is_dir():
        raise InvalidInputError(f"{root} is not a bundle directory")
    chain = bundle_roots(root)
    tofu = pinned is None
    anchor = pinned if pinned is not None else _first_use(chain, trust_on_first_use)
    trusted = walk_chain(anchor, chain, now if now is not None else utcnow())
    keys = trusted.trusted()
    envelope = parse_canonical(_read(root, "bundle.dsse.json"), "bundle signature")
    body = dsse.verify_envelope(envelope, keys, "application/vnd.weightvault.bundle+json")
    if body != _read(root, "bundle.json"):
        raise IntegrityError("bundle.json does not match its signature")
    index = parse_canonical(body, "bundle index")
    if index.get("type") != BUNDLE_TYPE:
        raise IntegrityError("bundle index has an unknown type")
    _check_signer(trusted, envelope, _when(index.get("exported_at")))
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
    # The statement's and attestations' signers are checked against the root's key
    # states (compromise times) inside verify_statement and verify_attestations.
    statement = verify_statement(_read(root, "statement.dsse.json"), manifest, keys)
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
    chain_docs = verify_attestations(docs, trusted.document(), manifest.content_digest)
    _verify_evidence(root, trusted)
    signer = statement.get("predicate", {}).get("runDetails", {}).get("builder", {}).get("id", "")
    return BundleReport(
        manifest.artifact_id,
        manifest.name,
        manifest.content_digest,
        len(manifest.files),
        len(chain_docs),
        signer,
        root_version=trusted.version,
        root_fingerprint=trusted.fingerprint,
        pinned_version=anchor.version,
        trusted_on_first_use=tofu,
    )
