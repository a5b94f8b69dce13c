"""Air-gapped export bundles and their offline verification.

``export`` writes a self-contained directory:

=========================  ==================================================
``ciphertext/NNNNNN.c2sp``  every file's ciphertext, as stored
``manifest.json``           the stored manifest
``statement.dsse.json``     the signed in-toto provenance statement
``model.sig``               the OpenSSF model signing (OMS) signature of the
                            model files (docs/formats.md), when the put made one
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

The bundle also carries the artifact's outcome entries from the transparency
log, each with its c2sp tlog-proof, all under one signed checkpoint
(``proofs/<index>.entry`` and ``proofs/<index>.tlog-proof``). Offline
verification checks every proof against the ``log`` keys of the verified
(pinned) root, that every entry names the bundle's artifact, and that the
put's outcome records the bundle's content digest and name: a bundle whose
proofs are missing, tampered or signed by another log is refused.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from weightvault._fs import hash_file, staged_output
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, parse_iso, utcnow
from weightvault.artifacts import LoggedState, Vault
from weightvault.catalog import ArtifactRow
from weightvault.crypto import dsse
from weightvault.crypto.notes import verifier_from_vkey
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    LogVerificationError,
    NotFoundError,
    NoTrustRootError,
    PolicyError,
    TrustRootError,
)
from weightvault.lifecycle.audit import open_readonly_log
from weightvault.lifecycle.trust import ensure_current_root, root_chain
from weightvault.provenance import (
    OMS_SIGNATURE_NAME,
    Root,
    attestation_keys,
    oms_verify_pem,
    parse_root,
    signing_key,
    verify_attestations,
    verify_oms_signature,
    verify_root,
    verify_statement,
    walk_chain,
)
from weightvault.records import Event, Manifest, prove_entry, verify_entry_proof
from weightvault.store.layout import manifest_key, statement_key
from weightvault.tlog import parse_tlog_proof

BUNDLE_TYPE = "weightvault.bundle/v1"
_CHUNK = 1 << 20


_ROOTS_DIR = "roots"
_PROOFS_DIR = "proofs"
_PUT_KIND = "artifact.ingested"
_PROMOTED_KIND = "artifact.promoted"
_MAX_PROOFS = 10_000


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
    log_entries: int = 0
    log_size: int = 0
    oms_signature: bool = False


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


def cold_release(vault: Vault, artifact_id: str) -> ArtifactRow:
    """The artifact's catalog row; PolicyError unless it is in cold (only releases leave)."""
    row = vault.resolve(artifact_id)
    if row.tier != "cold":
        raise PolicyError(
            f"artifact {row.id} is in {row.tier}: only cold releases are exported; promote it first"
        )
    return row


def export_bundle(vault: Vault, artifact_id: str, out: Path) -> Path:
    """Write the bundle of an artifact into a new directory ``out``."""
    out = out.absolute()
    with vault.artifact_operation(
        "artifact.exported", artifact_id, {"output": vault.private(str(out))}
    ) as op:
        row = cold_release(vault, artifact_id)
        ensure_current_root(vault)
        with staged_output(out) as staging:
            manifest, dek = vault.load_manifest(row.id, row.tier, op=op)
            vault.verify_statement(row.id, row.tier, manifest)
            bucket = vault.bucket(row.tier)
            _write(staging / "manifest.json", vault.store.get_bytes(bucket, manifest_key(row.id)))
            statement = vault.store.get_bytes(bucket, statement_key(row.id))
            _write(staging / "statement.dsse.json", statement)
            oms = vault.oms_signature(row, manifest)
            if oms is not None:
                _write(staging / OMS_SIGNATURE_NAME, oms)
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
    """The artifact's outcome entries and their c2sp tlog-proofs, under one checkpoint.

    Found through the catalog's index, each entry is read from the log itself
    (checked against its tile) and must name the artifact. IntegrityError if the
    log holds no successful put of the artifact.
    """
    log = open_readonly_log(vault)
    signed = log.checkpoint()
    size = signed.checkpoint.size
    rows = vault.catalog.log_search(artifact_id=artifact_id, phase="outcome", limit=_MAX_PROOFS)
    out: dict[str, bytes] = {}
    put = False
    for row in rows:
        index = int(row["idx"])
        if index >= size:
            continue
        entry = log.entries(index, index + 1)[0]
        event = Event.parse(entry)
        if event.artifact_id != artifact_id or event.id != row["id"]:
            raise IntegrityError(
                f"log entry {index} is not the catalog's {row['id']}: the index was edited"
            )
        put = put or (event.kind == _PUT_KIND and event.outcome == "ok")
        out[f"{_PROOFS_DIR}/{index}.entry"] = entry
        out[f"{_PROOFS_DIR}/{index}.tlog-proof"] = prove_entry(log, index, signed)
    if not put:
        raise IntegrityError(f"the transparency log records no put of {artifact_id}")
    return out


def _proof_files(root: Path) -> dict[int, tuple[bytes, bytes]]:
    """``proofs/<index>.entry`` and ``.tlog-proof`` pairs; IntegrityError for any other file."""
    folder = root / _PROOFS_DIR
    if not folder.is_dir() or folder.is_symlink():
        raise IntegrityError(f"bundle carries no transparency-log proofs ({_PROOFS_DIR}/)")
    names: dict[int, set[str]] = {}
    for path in folder.iterdir():
        stem, dot, suffix = path.name.partition(".")
        if not dot or not stem.isdigit() or str(int(stem)) != stem:
            raise IntegrityError(f"bundle proof file {_PROOFS_DIR}/{path.name} is misnamed")
        if suffix not in ("entry", "tlog-proof"):
            raise IntegrityError(f"bundle proof file {_PROOFS_DIR}/{path.name} is misnamed")
        names.setdefault(int(stem), set()).add(suffix)
    pairs = {}
    for index, found in sorted(names.items()):
        if found != {"entry", "tlog-proof"}:
            raise IntegrityError(f"bundle log entry {index} lacks its entry or its proof")
        pairs[index] = (
            _read(root, f"{_PROOFS_DIR}/{index}.entry"),
            _read(root, f"{_PROOFS_DIR}/{index}.tlog-proof"),
        )
    if not pairs:
        raise IntegrityError(f"bundle carries no transparency-log proofs ({_PROOFS_DIR}/)")
    return pairs


def _verify_evidence(
    root: Path, trusted: Root, index: dict[str, Any]
) -> tuple[int, int, list[tuple[int, Event]]]:
    """Check the bundle's tlog-proofs against the root's log keys: (entries, log size, events).

    Every proof must verify under the root's ``log`` keys, at the index its file
    names, all under one checkpoint; every entry must name the bundle's artifact;
    a successful put must record the bundle's content digest and name.
    """
    if not trusted.log:
        raise TrustRootError(
            f"trust root v{trusted.version} lists no log keys: the bundle's "
            "transparency-log proofs cannot be checked"
        )
    verifiers = [verifier_from_vkey(v) for v in trusted.log]
    artifact_id = index["artifact_id"]
    under: tuple[int, bytes] | None = None
    put = False
    proved_events: list[tuple[int, Event]] = []
    pairs = _proof_files(root)
    for number, (entry, proof) in pairs.items():
        where = f"bundle log entry {number}"
        try:
            checkpoint = verify_entry_proof(proof, entry, verifiers)
            proved = parse_tlog_proof(proof.decode()).index
            event = Event.parse(entry)
        except IntegrityError as exc:
            raise LogVerificationError(f"{where}: {exc.message}") from None
        if proved != number:
            raise LogVerificationError(f"{where}: its proof is of entry {proved}")
        if under is None:
            under = (checkpoint.size, checkpoint.root)
        elif under != (checkpoint.size, checkpoint.root):
            raise LogVerificationError(f"{where}: proved under another checkpoint")
        if event.artifact_id != artifact_id:
            raise LogVerificationError(f"{where} is not of artifact {artifact_id}")
        proved_events.append((number, event))
        if event.kind == _PUT_KIND and event.outcome == "ok":
            if event.details.get("content_digest") != index["content_digest"] or (
                event.details.get("name") != index["name"]
            ):
                raise LogVerificationError(
                    f"{where}: the logged put of {artifact_id} is not the bundle's content"
                )
            put = True
    if not put:
        raise LogVerificationError(f"bundle carries no logged put of {artifact_id}")
    return len(pairs), under[0] if under is not None else 0, proved_events


def _attested_at(events: list[tuple[int, Event]]) -> dict[str, datetime]:
    """sha256 of each attestation a proven promotion entry names -> the time it was logged."""
    out: dict[str, datetime] = {}
    for _, event in sorted(events, key=lambda pair: pair[0]):
        digest = event.details.get("attestation_sha256")
        if event.kind == _PROMOTED_KIND and event.outcome == "ok" and isinstance(digest, str):
            out.setdefault(digest, parse_iso(event.ts))
    return out


def _check_oms_signature(
    root: Path, manifest: Manifest, events: list[tuple[int, Event]], trusted: Root
) -> bool:
    """Check the bundle's ``model.sig`` as the logged put names it; False if it names none.

    Its bytes must hash to the put's recorded sha256 and verify under the key the
    put names, over exactly the manifest's model files. That key is one the
    trusted root lists, not compromised before the put was logged: its OMS key
    (ECDSA P-256), or for older signatures a signing key's Ed25519 half.
    """
    put = next(
        (
            e
            for _, e in events
            if e.kind == _PUT_KIND and isinstance(e.details.get("oms_signature"), dict)
        ),
        None,
    )
    present = (root / OMS_SIGNATURE_NAME).is_file()
    if put is None:
        if present:
            raise IntegrityError(f"bundle {OMS_SIGNATURE_NAME} is named by no logged put")
        return False
    if not present:
        raise IntegrityError(f"bundle is missing {OMS_SIGNATURE_NAME}, which its put recorded")
    data = _read(root, OMS_SIGNATURE_NAME)
    if hashlib.sha256(data).hexdigest() != put.details["oms_signature"].get("sha256"):
        raise IntegrityError(f"bundle {OMS_SIGNATURE_NAME} is not the one the put recorded")
    keys = trusted.trusted()
    what = f"bundle {OMS_SIGNATURE_NAME}"
    pem = oms_verify_pem(
        str(put.details["oms_signature"].get("keyid", "")),
        parse_iso(put.ts),
        keys,
        keys.compromised,
        trusted.oms,
        what,
    )
    files = [(f.path, f.sha256) for f in manifest.model_files]
    verify_oms_signature(data, pem, files, what)
    return True


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
    entries, log_size, events = _verify_evidence(root, trusted, index)
    # The manifest and statement must be the latest state the proven entries record,
    # and the statement's signer is judged at the time the log recorded it, never at
    # the time it claims (the attestations' signers inside verify_attestations).
    statement_bytes = _read(root, "statement.dsse.json")
    state = LoggedState.from_events(manifest.artifact_id, events)
    state.check(
        str(index.get("tier")), manifest=_read(root, "manifest.json"), statement=statement_bytes
    )
    statement = verify_statement(
        statement_bytes, manifest, keys, signed_at=state.statement_logged_at(statement_bytes)
    )
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
    oms = _check_oms_signature(root, manifest, events, trusted)
    chain_docs = verify_attestations(
        docs, trusted.document(), manifest.content_digest, logged_at=_attested_at(events)
    )
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
        log_entries=entries,
        log_size=log_size,
        oms_signature=oms,
    )
