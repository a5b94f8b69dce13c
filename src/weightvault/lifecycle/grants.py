"""Grants: time-boxed read access to one artifact for a collaborator with no store credentials.

``weightvault grant ID --to RECIPIENT --ttl 15m [--files P ...] [--single-use] --out FILE``
runs one logged operation, ``grant.issued``:

1. server-side copies of the in-scope ciphertext objects under ``grants/<grant id>/files/``
   in the grants bucket (``store.layout``), so revoking deletes them without touching the
   artifact;
2. presigned GET URLs for exactly those copies, and a presigned PUT and GET of the
   grant's receipt, all signed by the vault's store credential and valid until the
   grant's expiry (S3 checks the signature, the key and the expiry: store-enforced);
3. the artifact's DEK HPKE-sealed (ML-KEM-768 + X25519) to the recipient's KEM key,
   bound (HPKE ``info``) to the grant id, the artifact id, its content digest, the
   granted paths and the expiry (:func:`dek_binding`);
4. the grant document (``weightvault.grant/v1``) in a DSSE envelope signed by the
   vault's signing key, stored at ``grants/<id>/grant.json``; its sha256 is in the
   outcome entry's details, and the file handed to the collaborator carries that entry
   and its c2sp tlog-proof (the signed grant receipt in the log).

``weightvault access GRANT --root ROOT --out DIR`` (:func:`access_grant`) needs no vault:
it checks the grant against the trust root the collaborator pinned (signature, log
proof, recipient, expiry), opens the DEK with its identity, writes a receipt signed by
its identity key through the presigned PUT, downloads and decrypts every file, checks
sizes and sha256 against the signed grant and renames DIR into place only when all is
good. ``weightvault revoke GRANT`` deletes the copies (the URLs then fail at the store)
and, when the grant was used, logs ``artifact.rekey_needed``. ``weightvault grants
sync`` logs every new receipt as ``grant.accessed`` (and ends a single-use grant).
``docs/grants.md`` says what the store enforces and what only the client does.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

import urllib3

from weightvault._fs import local_write_error, staged_output, write_private
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso_seconds, parse_iso, utcnow
from weightvault.artifacts import Vault
from weightvault.crypto import chunked, dsse, hpke
from weightvault.crypto.binding import file_context
from weightvault.crypto.notes import verifier_from_vkey
from weightvault.crypto.signing import HybridVerifyKey
from weightvault.errors import (
    GrantExpiredError,
    GrantReplayError,
    GrantRevokedError,
    GrantScopeError,
    IdentityError,
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    LogVerificationError,
    NotFoundError,
    QuarantinedError,
    StoreUnavailableError,
    VaultError,
)
from weightvault.keys import Identity, Recipient
from weightvault.provenance import Root, signing_key, trust_root, trusted_keys
from weightvault.records import Event, FileEntry, prove_entry, verify_entry_proof
from weightvault.store.layout import (
    GRANTS_PREFIX,
    grant_document_key,
    grant_file_key,
    grant_files_prefix,
    grant_receipt_key,
)
from weightvault.tlog import parse_tlog_proof

__all__ = [
    "ACCESSED",
    "GRANT_PAYLOAD_TYPE",
    "ISSUED",
    "RECEIPT_PAYLOAD_TYPE",
    "REKEY_NEEDED",
    "REVOKED",
    "AccessResult",
    "IssuedGrant",
    "StoredGrant",
    "access_grant",
    "dek_binding",
    "gc_grants",
    "issue_grant",
    "list_grants",
    "open_dek",
    "parse_ttl",
    "revoke_grant",
    "seal_dek",
    "show_grant",
    "sync_grants",
    "verify_grant",
]

ISSUED: Final = "grant.issued"
ACCESSED: Final = "grant.accessed"
REVOKED: Final = "grant.revoked"
COLLECTED: Final = "grant.collected"
REKEY_NEEDED: Final = "artifact.rekey_needed"
GRANT_TYPE: Final = "weightvault.grant/v1"
GRANT_FILE_TYPE: Final = "weightvault.grant-file/v1"
RECEIPT_TYPE: Final = "weightvault.grant-receipt/v1"
KEPT_RECEIPT_TYPE: Final = "weightvault.grant-access/v1"
GRANT_PAYLOAD_TYPE: Final = "application/vnd.weightvault.grant+json"
RECEIPT_PAYLOAD_TYPE: Final = "application/vnd.weightvault.grant-receipt+json"
# SigV4 presigned URLs live at most seven days.
MAX_TTL: Final = timedelta(days=7)
_DEK_LABEL: Final = b"weightvault/v1/grant-dek\x00"
_GRANT_ID: Final = re.compile(r"^g-[0-9a-f]{24}$")
_TTL: Final = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIMIT: Final = 4 * 1024 * 1024
_HTTP_TIMEOUT: Final = urllib3.Timeout(connect=10.0, read=120.0)


def parse_ttl(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d``: at least one second, at most seven days."""
    found = _TTL.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise InvalidInputError(f"ttl {text!r:.40} must be a number and s, m, h or d (e.g. 15m)")
    ttl = timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    if ttl > MAX_TTL:
        raise InvalidInputError("a grant lasts at most 7 days (the limit of presigned URLs)")
    return ttl


def check_grant_id(grant_id: str) -> str:
    """A grant id: ``g-`` and 24 hex digits."""
    if not isinstance(grant_id, str) or not _GRANT_ID.match(grant_id.strip()):
        raise InvalidInputError(f"{grant_id!r:.60} is not a grant id (g-<24 hex digits>)")
    return grant_id.strip()


# -- the sealed DEK -------------------------------------------------------------------


def dek_binding(
    grant_id: str, artifact_id: str, content_digest: str, paths: Sequence[str], expires_at: str
) -> bytes:
    """The HPKE ``info`` a grant's DEK is sealed under: grant, artifact, content, files,
    expiry. Opening with any other value fails."""
    return _DEK_LABEL + canonical_json(
        {
            "grant_id": grant_id,
            "artifact_id": artifact_id,
            "content_digest": content_digest,
            "files": list(paths),
            "expires_at": expires_at,
        }
    )


def seal_dek(recipient: hpke.HpkePublicKey, dek: bytes, binding: bytes) -> bytes:
    """The DEK sealed to the recipient's KEM key under ``binding`` (:func:`dek_binding`)."""
    return hpke.wrap(recipient, dek, binding)


def open_dek(private: hpke.HpkePrivateKey, sealed: bytes, binding: bytes) -> bytes:
    """Open :func:`seal_dek`; GrantScopeError for another key, binding or blob."""
    try:
        return hpke.unwrap(private, sealed, binding)
    except IntegrityError:
        raise GrantScopeError(
            "the grant's sealed key does not open: another recipient, or the grant's "
            "artifact, files or expiry were changed"
        ) from None


# -- issuing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedGrant:
    """A grant as issued: what to report, and the file to hand to the collaborator."""

    grant_id: str
    artifact_id: str
    recipient: str
    expires_at: str
    files: tuple[str, ...]
    single_use: bool
    log_index: int
    grant_file: bytes

    def summary(self) -> dict[str, Any]:
        """JSON form (the grant file itself is not repeated: it holds bearer URLs)."""
        return {
            "grant_id": self.grant_id,
            "artifact_id": self.artifact_id,
            "recipient": self.recipient,
            "expires_at": self.expires_at,
            "files": list(self.files),
            "single_use": self.single_use,
            "log_index": self.log_index,
        }


def _select(
    files: Sequence[FileEntry], wanted: Sequence[str] | None
) -> list[tuple[int, FileEntry]]:
    indexed = list(enumerate(files))
    if not wanted:
        return indexed
    by_path = {e.path: (i, e) for i, e in indexed}
    missing = [p for p in wanted if p not in by_path]
    if missing:
        raise InvalidInputError(f"the artifact has no file {missing[0]!r:.200}")
    return sorted({by_path[p] for p in wanted}, key=lambda pair: pair[0])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _whole_seconds(when: datetime) -> datetime:
    return when.replace(microsecond=0)


def issue_grant(
    vault: Vault,
    artifact_id: str,
    recipient: Recipient,
    ttl: timedelta,
    *,
    files: Sequence[str] | None = None,
    single_use: bool = False,
    now: datetime | None = None,
) -> IssuedGrant:
    """Issue a grant of ``artifact_id`` (or of ``files`` of it) to ``recipient``.

    ``now`` is the signing time of the presigned URLs and the grant (default: the
    vault's clock); the grant expires at ``now + ttl``. One logged operation,
    ``grant.issued``, which needs the ``key-admin`` role.
    """
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise InvalidInputError("a grant lasts from one second to 7 days")
    grant_id = f"g-{secrets.token_hex(12)}"
    details: dict[str, Any] = {
        "grant_id": grant_id,
        "recipient": recipient.name,
        "recipient_keyid": recipient.keyid,
        "kem_fingerprint": recipient.kem_public.fingerprint,
        "single_use": single_use,
    }
    with vault.artifact_operation(ISSUED, artifact_id, details) as op:
        try:
            row = vault.resolve(artifact_id)
            if row.tier == "quarantine" or vault.logged_quarantine(row.id) is not None:
                raise QuarantinedError(f"artifact {row.id} is quarantined: no grants")
            manifest, dek = vault.load_manifest(row.id, row.tier, op=op)
            try:
                vault.verify_statement(row.id, row.tier, manifest)
                # The model files only: the rebuild kit (source bundle, locks) is not shared.
                chosen = _select(manifest.model_files, files)
                issued = _whole_seconds(now or vault.clock())
                expires_at = iso_seconds(issued + ttl)
                paths = [e.path for _, e in chosen]
                bucket = vault.settings.store.bucket("grants")
                store = vault.store
                listed = []
                for idx, entry in chosen:
                    key = grant_file_key(grant_id, idx)
                    store.copy(vault.bucket(row.tier), entry.object_key, bucket, key)
                    listed.append(
                        {
                            "path": entry.path,
                            "size": entry.size,
                            "sha256": entry.sha256,
                            "ciphertext_size": entry.ciphertext_size,
                            "url": store.presigned_get(bucket, key, ttl, request_date=issued),
                        }
                    )
                receipt = grant_receipt_key(grant_id)
                binding = dek_binding(grant_id, row.id, manifest.content_digest, paths, expires_at)
                payload = canonical_json(
                    {
                        "type": GRANT_TYPE,
                        "grant_id": grant_id,
                        "vault": vault.settings.store.bucket_prefix,
                        "artifact_id": row.id,
                        "name": manifest.name,
                        "content_digest": manifest.content_digest,
                        "issuer": op.principal.get("name"),
                        "issued_at": iso_seconds(issued),
                        "expires_at": expires_at,
                        "single_use": single_use,
                        "recipient": {
                            "name": recipient.name,
                            "keyid": recipient.keyid,
                            "public_key": recipient.public_key.to_dict(),
                            "kem_fingerprint": recipient.kem_public.fingerprint,
                        },
                        "files": listed,
                        "receipt": {
                            "put": store.presigned(
                                "PUT", bucket, receipt, ttl, request_date=issued
                            ),
                            "get": store.presigned(
                                "GET", bucket, receipt, ttl, request_date=issued
                            ),
                        },
                        "sealed_dek": _b64(seal_dek(recipient.kem_public, dek, binding)),
                    }
                )
            finally:
                del dek
            envelope = dsse.sign_envelope(payload, GRANT_PAYLOAD_TYPE, signing_key(vault.keys))
            store.put_bytes(bucket, grant_document_key(grant_id), canonical_json(envelope))
            op.details.update(
                grant_sha256=hashlib.sha256(payload).hexdigest(),
                files=paths,
                expires_at=expires_at,
                content_digest=manifest.content_digest,
            )
        except BaseException:
            # Nothing half-made stays servable: the copies of a failed grant go.
            with contextlib.suppress(VaultError):
                _remove_copies(vault, grant_id)
            raise
    logged = next(e for e in reversed(vault.history(row.id, {ISSUED})) if e.event.op == op.op)
    proof = prove_entry(vault.tlog, logged.index)
    grant_file = canonical_json(
        {
            "type": GRANT_FILE_TYPE,
            "grant": envelope,
            "log_entry": _b64(logged.entry),
            "log_proof": proof.decode("utf-8"),
        }
    )
    return IssuedGrant(
        grant_id,
        row.id,
        recipient.name,
        expires_at,
        tuple(paths),
        single_use,
        logged.index,
        grant_file,
    )


# -- checking a grant (the collaborator's side, no vault) ------------------------------


@dataclass(frozen=True)
class VerifiedGrant:
    """A grant whose signature and log entry checked out against a pinned root."""

    doc: dict[str, Any]
    sha256: str
    log_index: int
    log_entry: bytes
    log_proof: bytes

    @property
    def grant_id(self) -> str:
        """The grant's id."""
        return str(self.doc["grant_id"])

    @property
    def expires_at(self) -> datetime:
        """When the grant (and its URLs) expire."""
        return parse_iso(str(self.doc["expires_at"]))


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = parse_canonical(data.strip(), what)
    except IntegrityError:
        raise GrantScopeError(f"{what} is not a weightvault grant") from None
    if not isinstance(doc, dict):
        raise GrantScopeError(f"{what} is not a weightvault grant")
    return doc


def _grant_doc(payload: bytes) -> dict[str, Any]:
    doc = _parse_json(payload, "the grant")
    if doc.get("type") != GRANT_TYPE:
        raise GrantScopeError("the grant has an unknown type")
    return doc


def verify_grant(data: bytes, root: Root) -> VerifiedGrant:
    """Check a grant file against a trust root: signed by a vault signing key the root
    lists, and recorded by the log whose keys the root names (the outcome entry of its
    ``grant.issued`` names this grant's sha256). GrantScopeError otherwise."""
    if len(data) > _LIMIT:
        raise GrantScopeError("the grant file is too large")
    outer = _parse_json(data, "the grant file")
    if outer.get("type") != GRANT_FILE_TYPE or set(outer) != {
        "type",
        "grant",
        "log_entry",
        "log_proof",
    }:
        raise GrantScopeError("the grant file is not a weightvault.grant-file/v1")
    envelope = outer["grant"]
    try:
        payload = dsse.verify_envelope(envelope, root.trusted(), GRANT_PAYLOAD_TYPE)
    except (IntegrityError, InvalidInputError) as exc:
        raise GrantScopeError(
            f"the grant's signature does not verify against the pinned root: {exc.message}"
        ) from None
    doc = _grant_doc(payload)
    try:
        root.signer(str(envelope["signatures"][0]["keyid"]), parse_iso(str(doc["issued_at"])))
        entry = base64.b64decode(str(outer["log_entry"]), validate=True)
        proof = str(outer["log_proof"]).encode()
        verify_entry_proof(proof, entry, [verifier_from_vkey(v) for v in root.log])
        event = Event.parse(entry)
    except (KeyStateError, LogVerificationError, IntegrityError, binascii.Error) as exc:
        reason = exc.message if isinstance(exc, VaultError) else "malformed log entry"
        raise GrantScopeError(f"the grant is not backed by the log: {reason}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if (
        event.kind != ISSUED
        or event.phase != "outcome"
        or event.outcome != "ok"
        or event.artifact_id != doc.get("artifact_id")
        or event.details.get("grant_id") != doc.get("grant_id")
        or event.details.get("grant_sha256") != digest
    ):
        raise GrantScopeError("the log entry the grant carries records another grant")
    index = parse_tlog_proof(proof.decode()).index
    return VerifiedGrant(doc, digest, index, entry, proof)


# -- access ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessResult:
    """What a collaborator's access read and where its kept receipt is."""

    grant_id: str
    artifact_id: str
    files: int
    bytes: int
    out: Path
    receipt: Path
    log_index: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "grant_id": self.grant_id,
            "artifact_id": self.artifact_id,
            "files": self.files,
            "bytes": self.bytes,
            "out": str(self.out),
            "receipt": str(self.receipt),
            "log_index": self.log_index,
        }


def _refusal(status: int, body: bytes, what: str) -> VaultError:
    text = body[:2048].decode("utf-8", "replace").lower()
    if "expired" in text:
        return GrantExpiredError(f"the store refused {what}: the grant has expired")
    if status in {403, 404}:
        return GrantRevokedError(
            f"the store refused {what} (HTTP {status}): the grant was revoked or ended"
        )
    return StoreUnavailableError(f"the store answered HTTP {status} to {what}")


def _request(
    http: urllib3.PoolManager, method: str, url: str, what: str, **kwargs: Any
) -> urllib3.BaseHTTPResponse:
    try:
        return http.request(method, url, timeout=_HTTP_TIMEOUT, retries=False, **kwargs)
    except urllib3.exceptions.HTTPError as exc:
        raise StoreUnavailableError(
            f"cannot reach the store for {what}: {type(exc).__name__}"
        ) from None


class _Sha256Sink:
    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.hasher = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        self.sink.write(data)
        return len(data)


def _fetch(
    http: urllib3.PoolManager, entry: dict[str, Any], dek: bytes, artifact_id: str, fh: IO[bytes]
) -> int:
    path = str(entry["path"])
    what = f"file {path}"
    response = _request(http, "GET", str(entry["url"]), what, preload_content=False)
    try:
        if response.status != 200:
            raise _refusal(response.status, response.read(4096), what)
        sink = _Sha256Sink(fh)
        try:
            n = chunked.decrypt(dek, file_context(artifact_id, path), response, sink)
        except IntegrityError as exc:
            raise IntegrityError(f"{what} of the grant: {exc.message}") from None
    finally:
        response.release_conn()
    if n != entry["size"] or sink.hasher.hexdigest() != entry["sha256"]:
        raise IntegrityError(f"{what} of the grant: sha256 mismatch")
    return n


def _claim(
    http: urllib3.PoolManager, grant: VerifiedGrant, identity: Identity, now: datetime
) -> dict[str, Any]:
    """Refuse a revoked, expired or used single-use grant, then put this access's signed
    receipt."""
    urls = grant.doc["receipt"]
    single = bool(grant.doc.get("single_use"))
    if grant.doc["files"]:
        # One byte of the first file: a revoked or expired grant is refused by the store
        # before a receipt claims an access that cannot happen.
        first = grant.doc["files"][0]
        probe = _request(
            http, "GET", str(first["url"]), f"file {first['path']}", headers={"Range": "bytes=0-0"}
        )
        if probe.status not in {200, 206}:
            raise _refusal(probe.status, probe.data, f"file {first['path']}")
    if single:
        seen = _request(http, "GET", str(urls["get"]), "the grant's receipt")
        if seen.status == 200:
            raise GrantReplayError(f"grant {grant.grant_id} is single-use and was used already")
        if seen.status != 404:
            raise _refusal(seen.status, seen.data, "the grant's receipt")
    body = canonical_json(
        {
            "type": RECEIPT_TYPE,
            "grant_id": grant.grant_id,
            "grant_sha256": grant.sha256,
            "artifact_id": grant.doc["artifact_id"],
            "recipient_keyid": identity.keyid,
            "accessed_at": iso_seconds(now),
            "log_index": grant.log_index,
        }
    )
    receipt = dsse.sign_envelope(body, RECEIPT_PAYLOAD_TYPE, identity.key)
    headers = {"Content-Type": "application/json"}
    if single:
        headers["If-None-Match"] = "*"
    put = _request(
        http, "PUT", str(urls["put"]), "the receipt", body=canonical_json(receipt), headers=headers
    )
    if put.status == 412:
        raise GrantReplayError(f"grant {grant.grant_id} is single-use and was used already")
    if put.status not in {200, 201, 204}:
        raise _refusal(put.status, put.data, "the receipt")
    return receipt


def access_grant(
    grant_data: bytes,
    root: Root,
    identity: Identity,
    out: Path,
    *,
    receipt_out: Path | None = None,
    now: datetime | None = None,
) -> AccessResult:
    """Read a granted artifact into ``out`` (made only when every file checked out).

    Needs no vault and no store credential: the grant's presigned URLs only. The receipt
    this access signs is put in the store before any plaintext is written; the grant,
    its log entry and proof and that receipt are kept at ``receipt_out`` (default
    ``OUT.receipt.json``).
    """
    grant = verify_grant(grant_data, root)
    doc = grant.doc
    if doc["recipient"].get("keyid") != identity.keyid:
        raise GrantScopeError(
            f"grant {grant.grant_id} is made to {doc['recipient'].get('name')!r:.70}, "
            f"not to identity {identity.name}"
        )
    if identity.kem is None:
        raise IdentityError(f"identity {identity.name} has no KEM key and cannot open grants")
    moment = now or utcnow()
    if moment >= grant.expires_at:
        raise GrantExpiredError(f"grant {grant.grant_id} expired at {doc['expires_at']}")
    artifact_id = str(doc["artifact_id"])
    files = list(doc["files"])
    binding = dek_binding(
        grant.grant_id,
        artifact_id,
        str(doc["content_digest"]),
        [str(f["path"]) for f in files],
        str(doc["expires_at"]),
    )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # Checked before the receipt, so a single-use grant is not spent on a bad DIR.
        raise InvalidInputError(f"output {out} exists and is not an empty directory")
    sealed = base64.b64decode(str(doc["sealed_dek"]))
    dek = open_dek(identity.kem, sealed, binding)
    kept = receipt_out or out.with_name(out.name + ".receipt.json")
    total = 0
    with urllib3.PoolManager(maxsize=4) as http:
        try:
            receipt = _claim(http, grant, identity, moment)
            with staged_output(out) as staging:
                for entry in files:
                    target = (staging / str(entry["path"])).resolve()
                    if not target.is_relative_to(staging.resolve()):
                        raise GrantScopeError(f"unsafe path {entry['path']!r:.100} in the grant")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with target.open("wb") as fh:
                        total += _fetch(http, entry, dek, artifact_id, fh)
        except OSError as exc:
            raise local_write_error(exc, out) from None
        finally:
            del dek
    write_private(
        kept,
        canonical_json(
            {
                "type": KEPT_RECEIPT_TYPE,
                "grant_id": grant.grant_id,
                "grant_sha256": grant.sha256,
                "log_index": grant.log_index,
                "log_entry": _b64(grant.log_entry),
                "log_proof": grant.log_proof.decode(),
                "receipt": receipt,
            }
        ),
    )
    return AccessResult(grant.grant_id, artifact_id, len(files), total, out, kept, grant.log_index)


# -- the vault's side: list, show, sync, revoke, gc -------------------------------------


@dataclass(frozen=True)
class StoredGrant:
    """A grant document in the grants bucket, its signature checked by the vault's keys."""

    doc: dict[str, Any]
    sha256: str
    state: str = "active"

    @property
    def grant_id(self) -> str:
        """The grant's id."""
        return str(self.doc["grant_id"])

    @property
    def artifact_id(self) -> str:
        """The granted artifact."""
        return str(self.doc["artifact_id"])

    def summary(self) -> dict[str, Any]:
        """Public facts: no URL (they are bearer capabilities), no sealed key."""
        return {
            "grant_id": self.grant_id,
            "artifact_id": self.artifact_id,
            "recipient": self.doc["recipient"]["name"],
            "recipient_keyid": self.doc["recipient"]["keyid"],
            "issuer": self.doc.get("issuer"),
            "issued_at": self.doc["issued_at"],
            "expires_at": self.doc["expires_at"],
            "single_use": self.doc["single_use"],
            "files": [f["path"] for f in self.doc["files"]],
            "state": self.state,
        }


def _grants_bucket(vault: Vault) -> str:
    return vault.settings.store.bucket("grants")


def _load_stored(vault: Vault, grant_id: str) -> StoredGrant:
    try:
        data = vault.store.get_bytes(
            _grants_bucket(vault), grant_document_key(grant_id), limit=_LIMIT
        )
    except NotFoundError:
        raise NotFoundError(f"no grant {grant_id} in the store") from None
    envelope = _parse_json(data, f"grant {grant_id}")
    try:
        payload = dsse.verify_envelope(
            envelope, trusted_keys(trust_root(vault.keys)), GRANT_PAYLOAD_TYPE
        )
    except (IntegrityError, InvalidInputError) as exc:
        raise GrantScopeError(f"stored grant {grant_id} does not verify: {exc.message}") from None
    doc = _grant_doc(payload)
    if doc.get("grant_id") != grant_id:
        raise GrantScopeError(f"the object of grant {grant_id} holds grant {doc.get('grant_id')}")
    return StoredGrant(doc, hashlib.sha256(payload).hexdigest())


def _logged(vault: Vault, grant: StoredGrant, kind: str) -> bool:
    return any(
        e.event.details.get("grant_id") == grant.grant_id
        for e in vault.history(grant.artifact_id, {kind})
    )


def _state(vault: Vault, grant: StoredGrant, now: datetime) -> StoredGrant:
    used = vault.store.exists(_grants_bucket(vault), grant_receipt_key(grant.grant_id))
    if _logged(vault, grant, REVOKED):
        state = "revoked"
    elif used and grant.doc["single_use"]:
        state = "used"
    elif now >= parse_iso(str(grant.doc["expires_at"])):
        state = "expired"
    else:
        state = "accessed" if used else "active"
    return StoredGrant(grant.doc, grant.sha256, state)


def _grant_ids(vault: Vault) -> Iterator[str]:
    for info in vault.store.list(_grants_bucket(vault), GRANTS_PREFIX):
        parts = info.key.split("/")
        if len(parts) == 3 and parts[2] == "grant.json" and _GRANT_ID.match(parts[1]):
            yield parts[1]


def list_grants(vault: Vault, now: datetime | None = None) -> list[StoredGrant]:
    """Every grant in the store with its state: active, accessed, used (single-use),
    expired or revoked."""
    moment = now or vault.clock()
    return [_state(vault, _load_stored(vault, g), moment) for g in _grant_ids(vault)]


def show_grant(vault: Vault, grant_id: str, now: datetime | None = None) -> StoredGrant:
    """One grant and its state."""
    return _state(vault, _load_stored(vault, check_grant_id(grant_id)), now or vault.clock())


def _remove_copies(vault: Vault, grant_id: str) -> int:
    bucket = _grants_bucket(vault)
    keys = [o.key for o in vault.store.list(bucket, grant_files_prefix(grant_id))]
    for key in keys:
        vault.store.remove(bucket, key)
    return len(keys)


def _tier(vault: Vault, artifact_id: str) -> str | None:
    try:
        return vault.resolve(artifact_id).tier
    except (NotFoundError, InvalidInputError):
        return None


def _check_receipt(grant: StoredGrant, data: bytes) -> dict[str, Any]:
    recipient = grant.doc["recipient"]
    try:
        key = HybridVerifyKey.from_dict(recipient["public_key"])
        envelope = _parse_json(data, f"the receipt of {grant.grant_id}")
        body = _parse_json(
            dsse.verify_envelope(envelope, dsse.trust_map([key]), RECEIPT_PAYLOAD_TYPE),
            "the receipt",
        )
    except (IntegrityError, InvalidInputError) as exc:
        raise GrantScopeError(
            f"the receipt of grant {grant.grant_id} is not signed by its recipient: {exc.message}"
        ) from None
    if (
        body.get("type") != RECEIPT_TYPE
        or body.get("grant_id") != grant.grant_id
        or body.get("grant_sha256") != grant.sha256
        or key.keyid != recipient["keyid"]
    ):
        raise GrantScopeError(f"the receipt of grant {grant.grant_id} is about another grant")
    return body


def _state_at_use(grant: StoredGrant, body: dict[str, Any], revoked: bool) -> str:
    """``revoked``, ``expired`` (the receipt's time is past the expiry) or ``valid``."""
    if revoked:
        return "revoked"
    try:
        used = parse_iso(str(body.get("accessed_at")))
    except (ValueError, IntegrityError):
        return "expired"
    return "expired" if used >= parse_iso(str(grant.doc["expires_at"])) else "valid"


def sync_grants(vault: Vault) -> list[dict[str, Any]]:
    """Log each receipt not yet logged as ``grant.accessed`` (who accessed, when, and
    whether the grant was still valid: ``grant_state``); a single-use grant's copies are
    then deleted. A receipt that does not verify is logged refused. Returns what was
    recorded."""
    bucket = _grants_bucket(vault)
    recorded = []
    for grant_id in list(_grant_ids(vault)):
        grant = _load_stored(vault, grant_id)
        try:
            data = vault.store.get_bytes(bucket, grant_receipt_key(grant_id), limit=_LIMIT)
        except NotFoundError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        # Each receipt once: a receipt put again (a replay, or a use after a revoke
        # through the still-signed receipt URL) is logged too, never dropped.
        if any(
            e.event.details.get("grant_id") == grant_id
            and e.event.details.get("receipt_sha256") == digest
            for e in vault.history(grant.artifact_id, {ACCESSED})
        ):
            continue
        details: dict[str, Any] = {
            "grant_id": grant_id,
            "recipient": grant.doc["recipient"]["name"],
            "receipt_sha256": digest,
        }
        tier = _tier(vault, grant.artifact_id)
        revoked = _logged(vault, grant, REVOKED)
        try:
            with vault.operation(ACCESSED, grant.artifact_id, tier, details) as op:
                body = _check_receipt(grant, data)
                op.details["accessed_at"] = body.get("accessed_at")
                # Whether the grant was still good when used, for the detection rules
                # (docs/incidents.md, grant_misuse): the receipt is logged either way.
                op.details["expires_at"] = grant.doc["expires_at"]
                op.details["grant_state"] = _state_at_use(grant, body, revoked)
                if grant.doc["single_use"]:
                    op.details["removed"] = _remove_copies(vault, grant_id)
        except GrantScopeError as exc:
            recorded.append({**details, "outcome": "refused", "reason": exc.message})
            continue
        recorded.append({**op.details, "outcome": "ok"})
    return recorded


def revoke_grant(vault: Vault, grant_id: str, *, rekey: bool = False) -> dict[str, Any]:
    """Stop future use of a grant: its copies are deleted (its URLs then fail at the
    store). A grant that was used handed out the DEK for good: the artifact is then
    marked for rekey (``artifact.rekey_needed`` in the log); ``rekey`` marks it even
    without a receipt (a client that skipped its receipt may have read it)."""
    grant = _load_stored(vault, check_grant_id(grant_id))
    tier = _tier(vault, grant.artifact_id)
    with vault.operation(REVOKED, grant.artifact_id, tier, {"grant_id": grant_id}) as op:
        op.details["removed"] = _remove_copies(vault, grant_id)
        used = vault.store.exists(_grants_bucket(vault), grant_receipt_key(grant_id))
        op.details["used"] = used
        if used or rekey:
            why = "was used" if used else "is revoked as possibly used"
            vault.record(
                REKEY_NEEDED,
                grant.artifact_id,
                tier,
                {
                    "grant_id": grant_id,
                    "reason": f"grant {grant_id} {why}: its recipient holds the DEK",
                },
            )
    return {"artifact_id": grant.artifact_id, **op.details}


def revoke_grants_of(
    vault: Vault, *, recipient: str | None = None, issuer: str | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Revoke every grant not yet revoked that was issued to ``recipient`` or by ``issuer``
    (expired ones too: their copies may still be in the store, and a used one still needs
    its rekey): one logged ``grant.revoked`` per grant, as :func:`revoke_grant`. Returns
    (what each revocation did, the ids of matching grants the log already shows revoked)."""
    if not recipient and not issuer:
        raise InvalidInputError("name a --recipient or an --issuer whose grants to revoke")
    done: list[dict[str, Any]] = []
    skipped: list[str] = []
    for grant in list_grants(vault):
        doc = grant.doc
        if not (
            (recipient and doc["recipient"]["name"] == recipient)
            or (issuer and doc.get("issuer") == issuer)
        ):
            continue
        if grant.state == "revoked":
            skipped.append(grant.grant_id)
            continue
        done.append({"grant_id": grant.grant_id, **revoke_grant(vault, grant.grant_id)})
    return done, skipped


def gc_grants(vault: Vault, now: datetime | None = None) -> list[str]:
    """Delete the copies of expired grants (their URLs are dead anyway); one logged
    ``grant.collected`` when anything is removed. Returns the grant ids collected."""
    moment = now or vault.clock()
    bucket = _grants_bucket(vault)
    due = []
    for grant_id in list(_grant_ids(vault)):
        grant = _load_stored(vault, grant_id)
        if moment >= parse_iso(str(grant.doc["expires_at"])) and any(
            True for _ in vault.store.list(bucket, grant_files_prefix(grant_id))
        ):
            due.append(grant_id)
    if not due:
        return []
    with vault.operation(COLLECTED, None, None, {"grants": due}) as op:
        op.details["removed"] = sum(_remove_copies(vault, g) for g in due)
    return due


def read_grant_file(path: Path) -> bytes:
    """The bytes of a grant file (``--out`` of ``weightvault grant``)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(_LIMIT + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read grant file {path} ({exc.strerror})") from None
    if len(data) > _LIMIT:
        raise GrantScopeError(f"grant file {path} is too large")
    return data
