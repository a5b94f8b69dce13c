"""The artifact engine: envelopes, encrypted uploads, manifests, reads, gc.

:class:`Vault` composes the settings, object store, key provider and catalog
and offers the engines that the lifecycle operations are built from
(:mod:`weightvault.lifecycle.ingest` orders the put steps). A crash before
:meth:`Vault.publish` writes the manifest leaves only orphans, which
:meth:`Vault.gc` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from weightvault import telemetry
from weightvault._fs import (
    local_write_error,
    make_private_dir,
    regular_files,
    source_read_error,
    staged_output,
    sweep_stale_staging,
)
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, iso_seconds, parse_iso, utcnow
from weightvault.artifacts import _ranged
from weightvault.artifacts._auditlog import audit_hash, audit_hmac_key, log_origin, open_log
from weightvault.artifacts._keystore import open_keystore
from weightvault.artifacts._names import (
    LABELED,
    NAME_KINDS,
    NAMED,
    AliasTarget,
    NameIndex,
    apply_amendment,
    check_label,
    fold,
    is_alias,
    parse_alias,
)
from weightvault.artifacts._principals import current_root, enrolled
from weightvault.artifacts._ranged import StoredFile, TensorRead
from weightvault.artifacts._state import (
    REWRAP_KIND,
    STATE_KINDS,
    LoggedState,
    object_state,
    sha256_hex,
)
from weightvault.catalog import ArtifactRow, Catalog
from weightvault.config import TIERS, Settings, environment
from weightvault.crypto import chunked
from weightvault.crypto.binding import file_context, manifest_mac, verify_manifest_mac
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import (
    AliasNotFoundError,
    AuditError,
    AuthorizationError,
    BreakGlassError,
    ConfigError,
    ConflictError,
    DiskFullError,
    EvidenceMismatchError,
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    KeystoreRollbackError,
    NotFoundError,
    PolicyError,
    PrincipalError,
    QuarantinedError,
    RetentionError,
    RollbackError,
    StoreRoleDeniedError,
    TierIsolatedError,
    VaultError,
)
from weightvault.gates import authorize
from weightvault.keys import (
    Identity,
    KeyProvider,
    SealedKeyStore,
    WrappedKey,
    default_identity,
    default_passphrase,
    identity_path,
    load_identity,
)
from weightvault.logs import get_logger
from weightvault.provenance import (
    OMS_ALGORITHM,
    OMS_SIGNATURE_NAME,
    OmsSigningKey,
    Principal,
    Provenance,
    oms_entries,
    oms_key,
    oms_verify_pem,
    provenance_document,
    sign_manifest,
    sign_oms,
    signing_key,
    trust_root,
    trusted_keys,
    verify_oms_signature,
    verify_statement,
)
from weightvault.records import (
    Event,
    FileEntry,
    Manifest,
    SignedCheckpoint,
    TransparencyLog,
    check_relpath,
    current_flow_run,
    new_id,
    notify,
    one_line,
    process_name,
)
from weightvault.store import ObjectStore, connect, ensure_layout
from weightvault.store.layout import (
    ARTIFACTS_PREFIX,
    ENVELOPES_PREFIX,
    ESCROW_NAME,
    artifact_prefix,
    envelope_key,
    envelope_prefix,
    file_key,
    manifest_key,
    oms_signature_key,
    parse_artifact_key,
    parse_envelope_key,
    statement_key,
)

log = get_logger("weightvault.artifacts._vault")
_READ_BLOCK = 1 << 20
_OMS_LIMIT = 4 << 20
# What a put writes to the home (catalog rows, WAL growth, a keystore rewrite) fits here.
_HOME_RESERVE = 4 << 20
REWRAP_SETTLE_S = 60.0
"""How long a read waits for the log to record a rotation's rewrapped envelope it found."""


@dataclass(frozen=True)
class SourceFile:
    """One file to ingest."""

    idx: int
    path: str
    source: Path
    size: int
    #: None for a model file; ``records.REBUILD_KIT`` for a file of the rebuild kit
    role: str | None = None


@dataclass(frozen=True)
class PutPlan:
    """What a put will store, before anything is stored."""

    artifact_id: str
    name: str
    tier: str
    files: tuple[SourceFile, ...]
    labels: dict[str, str] = field(default_factory=dict)
    op: Operation | None = None

    @property
    def total_size(self) -> int:
        """Sum of the source file sizes."""
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class PutResult:
    """The outcome of a put."""

    artifact: ArtifactRow
    duplicate_of: str | None = None
    #: why the put's format scan quarantined the artifact at its commit, if it did
    quarantined: str | None = None

    @property
    def artifact_id(self) -> str:
        """The id under which the content is stored."""
        return self.artifact.id


@dataclass(frozen=True)
class Sealed:
    """A signed but not yet committed artifact (no key material)."""

    manifest: Manifest
    details: dict[str, Any]
    op: Operation | None = None


@dataclass(frozen=True)
class VerifyReport:
    """What verify checked."""

    artifact_id: str
    files: int
    bytes: int
    content_digest: str


@dataclass
class Operation:
    """A logged operation in progress: what its outcome entry will say.

    The body adds ``details`` (never secrets) and the ``key@vN`` refs it used
    (:meth:`uses`). Plain data, so a flow can hand it from task to task.
    """

    op: str
    kind: str
    artifact_id: str | None
    tier: str | None
    details: dict[str, Any] = field(default_factory=dict)
    key_ids: set[str] = field(default_factory=set)
    intent_index: int = -1
    outcome: Event | None = None
    outcome_index: int = -1
    principal: dict[str, Any] = field(default_factory=dict)

    def uses(self, *refs: str | None) -> None:
        """Name keys (``key@vN``) the operation used."""
        self.key_ids.update(r for r in refs if r)

    @property
    def ts(self) -> str:
        """The time of the recorded outcome."""
        if self.outcome is None:
            raise AuditError(f"{self.kind} has no recorded outcome yet")
        return self.outcome.ts


_REFUSALS = (
    PolicyError,
    KeyStateError,
    ConflictError,
    InvalidInputError,
    RetentionError,
    PrincipalError,
    AuthorizationError,
)
_QUARANTINE_KINDS = frozenset({"artifact.quarantined", "artifact.released"})
BREAK_GLASS_READ = "artifact.break_glass_read"
TIER_ISOLATED = "tier.isolated"
TIER_RESTORED = "tier.restored"
_ISOLATION_KINDS = (TIER_ISOLATED, TIER_RESTORED)
#: the tiers an isolation can cover (quarantine is already a read barrier)
ISOLATABLE_TIERS = ("hot", "warm", "cold")


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the signed log holds it: its index, the event, its exact entry bytes."""

    index: int
    event: Event
    entry: bytes


def _outcome_of(error: BaseException | None) -> tuple[str, str | None]:
    """(outcome, one-line reason) of an operation that ended with ``error``."""
    if error is None:
        return "ok", None
    if isinstance(error, VaultError):
        return ("refused" if isinstance(error, _REFUSALS) else "failed"), one_line(error.message)
    return "failed", type(error).__name__


class TransferProgress(Protocol):
    """Where an engine reports bytes moved: a progress bar, a log, nothing."""

    def start(self, total: int) -> None:
        """The plaintext bytes the operation will move in all."""

    def advance(self, amount: int) -> None:
        """``amount`` more plaintext bytes have moved (called from any thread)."""


_PROGRESS_STEP = 4 << 20


class _CountingReader:
    """The ciphertext stream handed to the store, reporting plaintext read so far.

    The store reads it a part (MiBs) at a time, so the report costs one call per part.
    """

    def __init__(self, reader: chunked.EncryptingReader, progress: TransferProgress) -> None:
        self._reader = reader
        self._progress = progress
        self._reported = 0

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size)
        done = self._reader.plaintext_len
        if done > self._reported:
            self._progress.advance(done - self._reported)
            self._reported = done
        return data


class _HashingSink:
    """Hashes what it is given on a background thread, and optionally writes it.

    hashlib releases the GIL on large updates, so the SHA-256 runs beside the
    decryption instead of after it. The queue is bounded: memory stays constant.
    """

    def __init__(
        self, fh: IO[bytes] | None = None, progress: TransferProgress | None = None
    ) -> None:
        self._fh = fh
        self._progress = progress
        self._unreported = 0
        self._sha256 = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()
        self.size = 0

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            self._sha256.update(block)

    def write(self, data: Any) -> int:
        block = bytes(data)
        self._queue.put(block)
        if self._fh is not None:
            self._fh.write(block)
        self.size += len(block)
        if self._progress is not None:
            self._unreported += len(block)
            if self._unreported >= _PROGRESS_STEP:
                self._progress.advance(self._unreported)
                self._unreported = 0
        return len(block)

    def close(self) -> None:
        """Stop the hashing thread (idempotent)."""
        if self._progress is not None and self._unreported:
            self._progress.advance(self._unreported)
            self._unreported = 0
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        """SHA-256 of everything written."""
        self.close()
        return self._sha256.hexdigest()


def decrypt_object(
    store: ObjectStore,
    bucket: str,
    artifact_id: str,
    entry: FileEntry,
    dek: bytes,
    sink: IO[bytes] | None,
    progress: TransferProgress | None = None,
) -> tuple[str, int]:
    """Decrypt one stored file into ``sink`` (or nowhere), checking its size and sha256.

    Returns the sha256 and size. Plaintext reaches ``sink`` only chunk by
    authenticated chunk; the caller discards ``sink`` on IntegrityError.
    """
    context = file_context(artifact_id, entry.path)
    hasher = _HashingSink(sink, progress)
    try:
        with store.open(bucket, entry.object_key) as stream:
            n = chunked.decrypt(dek, context, stream, hasher)
    except IntegrityError as exc:
        raise IntegrityError(f"artifact {artifact_id} file {entry.path}: {exc.message}") from None
    except NotFoundError:
        raise IntegrityError(
            f"artifact {artifact_id} file {entry.path}: object is missing"
        ) from None
    finally:
        hasher.close()
    digest = hasher.hexdigest()
    if n != entry.size or digest != entry.sha256:
        raise IntegrityError(f"artifact {artifact_id} file {entry.path}: sha256 mismatch")
    return digest, n


def _new_artifact_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return f"wv-{stamp}-{secrets.token_hex(8)}"


def _walk(source: Path) -> list[tuple[str, Path]]:
    """(manifest path, path) of every regular file of ``source``; links are refused."""
    return [(check_relpath(rel), path) for rel, path in regular_files(source)]


# Reads of one open_file listed in its log outcome (the count is always logged).
_LOGGED_READS = 100


class Vault:
    """One vault: settings, object store, keys and catalog."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        keys: KeyProvider,
        catalog: Catalog,
        *,
        identity: Identity | str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.catalog = catalog
        self.clock = clock
        self._identity_name = identity if isinstance(identity, str) else None
        self._identity = identity if isinstance(identity, Identity) else None
        self._principal: tuple[Principal | None, str] | None = None
        self._envelopes_locked: bool | None = None
        self._log: TransparencyLog | None = None
        self._audit_key: bytes | None = None
        telemetry.configure_telemetry(settings.otlp_endpoint)
        # (log size scanned, tier -> its latest logged isolation or restore entry)
        self._isolation: tuple[int, dict[str, LoggedEvent]] = (0, {})

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        identity: Identity | str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Vault:
        """Open the configured vault (store must be reachable).

        ``identity`` is who acts: a loaded identity, the name or path of an
        identity file, else :func:`~weightvault.keys.default_identity`. It is
        loaded at the first operation, and proved by the signature every log
        entry carries. ``clock`` is the vault's and its keystore's time (key
        expiry, retention). Its home is made 0700.
        """
        if settings.home.is_dir():
            make_private_dir(settings.home)
        store = connect(settings)
        keystore = open_keystore(settings, store, clock=clock)
        return cls(
            settings,
            store,
            keystore,
            Catalog(settings.catalog_url),
            identity=identity,
            clock=clock,
        )

    def ensure_layout(self) -> None:
        """Create the buckets if needed."""
        ensure_layout(self.store, self.settings)

    def bucket(self, tier: str) -> str:
        """Bucket of a tier (or of envelopes/audit)."""
        return self.settings.store.bucket(tier)

    def _check_tier(self, tier: str) -> str:
        if tier not in TIERS or tier == "quarantine":
            raise InvalidInputError(f"unknown or non-writable tier {tier!r}; use hot, warm or cold")
        return tier

    def retain_until(self, tier: str) -> datetime | None:
        """Retention date for new objects in ``tier``, if it has object lock."""
        settings = self.settings.tiers[tier]
        if not settings.object_lock or settings.retention_days <= 0:
            return None
        until = self.clock() + timedelta(days=settings.retention_days)
        return until.replace(microsecond=0)

    # -- who acts ----------------------------------------------------------

    @property
    def identity(self) -> Identity:
        """The acting identity (its key file loaded on first use; IdentityError if it cannot be)."""
        if self._identity is None:
            spec = self._identity_name or default_identity()
            self._identity = load_identity(identity_path(spec), default_passphrase())
        return self._identity

    def principal(self) -> Principal | None:
        """The principal the enrolment in force names for the acting key, or None.

        The enrolment is the signed trust root's (verified from this host's
        cache), else the keystore's bootstrap enrolment; it is read once per
        Vault and again after :meth:`forget_principal`.
        """
        return self._resolve()[0]

    def _resolve(self) -> tuple[Principal | None, str]:
        if self._principal is None:
            identity = self.identity
            root = current_root(self.settings, self.store, None)
            where = f"trust root v{root.version}" if root is not None else "the bootstrap enrolment"
            found = enrolled(root, self.keys)
            match = next((p for p in found if p.keyid == identity.keyid), None)
            if match is not None:
                self._principal = (match, where)
                return self._principal
            if any(p.name == identity.name for p in found):
                why = (
                    f"identity {identity.name} (key {identity.keyid[:16]}) is not the key "
                    f"{where} enrols as {identity.name}"
                )
            else:
                why = (
                    f"identity {identity.name} (key {identity.keyid[:16]}) is not enrolled in "
                    f"{where}: a key-admin enrols it with `weightvault trust enrol`"
                )
            self._principal = (None, why)
        return self._principal

    def forget_principal(self) -> None:
        """Read the enrolment again at the next operation (a new trust root was published)."""
        self._principal = None

    @property
    def actor(self) -> str:
        """The enrolled name of the acting principal; PrincipalError if it is not enrolled."""
        principal, why = self._resolve()
        if principal is None:
            raise PrincipalError(why)
        return principal.name

    def _signed(self, event: Event) -> Event:
        message = event.signed_message(log_origin(self.settings))
        return event.with_signature(self.identity.sign(message))

    # -- the audit log -----------------------------------------------------

    @property
    def tlog(self) -> TransparencyLog:
        """The vault's transparency log (opened on first use; its keys created then)."""
        if self._log is None:
            try:
                opened = open_log(self.settings, self.store, self.keys)
            except VaultError as exc:
                raise AuditError(f"audit log unavailable: {exc.message}") from None
            self._check_keystore_version(opened)
            self._log = opened
        return self._log

    def _keystore_version(self) -> dict[str, Any] | None:
        """The local keystore's version and sealed sha256, which every entry records."""
        if not isinstance(self.keys, SealedKeyStore):
            return None
        version, sealed = self.keys.sealed_version()
        return {"version": version, "sealed_sha256": sealed}

    def _check_keystore_version(self, tlog: TransparencyLog) -> None:
        """KeystoreRollbackError if the log's newest entry records a newer keystore.

        The log is opened with the log keys of the local keystore, possibly an old
        copy: they only verify (an older copy holds the same log keys, a forged one
        cannot sign a checkpoint). The bucket's version records, which an attacker
        can delete, are not involved: the newest entry is proved in the checkpoint.
        """
        local = self._keystore_version()
        try:
            signed = tlog.checkpoint()
            size = signed.checkpoint.size
            if local is None or size == 0:
                return
            (entry,) = tlog.reader(size).entries(size - 1, size)
            tlog.check_included([(size - 1, entry)], signed)
            event = Event.parse(entry)
        except IntegrityError:
            raise  # a log that fails verification is named as such by the caller
        except VaultError as exc:
            raise AuditError(f"audit log unavailable: {exc.message}") from None
        logged = event.client.get("keystore")
        version = logged.get("version") if isinstance(logged, dict) else None
        if isinstance(version, int) and version > local["version"]:
            raise KeystoreRollbackError(
                f"keystore {self.keys} is version {local['version']} but "
                f"the transparency log records version {version} at entry {size - 1}: this "
                "is an older copy (restored or rolled back); restore the newest keystore file"
            )

    def private(self, value: str) -> str:
        """``hmac-sha256:<hex>`` of an identifier the log must not show (a path, a host)."""
        if self._audit_key is None:
            self._audit_key = audit_hmac_key(self.keys)
        return audit_hash(self._audit_key, value)

    def _client(self) -> dict[str, Any]:
        return {
            "host": self.private(socket.gethostname()),
            "pid": os.getpid(),
            "process": process_name(),
            "flow_run": current_flow_run(),
            "keystore": self._keystore_version(),
        }

    def _append(self, event: Event) -> int:
        index = self.tlog.sequence(event.to_bytes())
        with contextlib.suppress(VaultError), self.catalog.transaction() as conn:
            self.catalog.add_log_entry(conn, event.log_row(index))
        return index

    def history(self, artifact_id: str, kinds: Collection[str] | None = None) -> list[LoggedEvent]:
        """The artifact's successful operations as the signed log records them, oldest first.

        The catalog's index of the log only finds them. It is first brought up to
        the current signed checkpoint (entries another process appended and
        nobody indexed are read from the tiles), then every entry returned is
        proved included in that checkpoint: a forged or edited index row is an
        IntegrityError, never a trusted event.
        """
        signed = self.tlog.checkpoint()
        size = signed.checkpoint.size
        self._catch_up_index(size)
        rows = [(i, text.encode()) for i, text in self.catalog.log_history(artifact_id, size)]
        out = []
        for index, entry in rows:
            event = Event.parse(entry)
            if kinds is None or event.kind in kinds:
                out.append(LoggedEvent(index, event, entry))
        try:
            self.tlog.check_included([(e.index, e.entry) for e in out], signed)
        except IntegrityError as exc:
            raise IntegrityError(
                f"the catalog's index of the log was tampered with: {exc.message}"
            ) from None
        return out

    def logged_state(self, artifact_id: str) -> LoggedState:
        """Every state of the artifact's objects the signed log records.

        One history lookup, plus the newest rotation entry (``envelopes.rewrapped``,
        one per batch of envelopes) after the artifact's own latest state that names
        it: found through the catalog's index, proved included in the checkpoint.
        """
        events = [(e.index, e.event) for e in self.history(artifact_id, STATE_KINDS)]
        after = events[-1][0] if events else None
        rows = [] if after is None else self.catalog.log_mentions(REWRAP_KIND, artifact_id, after)
        if rows:
            signed = self.tlog.checkpoint()
            size = signed.checkpoint.size
            for index, text in rows:
                if index >= size:
                    continue  # sequenced, not yet in a signed checkpoint
                entry = text.encode()
                event = Event.parse(entry)
                envelopes = event.details.get("envelopes")
                if not isinstance(envelopes, dict) or artifact_id not in envelopes:
                    continue
                try:
                    self.tlog.check_included([(index, entry)], signed)
                except IntegrityError as exc:
                    raise IntegrityError(
                        f"the catalog's index of the log was tampered with: {exc.message}"
                    ) from None
                events.append((index, event))
                break
        return LoggedState.from_events(artifact_id, events)

    def isolated_tiers(self) -> dict[str, LoggedEvent]:
        """The tiers the signed log says are isolated now, each with its ``tier.isolated`` entry.

        The latest ok ``tier.isolated`` / ``tier.restored`` outcome of a tier decides. Entries
        are found through the catalog's index (brought up to the current checkpoint first)
        and each one is proved included in the signed checkpoint: a forged or edited row is
        an IntegrityError, never a lifted isolation. Incremental: only the entries added
        since the last call are looked up, so the cost per operation stays small.
        """
        signed = self.tlog.checkpoint()
        size = signed.checkpoint.size
        scanned, state = self._isolation
        if size < scanned:
            scanned, state = 0, {}
        if size == scanned:
            return {t: e for t, e in state.items() if e.event.kind == TIER_ISOLATED}
        found = self._proved_entries(_ISOLATION_KINDS, scanned - 1, signed)
        state = dict(state)
        for logged in found:
            event = logged.event
            if (
                event.kind in _ISOLATION_KINDS
                and event.phase == "outcome"
                and event.outcome == "ok"
                and event.tier in ISOLATABLE_TIERS
            ):
                state[event.tier] = logged
        self._isolation = (size, state)
        return {t: e for t, e in state.items() if e.event.kind == TIER_ISOLATED}

    def object_state(self, artifact_id: str, tier: str) -> dict[str, Any]:
        """The state of the artifact's objects in ``tier`` as stored now, for a log entry."""
        bucket = self.bucket(tier)
        envelope = self._envelope_bytes(artifact_id, tier)
        wrapped = self._parse_envelope(artifact_id, tier, envelope)
        return object_state(
            tier,
            manifest=self.store.get_bytes(bucket, manifest_key(artifact_id)),
            statement=self.store.get_bytes(bucket, statement_key(artifact_id)),
            envelope=envelope,
            kek=f"{wrapped.kek_id}@v{wrapped.kek_version}",
        )

    def envelope_sha256(self, artifact_id: str, tier: str) -> str:
        """sha256 of the exact bytes of the artifact's envelope for ``tier``."""
        return sha256_hex(self._envelope_bytes(artifact_id, tier))

    def _catch_up_index(self, size: int) -> None:
        """Index the log entries below ``size`` that the catalog lacks."""
        count, have = self.catalog.log_indexes(size)
        if have is None:
            return
        reader = self.tlog.reader(size)
        missing = sorted(set(range(size)) - have)
        start = 0
        while start < len(missing):
            first = missing[start]
            end = start
            while end + 1 < len(missing) and missing[end + 1] == missing[end] + 1:
                end += 1
            entries = reader.entries(first, missing[end] + 1)
            with self.catalog.transaction() as conn:
                for offset, entry in enumerate(entries):
                    self.catalog.add_log_entry(conn, Event.parse(entry).log_row(first + offset))
            start = end + 1
        log.info("audit.index_caught_up", indexed=len(missing), had=count)

    def begin(
        self,
        kind: str,
        artifact_id: str | None = None,
        tier: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Operation:
        """Record the intent of an operation before it has any effect.

        AuditError (exit 15) if the intent cannot be recorded, IntegrityError
        if the log fails verification (a forged checkpoint): the caller must
        then do nothing at all. The intent is signed by the acting identity; a
        key the enrolment does not name is recorded (name null) and refused
        with PrincipalError (exit 40) before any effect; an operation the
        authorization policy (``authz.rego``) refuses the principal is recorded
        and refused with AuthorizationError (exit 42), naming the rule.
        """
        principal, why = self._resolve()
        op = Operation(new_id(), kind, artifact_id, tier, dict(details or {}))
        op.principal = {
            "name": principal.name if principal else None,
            "keyid": self.identity.keyid,
        }
        telemetry.start_operation(
            op.op,
            kind,
            artifact_id=artifact_id,
            tier=tier,
            principal=principal.name if principal else None,
            flow_run=current_flow_run(),
        )
        try:
            event = Event.new(
                kind,
                phase="intent",
                op=op.op,
                principal=op.principal,
                client=self._client(),
                artifact_id=artifact_id,
                tier=tier,
                details=op.details,
                now=self.clock(),
            )
            op.intent_index = self._append(self._signed(event))
        except KeystoreRollbackError as exc:
            self._unrecorded(op, exc)
            raise
        except IntegrityError as exc:
            error: VaultError = IntegrityError(
                f"the audit log fails verification, {kind} refused before it did anything: "
                f"{exc.message}"
            )
            self._unrecorded(op, error)
            raise error from None
        except VaultError as exc:
            error = AuditError(
                f"audit log unavailable, {kind} refused before it did anything: {exc.message}"
            )
            self._unrecorded(op, error)
            raise error from None
        if principal is None:
            refusal: VaultError | None = PrincipalError(f"{kind} refused: {why}")
        else:
            target = op.details.get("to") if kind == "artifact.promotion" else None
            touched = {t for t in (tier, target) if t in ISOLATABLE_TIERS}
            try:
                isolated = sorted(self.isolated_tiers()) if touched else []
            except VaultError as exc:
                refusal = IntegrityError(
                    f"{kind} refused: the tier isolation state cannot be established from the "
                    f"signed log: {exc.message}"
                )
            else:
                refusal = self._authorization_refusal(
                    principal, kind, artifact_id, tier, target=target, isolated=isolated
                )
        if refusal is not None:
            self.finish(op, refusal)
            raise refusal
        return op

    def _authorization_refusal(
        self,
        principal: Principal,
        kind: str,
        artifact_id: str | None,
        tier: str | None,
        *,
        target: object = None,
        isolated: Collection[str] = (),
    ) -> AuthorizationError | None:
        """Why the authorization policy refuses ``principal`` this operation, or None.

        ``target`` is the tier a promotion moves to; ``isolated`` the tiers the signed log
        says are isolated (rule ``tier_isolated``). Fails
        closed: a policy that is missing or cannot be evaluated refuses.
        """
        request = {
            "principal": {
                "name": principal.name,
                "keyid": principal.keyid,
                "roles": sorted(principal.roles),
            },
            "operation": kind,
            "tier": tier,
            "artifact_id": artifact_id,
            "to": target if isinstance(target, str) else None,
            "isolated_tiers": list(isolated),
        }
        try:
            decision = authorize(request, self.settings.policy_dir)
        except (ConfigError, InvalidInputError) as exc:
            return AuthorizationError(f"{kind} refused: policy_error: {exc.message}")
        if decision.allow:
            return None
        if all(r.startswith("tier_isolated") for r in decision.reasons):
            return TierIsolatedError(
                f"{kind} refused for {principal.name}: " + "; ".join(decision.reasons)
            )
        return AuthorizationError(
            f"{kind} refused for {principal.name}: " + "; ".join(decision.reasons)
        )

    def finish(self, op: Operation, error: BaseException | None = None) -> Event:
        """Record the outcome of ``op``: ok, or failed/refused with ``error``'s one-line reason.

        The outcome is integrated into a new signed checkpoint, then indexed and
        published. AuditError if it cannot be recorded (the effect has happened;
        the log then shows an intent without an outcome).
        """
        if op.outcome is not None:
            return op.outcome
        outcome, reason = _outcome_of(error)
        details = dict(op.details)
        if error is not None:
            details["error"] = type(error).__name__
        if not op.principal:
            principal = self.principal()
            op.principal = {
                "name": principal.name if principal else None,
                "keyid": self.identity.keyid,
            }
        if op.principal.get("keyid") != self.identity.keyid:
            raise PrincipalError(
                f"{op.kind} was begun by another key than this vault's identity "
                f"{self.identity.name}: it cannot record its outcome"
            )
        event = Event.new(
            op.kind,
            phase="outcome",
            op=op.op,
            principal=op.principal,
            client=self._client(),
            artifact_id=op.artifact_id,
            tier=op.tier,
            key_ids=tuple(op.key_ids),
            outcome=outcome,
            reason=reason,
            details=details,
            now=self.clock(),
        )
        event = self._signed(event)
        try:
            index = self._append(event)
            self.tlog.integrate(until=index)
        except VaultError as exc:
            missing = AuditError(
                f"{op.kind} ran but its outcome is missing from the audit log "
                f"(intent {op.intent_index}): {exc.message}"
            )
            self._publish(event, None, error if error is not None else missing)
            raise missing from None
        op.outcome = event
        op.outcome_index = index
        if outcome == "ok":
            with self.catalog.transaction() as conn:
                self.catalog.add_event(conn, event.catalog_row())
        fields = {
            "artifact_id": op.artifact_id,
            "actor": event.actor,
            "outcome": outcome,
            "reason": reason,
            "log_index": index,
        }
        extra = {k: v for k, v in op.details.items() if k not in fields and k != "event"}
        log.info(op.kind, **fields, **extra)
        notify(event)
        self._publish(event, index, error)
        return event

    def _publish(self, event: Event, index: int | None, error: BaseException | None) -> None:
        """End the operation's span and queue its Prefect event; never raises."""
        try:
            telemetry.end_operation(
                event.op,
                event.kind,
                tier=event.tier,
                outcome=event.outcome or "failed",
                error=type(error).__name__ if error is not None else None,
                log_index=index,
            )
            if not self.settings.events_enabled:
                return
            url = telemetry.prefect_api_url(self.settings.events_api_url)
            if url is None:
                return
            telemetry.emit(
                telemetry.prefect_event(
                    event.to_dict(),
                    index=index,
                    vault=self.settings.store.bucket_prefix,
                    integrity=isinstance(error, IntegrityError),
                    training_run=environment().training_run_id,
                ),
                url,
            )
        except Exception as exc:  # telemetry never fails an operation
            log.debug("telemetry.dropped", error=type(exc).__name__)

    def _unrecorded(self, op: Operation, error: VaultError) -> None:
        """Publish an operation refused before the log could record its intent."""
        try:
            client: dict[str, Any] = {
                "host": "unrecorded",
                "pid": os.getpid(),
                "process": process_name(),
                "flow_run": current_flow_run(),
            }
            with contextlib.suppress(Exception):
                client = self._client()
            outcome, reason = _outcome_of(error)
            event = Event.new(
                op.kind,
                phase="outcome",
                op=op.op,
                principal=op.principal,
                client=client,
                artifact_id=op.artifact_id,
                tier=op.tier,
                outcome=outcome,
                reason=reason,
                details={**op.details, "error": type(error).__name__},
                now=self.clock(),
            )
        except Exception:
            return
        self._publish(event, None, error)

    def record(
        self,
        kind: str,
        artifact_id: str | None = None,
        tier: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        """Record a decision or a step already covered by an enclosing operation's intent."""
        with self.operation(kind, artifact_id, tier, details) as op:
            pass
        return self.finish(op)

    @contextlib.contextmanager
    def operation(
        self,
        kind: str,
        artifact_id: str | None = None,
        tier: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Iterator[Operation]:
        """Run the body as one logged operation: intent first, outcome after.

        If the intent cannot be recorded the body never runs (AuditError). A
        VaultError from the body is recorded as ``failed`` or ``refused`` with
        its one-line message and re-raised; any other exception as ``failed``
        with its class name only.
        """
        op = self.begin(kind, artifact_id, tier, details)
        try:
            yield op
        except BaseException as exc:
            try:
                self.finish(op, exc)
            except AuditError as audit:
                log.warning("audit.outcome_missing", kind=kind, reason=audit.message)
            raise
        self.finish(op)

    # -- put -----------------------------------------------------------------

    def plan(
        self, source: Path, name: str, tier: str = "hot", labels: dict[str, str] | None = None
    ) -> PutPlan:
        """List what a put of ``source`` will store."""
        self._check_tier(tier)
        if not name or len(name) > 200 or any(c in name for c in "\x00\n\r"):
            raise InvalidInputError("artifact name must be 1-200 printable characters")
        for key, value in (labels or {}).items():
            check_label(key, value)
        self._check_home_space()
        entries = _walk(source)
        files = tuple(
            SourceFile(i, rel, path, path.stat().st_size) for i, (rel, path) in enumerate(entries)
        )
        return PutPlan(_new_artifact_id(), name, tier, files, dict(labels or {}))

    def _check_home_space(self) -> None:
        """DiskFullError before a put stores anything if the home cannot take its records."""
        home = self.settings.home
        try:
            free = shutil.disk_usage(home).free
        except OSError:
            return
        if free < _HOME_RESERVE:
            raise DiskFullError(
                f"the vault home {home} has {free} bytes free; a put needs {_HOME_RESERVE} "
                "for the catalog and keystore: free space there first"
            )

    def create_envelope(self, artifact_id: str, tier: str) -> WrappedKey:
        """Draw a DEK, wrap it for ``tier`` and store the envelope."""
        dek = secrets.token_bytes(32)
        wrapped = self.keys.wrap_dek(tier, artifact_id, dek)
        del dek
        self.put_envelope(artifact_id, tier, envelope_key(artifact_id, tier), wrapped.to_dict())
        return wrapped

    def envelope_retain_until(self, artifact_id: str, tier: str) -> datetime | None:
        """Retention of an envelope for ``tier``: cold and escrow envelopes live as long as
        the artifact's cold ciphertext (its cold manifest's retention), others are deletable.
        """
        if tier not in {"cold", ESCROW_NAME} or not self.settings.tiers["cold"].object_lock:
            return None
        if not self._envelopes_lock():
            return None
        try:
            found = self.store.retention(self.bucket("cold"), manifest_key(artifact_id))
        except NotFoundError:  # not committed yet (a put into cold, a promotion's rewrap)
            found = None
        return found[1] if found else self.retain_until("cold")

    def _envelopes_lock(self) -> bool:
        """Whether the envelopes bucket has object lock (a vault made before it may not)."""
        if self._envelopes_locked is None:
            self._envelopes_locked = self.store.object_lock_enabled(self.bucket("envelopes"))
            if not self._envelopes_locked:
                log.warning("envelopes.unlocked", bucket=self.bucket("envelopes"))
        return self._envelopes_locked

    def put_envelope(
        self,
        artifact_id: str,
        tier: str,
        key: str,
        doc: dict[str, Any],
        *,
        if_match: str | None = None,
    ) -> None:
        """Store an envelope document; a cold or escrow one under COMPLIANCE retention.

        The envelopes bucket is versioned: a rewrite (rotation, rewrap) adds a
        version and the retained ones stay readable. With ``if_match`` (the ETag of
        the envelope the rewrite started from) a deletable envelope is replaced only
        if nobody replaced it meanwhile (ConflictError otherwise); a retained one,
        whose write carries its retention, is replaced as it is.
        """
        retain = self.envelope_retain_until(artifact_id, tier)
        self.store.put_bytes(
            self.bucket("envelopes"),
            key,
            canonical_json(doc),
            retain_until=retain,
            if_match=if_match if retain is None else None,
        )

    def _envelope_bytes(self, artifact_id: str, tier: str) -> bytes:
        return self.store.get_bytes(
            self.bucket("envelopes"), envelope_key(artifact_id, tier), limit=64 * 1024
        )

    @staticmethod
    def _parse_envelope(artifact_id: str, tier: str, data: bytes) -> WrappedKey:
        wrapped = WrappedKey.from_dict(parse_canonical(data, "envelope"))
        if wrapped.artifact_id != artifact_id or wrapped.tier != tier:
            raise IntegrityError(f"envelope of artifact {artifact_id} names another artifact")
        return wrapped

    def load_envelope_for_rewrite(self, artifact_id: str, tier: str) -> tuple[WrappedKey, str]:
        """The envelope of an artifact for a tier and the ETag of that read (for
        :meth:`put_envelope`'s ``if_match``)."""
        data, etag = self.store.get_with_etag(
            self.bucket("envelopes"), envelope_key(artifact_id, tier), limit=64 * 1024
        )
        return self._parse_envelope(artifact_id, tier, data), etag

    def load_envelope(self, artifact_id: str, tier: str) -> WrappedKey:
        """Fetch and parse the envelope of an artifact for a tier."""
        return self._parse_envelope(artifact_id, tier, self._envelope_bytes(artifact_id, tier))

    def dek(self, artifact_id: str, tier: str) -> bytes:
        """Unwrap an artifact's DEK for ``tier``; the caller drops it as soon as it is used."""
        return self._unwrap(self.load_envelope(artifact_id, tier))

    def _unwrap(self, wrapped: WrappedKey) -> bytes:
        artifact_id = wrapped.artifact_id
        try:
            return self.keys.unwrap_dek(wrapped)
        except NotFoundError:
            raise IntegrityError(
                f"envelope of artifact {artifact_id} names an unknown key {wrapped.kek_id}"
            ) from None

    def upload_file(
        self,
        artifact_id: str,
        tier: str,
        src: SourceFile,
        progress: TransferProgress | None = None,
    ) -> FileEntry:
        """Hash, encrypt and upload one file in one pass."""
        dek = self.dek(artifact_id, tier)
        key = file_key(artifact_id, src.idx)
        try:
            with (
                telemetry.file_span(artifact_id, src.path, "put", tier),
                src.source.open("rb") as fh,
            ):
                reader = chunked.EncryptingReader(fh, dek, file_context(artifact_id, src.path))
                del dek
                length = chunked.ciphertext_size(src.size)
                stream = reader if progress is None else _CountingReader(reader, progress)
                self.store.put_stream(
                    self.bucket(tier), key, stream, length, retain_until=self.retain_until(tier)
                )
        except OSError as exc:
            raise source_read_error(exc, src.source) from None
        if reader.plaintext_len != src.size:
            raise InvalidInputError(f"{src.source} changed size while it was being read")
        telemetry.count_bytes("in", tier, src.size)
        return FileEntry(src.path, src.size, reader.hexdigest, length, key, src.role)

    def seal(
        self,
        plan: PutPlan,
        entries: list[FileEntry],
        *,
        provenance: Provenance | None = None,
        dedupe: bool = True,
    ) -> Sealed | PutResult:
        """Build and sign the manifest's statement; a duplicate returns the original."""
        entries = sorted(entries, key=lambda e: e.object_key)
        manifest = Manifest(
            artifact_id=plan.artifact_id,
            name=plan.name,
            created_at=iso(self.clock()),
            creator=self.actor,
            tier=plan.tier,
            files=tuple(entries),
            labels=plan.labels,
        )
        if dedupe:
            existing = self.catalog.find_by_digest(manifest.content_digest)
            quarantined = [row.id for row in existing if row.tier == "quarantine"]
            if quarantined:
                self.discard(plan.artifact_id, plan.tier)
                raise QuarantinedError(
                    f"the same content is stored as quarantined artifact {quarantined[0]}; "
                    "refusing to store it again until it is released"
                )
            if existing:
                self.discard(plan.artifact_id, plan.tier)
                original = existing[0]
                if plan.op is not None:
                    plan.op.details.update(
                        duplicate_of=original.id, content_digest=manifest.content_digest
                    )
                    self.finish(plan.op)
                self.record(
                    "artifact.deduplicated",
                    original.id,
                    original.tier,
                    {"name": plan.name, "content_digest": manifest.content_digest},
                )
                self._amend_duplicate(original, plan)
                return PutResult(original, duplicate_of=original.id)
        parent_sha256 = None
        if provenance is not None and provenance.parent:
            parent_sha256 = self.resolve(provenance.parent).content_digest.removeprefix("sha256:")
        statement, signed_by = sign_manifest(
            self.keys, manifest, provenance_document(provenance, plan.artifact_id, parent_sha256)
        )
        self.store.put_bytes(
            self.bucket(plan.tier),
            statement_key(plan.artifact_id),
            statement,
            retain_until=self.retain_until(plan.tier),
        )
        details: dict[str, Any] = {"signed_by": signed_by}
        oms = self._store_oms_signature(manifest)
        if oms is not None:
            details["oms_signature"] = oms
        if provenance is not None:
            details["provenance_complete"] = provenance.complete
            details["git_commit"] = provenance.git_commit
            if provenance.run_id:
                details["run_id"] = provenance.run_id
        return Sealed(manifest, details, plan.op)

    def _store_oms_signature(self, manifest: Manifest) -> dict[str, str] | None:
        """Sign the model files for OpenSSF model signing and store it; None when a model
        file is itself named ``model.sig`` (where :meth:`get` would write the signature)."""
        model = manifest.model_files
        if any(f.path == OMS_SIGNATURE_NAME for f in model):
            return None
        # The ECDSA P-256 OMS key once `trust init` or `trust rotate` made it; before,
        # the Ed25519 half of the hybrid signing key (what every older model.sig holds).
        oms = oms_key(self.keys)
        key: OmsSigningKey | HybridSigningKey = oms if oms is not None else signing_key(self.keys)
        data = sign_oms(key, manifest.name, [(f.path, f.sha256) for f in model])
        where = oms_signature_key(manifest.artifact_id)
        self.store.put_bytes(
            self.bucket(manifest.tier), where, data, retain_until=self.retain_until(manifest.tier)
        )
        algorithm = OMS_ALGORITHM if oms is not None else "Ed25519"
        return {
            "key": where,
            "sha256": sha256_hex(data),
            "keyid": key.keyid,
            "algorithm": algorithm,
        }

    def oms_signature(self, row: ArtifactRow, manifest: Manifest) -> bytes | None:
        """The artifact's OMS signature, checked; None when its logged put made none.

        Trusted only as the put's outcome in the signed log records it: the stored
        bytes must hash to the sha256 it names, verify under the key it names (the
        ECDSA P-256 OMS key, or for older signatures the Ed25519 half of a hybrid
        signing key; a trust-root key, not compromised before the put was logged)
        and cover exactly the (verified) manifest's model files.
        IntegrityError otherwise.
        """
        found = [
            e
            for e in self.history(row.id, {"artifact.ingested"})
            if isinstance(e.event.details.get("oms_signature"), dict)
        ]
        if not found:
            return None
        logged = found[0]
        ref = logged.event.details["oms_signature"]
        what = f"artifact {row.id}"
        if ref.get("key") != oms_signature_key(row.id):
            raise IntegrityError(f"{what}: log entry {logged.index} names another OMS signature")
        try:
            data = self.store.get_bytes(self.bucket(row.tier), str(ref["key"]), limit=_OMS_LIMIT)
        except NotFoundError:
            raise IntegrityError(f"{what}: the OMS signature is missing from the store") from None
        if not secrets.compare_digest(sha256_hex(data), str(ref.get("sha256", ""))):
            raise IntegrityError(f"{what}: the OMS signature is not the one the log recorded")
        trusted = trusted_keys(trust_root(self.keys))
        pem = oms_verify_pem(
            str(ref.get("keyid", "")),
            parse_iso(logged.event.ts),
            trusted,
            trusted.compromised,
            oms_entries(self.keys),
            what,
        )
        verify_oms_signature(data, pem, [(f.path, f.sha256) for f in manifest.model_files], what)
        return data

    def _amend_duplicate(self, original: ArtifactRow, plan: PutPlan) -> None:
        """Record the new name and the new labels a put of stored content brought."""
        known = self.logged_names().of(original.id, original.name)
        if plan.name not in known.names:
            self.record(NAMED, original.id, original.tier, {"name": plan.name, "via": "put"})
        changed = {k: v for k, v in sorted(plan.labels.items()) if known.labels.get(k) != v}
        if changed:
            self.record(
                LABELED, original.id, original.tier, {"set": changed, "remove": [], "via": "put"}
            )

    def publish(self, sealed: Sealed, *, quarantined: str | None = None) -> PutResult:
        """Write the manifest (the commit point), then the outcome and the catalog rows.

        A sealed artifact without an operation (one sealed outside a put) gets
        its intent recorded here, before the manifest is written. ``quarantined``
        (the reason) indexes the artifact straight into quarantine: the caller has
        recorded the quarantine and written its marker before calling, so no read
        can find it readable at any point.
        """
        manifest, details = sealed.manifest, sealed.details
        op = sealed.op or self.begin("artifact.ingested", manifest.artifact_id, manifest.tier)
        dek = self.dek(manifest.artifact_id, manifest.tier)
        body = manifest.to_bytes(manifest_mac(dek, manifest.body_bytes()))
        del dek
        retain = self.retain_until(manifest.tier)
        self.store.put_bytes(
            self.bucket(manifest.tier),
            manifest_key(manifest.artifact_id),
            body,
            retain_until=retain,
        )
        if retain is not None and self.envelope_retain_until(manifest.artifact_id, manifest.tier):
            # The envelope stays as long as the ciphertext it opens.
            self.store.set_retention(
                self.bucket("envelopes"),
                envelope_key(manifest.artifact_id, manifest.tier),
                retain,
            )
        envelope = self._envelope_bytes(manifest.artifact_id, manifest.tier)
        wrapped = self._parse_envelope(manifest.artifact_id, manifest.tier, envelope)
        kek = f"{wrapped.kek_id}@v{wrapped.kek_version}"
        op.uses(kek, details.get("signed_by"))
        statement = self.store.get_bytes(
            self.bucket(manifest.tier), statement_key(manifest.artifact_id)
        )
        state = object_state(
            manifest.tier, manifest=body, statement=statement, envelope=envelope, kek=kek
        )
        op.details.update(
            name=manifest.name,
            tier=manifest.tier,
            content_digest=manifest.content_digest,
            manifest_sha256=hashlib.sha256(body).hexdigest(),
            files=len(manifest.files),
            bytes=manifest.total_size,
            labels=dict(sorted(manifest.labels.items())),
            **details,
            state=state,
        )
        if quarantined is not None:
            op.details["quarantined"] = quarantined
        event = self.finish(op)
        tier = "quarantine" if quarantined is not None else manifest.tier
        row = self._index(manifest, body, event.ts, details.get("signed_by"), tier)
        return PutResult(row, quarantined=quarantined)

    def _index(
        self,
        manifest: Manifest,
        body: bytes,
        since: str,
        signed_by: str | None,
        tier: str | None = None,
    ) -> ArtifactRow:
        """Insert the catalog rows of a committed artifact (``tier``: where the catalog
        places it, the manifest's tier unless it is quarantined; the bucket stays)."""
        wrapped = self.load_envelope(manifest.artifact_id, manifest.tier)
        retain = self.retain_until_of(manifest.tier, manifest.artifact_id)
        placed = tier or manifest.tier
        with self.catalog.transaction() as conn:
            self.catalog.add_artifact(
                conn,
                {**artifact_row(manifest, body, signed_by), "tier": placed},
                [file_row(manifest.artifact_id, i, f) for i, f in enumerate(manifest.files)],
                {
                    "artifact_id": manifest.artifact_id,
                    "tier": placed,
                    "bucket": self.bucket(manifest.tier),
                    "since": since,
                    "retain_until": retain,
                    "legal_hold": 0,
                    "generation": 0,
                },
                {
                    "artifact_id": manifest.artifact_id,
                    "tier": manifest.tier,
                    "kek_id": wrapped.kek_id,
                    "kek_version": wrapped.kek_version,
                    "object_key": envelope_key(manifest.artifact_id, manifest.tier),
                },
            )
        return self.catalog.artifact(manifest.artifact_id)

    def retain_until_of(self, tier: str, artifact_id: str) -> str | None:
        """Retention date of an artifact's manifest, as stored by the object store."""
        if not self.settings.tiers[tier].object_lock:
            return None
        found = self.store.retention(self.bucket(tier), manifest_key(artifact_id))
        return iso_seconds(found[1]) if found else None

    def discard(self, artifact_id: str, tier: str) -> int:
        """Remove the uncommitted objects of an artifact; returns how many.

        A store credential that may not delete (the ingester's) leaves them to ``gc``.
        """
        removed = 0
        try:
            objects = list(self.store.list(self.bucket(tier), artifact_prefix(artifact_id)))
        except StoreRoleDeniedError:
            objects = []
        for obj in objects:
            with contextlib.suppress(RetentionError, NotFoundError, StoreRoleDeniedError):
                self.store.remove(obj.bucket, obj.key)
                removed += 1
        with contextlib.suppress(NotFoundError, StoreRoleDeniedError):
            self.store.remove(self.bucket("envelopes"), envelope_key(artifact_id, tier))
            removed += 1
        return removed

    # -- read ----------------------------------------------------------------

    def resolve(self, artifact_id: str) -> ArtifactRow:
        """An artifact by id, unique id prefix or ``NAME@ALIAS``.

        An alias is resolved from the signed log (:meth:`resolve_alias`), never from a
        catalog row; an ambiguous prefix is an AmbiguousIdError listing the candidates.
        """
        ref = artifact_id.strip()
        if is_alias(ref):
            return self.catalog.artifact(self.resolve_alias(ref).artifact_id)
        return self.catalog.artifact(ref)

    def logged_names(self) -> NameIndex:
        """Names, labels and aliases of every artifact, folded from the signed log.

        The entries are found through the catalog's index of the log (first brought up to
        the current signed checkpoint) and each one is proved included in that
        checkpoint: an edited index row is an IntegrityError, never a moved alias.
        """
        found = self._proved_entries(NAME_KINDS, -1, self.tlog.checkpoint())
        return fold((e.index, e.event) for e in found)

    def _proved_entries(
        self, kinds: Sequence[str], after: int, signed: SignedCheckpoint
    ) -> list[LoggedEvent]:
        """The log's entries of ``kinds`` past index ``after``, up to ``signed``'s size.

        They are found through the catalog's index (first brought up to that size) and
        each one is proved included in the signed checkpoint: a forged, edited or dropped
        index row is an IntegrityError.
        """
        size = signed.checkpoint.size
        self._catch_up_index(size)
        found: list[LoggedEvent] = []
        try:
            for index, text in self.catalog.log_of_kinds(kinds, after, size):
                entry = text.encode()
                found.append(LoggedEvent(index, Event.parse(entry), entry))
            self.tlog.check_included([(e.index, e.entry) for e in found], signed)
        except (IntegrityError, InvalidInputError) as exc:
            raise IntegrityError(
                f"the catalog's index of the log was tampered with: {exc.message}"
            ) from None
        return found

    def resolve_alias(self, ref: str) -> AliasTarget:
        """Where ``NAME@ALIAS`` points, as the signed log says; AliasNotFoundError if nowhere."""
        name, alias = parse_alias(ref)
        key = f"{name}@{alias}"
        target = self.logged_names().aliases.get(key)
        if target is None:
            raise AliasNotFoundError(
                f"alias {key} points at no artifact (set one with `weightvault alias set {key} ID`)"
            )
        return target

    def effective_labels(self, artifact_id: str, base: dict[str, str]) -> dict[str, str]:
        """``base`` (the labels of the put, from its manifest) after every logged amendment."""
        labels = dict(sorted(base.items()))
        for logged in self.history(artifact_id, {LABELED}):
            labels = apply_amendment(labels, logged.event.details)
        return labels

    def _settled(
        self, artifact_id: str, tier: str, state: LoggedState, envelope: bytes
    ) -> LoggedState:
        """``state``, or a fresher one when ``envelope`` is a rotation's rewrap still on
        its way into the log.

        A rotation writes a batch of rewrapped envelopes, then records their digests
        in the log (``envelopes.rewrapped``): a read in between finds an envelope the
        log does not record yet. Only one of this artifact and tier, under a newer
        version of the KEK the log records, can be that; for it the log is read again
        until it records it, for :data:`REWRAP_SETTLE_S` at most. The check that
        follows still accepts only what the log records (no other envelope waits).
        """
        latest = state.latest
        if (
            latest is None
            or latest.tier != tier
            or latest.digest("envelope") == sha256_hex(envelope)
        ):
            return state
        try:
            wrapped = self._parse_envelope(artifact_id, tier, envelope)
        except VaultError:
            return state
        recorded = latest.state.get("envelope")
        kek = str(recorded.get("kek")) if isinstance(recorded, dict) else ""
        key_id, _, version = kek.partition("@v")
        if wrapped.kek_id != key_id or not version.isdigit():
            return state
        if wrapped.kek_version <= int(version):
            return state
        digest = sha256_hex(envelope)
        deadline = time.monotonic() + REWRAP_SETTLE_S
        while time.monotonic() < deadline:
            time.sleep(0.25)
            state = self.logged_state(artifact_id)
            if state.latest is not None and state.latest.digest("envelope") == digest:
                break
        return state

    def load_manifest(
        self,
        artifact_id: str,
        tier: str,
        state: LoggedState | None = None,
        *,
        op: Operation | None = None,
    ) -> tuple[Manifest, bytes]:
        """Fetch and authenticate a manifest; returns it and the DEK.

        The manifest and envelope bytes must be the latest state the log records
        (``state``, else looked up): an older or other object is a RollbackError.
        ``op`` records the key version that unwrapped the DEK (its outcome's key ids).
        """
        data = self.store.get_bytes(self.bucket(tier), manifest_key(artifact_id))
        envelope = self._envelope_bytes(artifact_id, tier)
        if state is None:
            state = self.logged_state(artifact_id)
        state = self._settled(artifact_id, tier, state, envelope)
        state.check(tier, manifest=data, envelope=envelope)
        manifest, mac = Manifest.parse(data)
        if manifest.artifact_id != artifact_id:
            raise IntegrityError(f"manifest at {artifact_id} belongs to {manifest.artifact_id}")
        wrapped = self._parse_envelope(artifact_id, tier, envelope)
        dek = self._unwrap(wrapped)
        if op is not None:
            op.uses(f"{wrapped.kek_id}@v{wrapped.kek_version}")
        verify_manifest_mac(dek, manifest.body_bytes(), mac)
        return manifest, dek

    def logged_quarantine(self, artifact_id: str) -> LoggedEvent | None:
        """The log entry that quarantined the artifact, when the signed log's latest
        quarantine or release of it is a quarantine; None when it is not quarantined."""
        found = self.history(artifact_id, _QUARANTINE_KINDS)
        if found and found[-1].event.kind == "artifact.quarantined":
            return found[-1]
        return None

    def _refuse_if_logged_quarantined(self, row: ArtifactRow) -> None:
        """The log, not the catalog row, says whether reads are allowed."""
        logged = self.logged_quarantine(row.id)
        if logged is not None:
            raise EvidenceMismatchError(
                f"artifact {row.id} is quarantined (log entry {logged.index}) although the "
                "catalog says otherwise: no reads until released"
            )

    def readable(self, artifact_id: str, op: Operation) -> tuple[ArtifactRow, Manifest, bytes]:
        """Row, verified manifest and DEK of an artifact ``op`` (logged) reads, with every
        check :meth:`get` makes (quarantine, log state, manifest MAC, signed statement)."""
        return self._readable(artifact_id, None, op)

    def _readable(
        self, artifact_id: str, break_glass: LoggedEvent | None, op: Operation
    ) -> tuple[ArtifactRow, Manifest, bytes]:
        """Row (its tier: where the objects are), manifest and DEK of a readable artifact.

        ``break_glass`` is the quarantine entry a caller authorized reading
        through; it must still be the log's latest quarantine of the artifact.
        ``op`` (the read or verify) records the key version that unwrapped the DEK.
        """
        row = self.resolve(artifact_id)
        if break_glass is None:
            if row.tier == "quarantine":
                raise QuarantinedError(f"artifact {row.id} is quarantined: no reads until released")
            self._refuse_if_logged_quarantined(row)
        state = self.logged_state(row.id)
        if break_glass is not None:
            current = self.logged_quarantine(row.id)
            if current is None or current.index != break_glass.index:
                raise BreakGlassError(
                    f"artifact {row.id}: the quarantine at log entry {break_glass.index} "
                    "is no longer the one in force"
                )
            # Quarantine leaves the objects in the tier the log last recorded them in.
            row = replace(row, tier=state.require().tier)
        try:
            manifest, dek = self.load_manifest(row.id, row.tier, state, op=op)
        except RollbackError:
            raise
        except IntegrityError as exc:
            raise IntegrityError(f"artifact {row.id}: {exc.message}") from None
        except NotFoundError:
            raise IntegrityError(f"artifact {row.id}: manifest or envelope is missing") from None
        try:
            self.verify_statement(row.id, row.tier, manifest, state)
        except RollbackError:
            del dek
            raise
        except IntegrityError as exc:
            del dek
            raise IntegrityError(f"artifact {row.id}: {exc.message}") from None
        except NotFoundError:
            raise IntegrityError(f"artifact {row.id}: signed statement is missing") from None
        return row, manifest, dek

    def verify_statement(
        self,
        artifact_id: str,
        tier: str,
        manifest: Manifest,
        state: LoggedState | None = None,
    ) -> dict[str, Any]:
        """Verify the artifact's signed in-toto statement against its manifest.

        The statement must be the one the log's latest state records, and a
        compromised signer is judged at the time the log first recorded it, never
        at the time the statement claims.
        """
        data = self.store.get_bytes(self.bucket(tier), statement_key(artifact_id))
        if state is None:
            state = self.logged_state(artifact_id)
        state.check(tier, statement=data)
        signed_at = state.statement_logged_at(data)
        return verify_statement(
            data, manifest, trusted_keys(trust_root(self.keys)), signed_at=signed_at
        )

    def decrypt_file(
        self,
        row: ArtifactRow,
        entry: FileEntry,
        dek: bytes,
        sink: IO[bytes] | None,
        progress: TransferProgress | None = None,
    ) -> tuple[str, int]:
        """Decrypt one file of a catalogued artifact (see :func:`decrypt_object`)."""
        with telemetry.file_span(row.id, entry.path, "get", row.tier):
            digest, size = decrypt_object(
                self.store, self.bucket(row.tier), row.id, entry, dek, sink, progress
            )
        telemetry.count_bytes("out", row.tier, size)
        return digest, size

    def artifact_operation(
        self, kind: str, artifact_id: str, details: dict[str, Any] | None = None
    ) -> contextlib.AbstractContextManager[Operation]:
        """:meth:`operation` on an artifact, named as the catalog resolves ``artifact_id``.

        An id the catalog does not know is logged as requested (and the body's
        NotFoundError recorded as the outcome).
        """
        try:
            row = self.resolve(artifact_id)
        except (NotFoundError, InvalidInputError):
            requested = {"requested": artifact_id[:100], **(details or {})}
            return self.operation(kind, None, None, requested)
        return self.operation(kind, row.id, row.tier, details)

    def verify(
        self,
        artifact_id: str,
        progress: TransferProgress | None = None,
        *,
        in_quarantine: bool = False,
    ) -> VerifyReport:
        """Decrypt and hash every file without writing plaintext anywhere.

        ``in_quarantine``: the artifact must be quarantined in the signed log; its objects
        are checked where the log records them (containment verifies a recovery so).
        """
        with self.artifact_operation("artifact.verified", artifact_id) as op:
            held: LoggedEvent | None = None
            if in_quarantine:
                held = self.logged_quarantine(op.artifact_id or "")
                if held is None:
                    raise ConflictError(
                        f"artifact {op.artifact_id or artifact_id} is not quarantined in the log"
                    )
                op.details["quarantine_index"] = held.index
            row, manifest, dek = self._readable(artifact_id, held, op)
            if progress is not None:
                progress.start(manifest.total_size)
            total = 0
            try:
                for entry in manifest.files:
                    _, n = self.decrypt_file(row, entry, dek, None, progress)
                    total += n
            finally:
                del dek
            op.details.update(files=len(manifest.files), bytes=total)
        return VerifyReport(row.id, len(manifest.files), total, manifest.content_digest)

    def get(
        self, artifact_id: str, out: Path, progress: TransferProgress | None = None
    ) -> Manifest:
        """Download, decrypt and verify into ``out``, renamed into place only when all is good.

        The read is logged before any plaintext is written: no log, no plaintext.
        """
        output = {"output": self.private(str(out.absolute()))}
        with self.artifact_operation("artifact.read", artifact_id, output) as op:
            row, manifest, dek = self._readable(artifact_id, None, op)
            try:
                signature = self.oms_signature(row, manifest)
            except BaseException:
                del dek
                raise
            extra = {OMS_SIGNATURE_NAME: signature} if signature is not None else {}
            self._write_out(row, manifest, dek, out, progress, extra)
            op.details["files"] = len(manifest.model_files)
            op.details["oms_signature"] = signature is not None
        return manifest

    @contextlib.contextmanager
    def open_file(self, artifact_id: str, file: str) -> Iterator[StoredFile]:
        """Random access into model file ``file``: a :class:`StoredFile` to read ranges
        and safetensors tensors from, fetching only the chunks that cover them.

        One read of the artifact like :meth:`get`: the same resolution, quarantine,
        authorization, signed-log and manifest checks, logged as ``artifact.read``
        with the file named in the intent (recorded before any plaintext) and what was
        read (ranges and tensors, capped) and how many bytes in the outcome. Many reads
        inside one ``with`` pay the checks and the log once. NotFoundError for a file
        the artifact does not have.
        """
        details: dict[str, Any] = {"file": file[:200]}
        with self.artifact_operation("artifact.read", artifact_id, details) as op:
            row, manifest, dek = self._readable(artifact_id, None, op)
            reader: StoredFile | None = None
            try:
                entry = _ranged.find_entry(manifest, file)
                reader = StoredFile(self.store, self.bucket(row.tier), row.id, entry, dek)
                with telemetry.file_span(row.id, entry.path, "get", row.tier):
                    yield reader
            finally:
                del dek
                if reader is not None:
                    reader.close()
                    telemetry.count_bytes("out", row.tier, reader.bytes_read)
                    op.details.update(
                        reads=reader.reads[:_LOGGED_READS],
                        read_count=len(reader.reads),
                        bytes=reader.bytes_read,
                    )

    def read_range(self, artifact_id: str, file: str, start: int, end: int | None) -> bytes:
        """Plaintext bytes ``[start, end)`` of model file ``file`` (``end`` None: to its end).

        One logged read (:meth:`open_file`); nothing is returned on any error.
        """
        sink = _ranged.ByteSink()
        self.read_range_into(artifact_id, file, start, end, sink)
        return bytes(sink.data)

    def read_range_into(
        self,
        artifact_id: str,
        file: str,
        start: int,
        end: int | None,
        dst: IO[bytes] | Any,
    ) -> int:
        """Decrypt bytes ``[start, end)`` of model file ``file`` into ``dst``; the count.

        One logged read (:meth:`open_file`). Only the ciphertext chunks covering the
        range are fetched and each is authenticated before its plaintext reaches
        ``dst`` (which may hold a valid prefix when IntegrityError is raised).
        InvalidInputError for a range outside the file.
        """
        with self.open_file(artifact_id, file) as reader:
            return reader.read_into(start, end, dst)

    def read_tensor(self, artifact_id: str, file: str, name: str) -> tuple[TensorRead, bytes]:
        """One tensor of a stored safetensors file: where it lies, and its bytes.

        One logged read (:meth:`open_file`); nothing is returned on any error.
        """
        sink = _ranged.ByteSink()
        where = self.read_tensor_into(artifact_id, file, name, sink)
        return where, bytes(sink.data)

    def read_tensor_into(
        self, artifact_id: str, file: str, name: str, dst: IO[bytes] | Any
    ) -> TensorRead:
        """Decrypt tensor ``name`` of safetensors file ``file`` into ``dst``.

        The header is read through authenticated chunks and checked by the strict
        safetensors parser against the manifest's file size (see
        :mod:`weightvault.artifacts._ranged`); then only the tensor's chunks are
        fetched. One logged read (:meth:`open_file`). NotFoundError for an unknown
        tensor (naming a few), InvalidInputError for a file that is not valid
        safetensors.
        """
        with self.open_file(artifact_id, file) as reader:
            return reader.read_tensor_into(name, dst)

    def get_quarantined(
        self,
        artifact_id: str,
        out: Path,
        authorize: Callable[[LoggedEvent], dict[str, Any]],
        details: dict[str, Any],
        progress: TransferProgress | None = None,
    ) -> Manifest:
        """A break-glass read of a quarantined artifact, logged as ``artifact.break_glass_read``.

        ``authorize`` gets the log's quarantine entry, raises to refuse
        (BreakGlassError) and returns what the outcome records (who allowed
        it). The intent is logged before it runs; no plaintext before both.
        """
        logged = {"output": self.private(str(out.absolute())), **details}
        with self.artifact_operation(BREAK_GLASS_READ, artifact_id, logged) as op:
            quarantine = (
                self.logged_quarantine(op.artifact_id) if op.artifact_id is not None else None
            )
            if quarantine is None:
                raise BreakGlassError(
                    f"artifact {self.resolve(artifact_id).id} is not quarantined in the log: "
                    "read it with get, break-glass is for quarantined artifacts"
                )
            op.details["quarantine_index"] = quarantine.index
            op.details.update(authorize(quarantine))
            row, manifest, dek = self._readable(quarantine.event.artifact_id or "", quarantine, op)
            self._write_out(row, manifest, dek, out, progress)
            op.details["files"] = len(manifest.model_files)
        return manifest

    def _write_out(
        self,
        row: ArtifactRow,
        manifest: Manifest,
        dek: bytes,
        out: Path,
        progress: TransferProgress | None,
        extra: dict[str, bytes] | None = None,
    ) -> None:
        """Decrypt every file into a staging directory renamed to ``out`` when all is good.

        ``extra``: files the vault writes beside them (name -> bytes), e.g. ``model.sig``.
        """
        if progress is not None:
            progress.start(manifest.total_size)
        try:
            with staged_output(out, self.staging_registry) as staging:
                for entry in manifest.model_files:
                    target = (staging / entry.path).resolve()
                    if not target.is_relative_to(staging.resolve()):
                        raise IntegrityError(f"artifact {row.id}: unsafe path {entry.path!r}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with target.open("wb") as fh:
                        self.decrypt_file(row, entry, dek, fh, progress)
                for name, data in (extra or {}).items():
                    (staging / name).write_bytes(data)
        except OSError as exc:
            raise local_write_error(exc, out) from None
        finally:
            del dek

    def show(self, artifact_id: str) -> dict[str, Any]:
        """What the catalog indexes of an artifact, and what the signed log and its verified
        statement say: names, labels, aliases, provenance, history (no key material)."""
        row = self.resolve(artifact_id)
        names = self.logged_names().of(row.id, row.name)
        provenance, manifest_labels = self._provenance(row)
        labels = names.labels
        if manifest_labels is not None:
            labels = self.effective_labels(row.id, manifest_labels)
        history = [
            {
                "index": e.index,
                "ts": e.event.ts,
                "kind": e.event.kind,
                "by": e.event.actor,
                "tier": e.event.tier,
            }
            for e in self.history(row.id)
        ]
        return {
            "artifact": row.__dict__,
            "names": names.names,
            "labels": labels,
            "aliases": names.aliases,
            "provenance": provenance,
            "files": self.catalog.files_of(row.id),
            "placement": self.catalog.placement(row.id),
            "envelopes": self.catalog.envelopes_of(row.id),
            "events": self.catalog.events_of(row.id),
            "history": history,
            "damage": self.catalog.damage_of(row.id),
        }

    def _provenance(self, row: ArtifactRow) -> tuple[dict[str, Any], dict[str, str] | None]:
        """What the artifact's verified statement says of its origin, and its put's labels.

        The manifest and statement must be the bytes the log's latest state records (no
        DEK is unwrapped: the logged digest authenticates the manifest); anything that
        does not verify is reported as not verified, with the reason.
        """
        try:
            state = self.logged_state(row.id)
            tier = state.require().tier
            data = self.store.get_bytes(self.bucket(tier), manifest_key(row.id))
            state.check(tier, manifest=data)
            manifest, _mac = Manifest.parse(data)
            statement = self.verify_statement(row.id, tier, manifest, state)
        except VaultError as exc:
            return {"verified": False, "reason": one_line(exc.message)}, None
        build = statement.get("predicate", {}).get("buildDefinition", {})
        external = build.get("externalParameters", {})
        extra = external.get("extra", {}) if isinstance(external.get("extra"), dict) else {}
        source = external.get("source", {}) if isinstance(external.get("source"), dict) else {}
        datasets = [
            {"name": d.get("name"), "sha256": (d.get("digest") or {}).get("sha256")}
            for d in build.get("resolvedDependencies", [])
            if isinstance(d, dict) and (d.get("annotations") or {}).get("kind") == "dataset"
        ]
        out: dict[str, Any] = {
            "verified": True,
            "signed_by": row.signed_by,
            "git_commit": source.get("commit"),
            "git_dirty": source.get("dirty"),
            "repository": source.get("repository"),
            "datasets": datasets,
            "training_run": external.get("trainingRunId"),
            "creator": external.get("creator"),
            "parent": (external.get("parent") or {}).get("name"),
            "environment": build.get("internalParameters", {}).get("environment", {}),
            "missing": list(extra.get("missing", [])),
        }
        return out, dict(manifest.labels)

    # -- maintenance ---------------------------------------------------------

    @property
    def staging_registry(self) -> Path:
        """Where :meth:`get` lists its staging directories (in the 0700 vault home)."""
        return self.settings.home / "staging"

    def sweep_staging(self, *, dry_run: bool = False) -> list[str]:
        """Remove the staging (unverified plaintext) of reads whose process is gone."""
        if dry_run:
            return []
        return [f"staging {p}" for p in sweep_stale_staging(self.staging_registry)]

    def committed_ids(self, tier: str) -> set[str]:
        """Artifact ids with a manifest in a tier bucket."""
        ids = set()
        for obj in self.store.list(self.bucket(tier), ARTIFACTS_PREFIX):
            found = parse_artifact_key(obj.key)
            if found is not None and found.kind == "manifest":
                ids.add(found.artifact_id)
        return ids

    def gc(self, grace: timedelta | None = None, *, dry_run: bool = False) -> list[str]:
        """Remove uncommitted artifacts' objects and abandoned uploads older than ``grace``.

        Nothing of an artifact that still has a retained object version (COMPLIANCE
        retention or legal hold, in a tier bucket or among its envelopes) is ever
        removed: a plain DELETE hides a locked manifest behind a delete marker,
        and the envelopes must outlive the ciphertext they open. Source copies
        left by a promotion that crashed after its catalog move are removed too.
        """
        grace = timedelta(minutes=self.settings.gc_grace_minutes) if grace is None else grace
        if dry_run:
            return self._gc(grace, dry_run=True)
        with self.operation("store.gc", details={"grace_seconds": grace.total_seconds()}) as op:
            removed = self._gc(grace, dry_run=False)
            op.details["removed"] = len(removed)
        return removed

    def _gc(self, grace: timedelta, *, dry_run: bool) -> list[str]:
        now = self.clock()
        cutoff = now - grace
        removed: list[str] = []
        committed = {tier: self.committed_ids(tier) for tier in TIERS}
        retained: dict[str, bool] = {}

        def keep(artifact_id: str) -> bool:
            if artifact_id not in retained:
                retained[artifact_id] = self._retained(artifact_id, now)
                if retained[artifact_id]:
                    log.info("gc.retained", artifact_id=artifact_id)
            return retained[artifact_id]

        for tier in TIERS:
            for obj in self.store.list(self.bucket(tier), ARTIFACTS_PREFIX):
                found = parse_artifact_key(obj.key)
                if found is not None and found.artifact_id in committed[tier]:
                    continue
                if obj.last_modified and obj.last_modified > cutoff:
                    continue
                if found is not None and keep(found.artifact_id):
                    continue
                if not dry_run:
                    try:
                        self.store.remove(obj.bucket, obj.key)
                    except RetentionError:
                        continue
                removed.append(f"{obj.bucket}/{obj.key}")
            removed += self._abort_stale_uploads(tier, cutoff, dry_run=dry_run)
        removed += self._promotion_leftovers(committed, now, dry_run=dry_run)
        removed += self._gc_envelopes(committed, cutoff, keep, dry_run=dry_run)
        removed += self.sweep_staging(dry_run=dry_run)
        return removed

    def _locked_versions_under(self, bucket: str, prefix: str, now: datetime) -> bool:
        """Whether any version under ``prefix`` is retained past ``now`` or on legal hold."""
        for version in self.store.list(bucket, prefix, versions=True):
            if version.delete_marker:
                continue
            found = self.store.retention(bucket, version.key, version.version_id)
            if found is not None and found[1] > now:
                return True
            if self.store.legal_hold(bucket, version.key, version.version_id):
                return True
        return False

    def _retained(self, artifact_id: str, now: datetime) -> bool:
        """Whether any object version of the artifact, in any bucket, is still retained."""
        for tier in TIERS:
            if self.settings.tiers[tier].object_lock and self._locked_versions_under(
                self.bucket(tier), artifact_prefix(artifact_id), now
            ):
                return True
        return self._envelopes_lock() and self._locked_versions_under(
            self.bucket("envelopes"), envelope_prefix(artifact_id), now
        )

    def _gc_envelopes(
        self,
        committed: dict[str, set[str]],
        cutoff: datetime,
        keep: Callable[[str], bool],
        *,
        dry_run: bool,
    ) -> list[str]:
        """Remove envelopes of uncommitted artifacts, and source envelopes of indexed moves."""
        every = set().union(*committed.values())
        removed: list[str] = []
        for obj in self.store.list(self.bucket("envelopes"), ENVELOPES_PREFIX):
            envelope = parse_envelope_key(obj.key)
            if obj.last_modified and obj.last_modified > cutoff:
                continue
            if (
                envelope is not None
                and envelope.artifact_id in every
                and not (
                    envelope.kind == "tier"
                    and self._left_behind(envelope.artifact_id, envelope.tier, committed)
                )
            ):
                continue
            if envelope is not None and keep(envelope.artifact_id):
                continue
            if not dry_run:
                self.store.remove(obj.bucket, obj.key)
            removed.append(f"{obj.bucket}/{obj.key}")
        return removed

    def _left_behind(
        self, artifact_id: str, tier: str | None, committed: dict[str, set[str]]
    ) -> bool:
        """Whether a tier envelope is the source envelope of an indexed promotion."""
        order = ("hot", "warm", "cold")
        if tier not in order[:2] or artifact_id in committed[tier]:
            return False
        try:
            placement = self.catalog.placement(artifact_id)
        except NotFoundError:
            return False
        current = placement["tier"]
        return (
            placement["pending"] is None
            and current in order
            and order.index(current) > order.index(tier)
            and artifact_id in committed[current]
        )

    def _promotion_leftovers(
        self, committed: dict[str, set[str]], now: datetime, *, dry_run: bool
    ) -> list[str]:
        """Remove the source copy of artifacts whose promotion was indexed but not cleaned up.

        Only an artifact the catalog places, with no claim pending, in a later tier
        that holds its manifest: the move is past its commit point and indexed.
        """
        removed: list[str] = []
        order = ("hot", "warm", "cold")
        for artifact_id in sorted(committed["hot"] | committed["warm"]):
            try:
                placement = self.catalog.placement(artifact_id)
            except NotFoundError:
                continue
            current = placement["tier"]
            if placement["pending"] is not None or current not in order[1:]:
                continue
            if artifact_id not in committed[current]:
                continue
            for tier in order[: order.index(current)]:
                bucket, prefix = self.bucket(tier), artifact_prefix(artifact_id)
                if artifact_id not in committed[tier]:
                    continue
                if self.settings.tiers[tier].object_lock and self._locked_versions_under(
                    bucket, prefix, now
                ):
                    continue
                keys = [manifest_key(artifact_id)]  # the commit point goes first
                keys += sorted(o.key for o in self.store.list(bucket, prefix) if o.key != keys[0])
                for key in keys:
                    if not dry_run:
                        with contextlib.suppress(NotFoundError, RetentionError):
                            self.store.remove(bucket, key)
                    removed.append(f"{bucket}/{key}")
                envelope = envelope_key(artifact_id, tier)
                if self.store.exists(self.bucket("envelopes"), envelope):
                    if not dry_run:
                        self.store.remove(self.bucket("envelopes"), envelope)
                    removed.append(f"{self.bucket('envelopes')}/{envelope}")
                log.info("gc.promotion_leftover", artifact_id=artifact_id, tier=tier)
        return removed

    def _abort_stale_uploads(self, tier: str, cutoff: datetime, *, dry_run: bool) -> list[str]:
        """Abort multipart uploads started before ``cutoff`` that never completed.

        A put killed mid-file leaves one; its parts take space but are invisible to
        listings. A commit needs every upload complete, so an incomplete one is never
        part of a committed artifact (a crashed attempt of a re-run put included).
        """
        aborted: list[str] = []
        for upload in self.store.list_incomplete_uploads(self.bucket(tier), ARTIFACTS_PREFIX):
            if upload.initiated and upload.initiated > cutoff:
                continue
            if not dry_run:
                with contextlib.suppress(NotFoundError):
                    self.store.abort_incomplete_upload(upload.bucket, upload.key, upload.upload_id)
            aborted.append(f"{upload.bucket}/{upload.key} (incomplete upload {upload.upload_id})")
        return aborted


def artifact_row(manifest: Manifest, body: bytes, signed_by: str | None) -> dict[str, Any]:
    """Catalog row of a manifest."""
    return {
        "id": manifest.artifact_id,
        "name": manifest.name,
        "content_digest": manifest.content_digest,
        "manifest_sha256": hashlib.sha256(body).hexdigest(),
        "created_at": manifest.created_at,
        "creator": manifest.creator,
        "tier": manifest.tier,
        "file_count": len(manifest.files),
        "total_size": manifest.total_size,
        "signed_by": signed_by,
        "validation_status": None,
        "validation_sha256": None,
    }


def file_row(artifact_id: str, idx: int, entry: FileEntry) -> dict[str, Any]:
    """Catalog row of one file."""
    return {
        "artifact_id": artifact_id,
        "idx": idx,
        "path": entry.path,
        "size": entry.size,
        "sha256": entry.sha256,
        "ciphertext_size": entry.ciphertext_size,
        "object_key": entry.object_key,
    }


__all__ = [
    "Operation",
    "PutPlan",
    "PutResult",
    "Sealed",
    "SourceFile",
    "Vault",
    "VerifyReport",
]
