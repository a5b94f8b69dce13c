"""Key rotation and compromise handling that never rewrites ciphertext.

A tier KEK rotation creates a new KEK version and *rewraps* every envelope on
the old versions: the envelope object (``envelopes/<id>/<tier>.json``, a DEK
wrapped under a KEK version) is read, unwrapped and wrapped again under the
new version. The DEK does not change, so no ciphertext object is touched,
which is what makes rotation work on write-once cold storage.

This module is the one orchestration of a rotation run. :func:`rotate` (the
CLI's ``keys rotate``) runs the steps below in a row; the ``rotate-keys``
flow runs each as a Prefect task (``tasks/key_tasks.py``), adding only
retries, a report and events. Every step takes the vault and ids or
immutable values, and is idempotent: a run killed anywhere converges when
run again.

1. :func:`find_due` finds the keys past or near the end of their lifetime
   (:func:`weightvault.keys._lifetimes.is_due`), plus forced tiers and tiers whose
   last rotation did not finish (a decrypt-only version still exists);
   :func:`tiers_due` and :func:`signing_due` read what it found.
2. :func:`start_rotation` creates the new KEK version under the keystore
   lock, or, when a rotation of the tier is unfinished, returns the version
   that rotation created: a second new version is never made on resume.
3. :func:`plan_rewrap` lists, from the catalog, the envelopes still on an
   old version (:func:`pending_envelopes`) and cuts them into batches;
   :func:`rewrap` rewraps one batch with a thread pool (the minio client is
   thread-safe) and updates the catalog in one transaction. An envelope
   object already on the new version is skipped (a crash between the object
   write and the catalog update is repaired).
4. :func:`retire_drained` moves an old version to ``retired`` once the
   catalog has no envelope on it *and* a scan of the envelope bucket finds
   none either (envelopes of puts not yet committed are rewrapped first).
5. :func:`verify_sample` decrypts and hashes a few rotated artifacts that
   are not quarantined. It runs once the keys are in their final state, so a
   damaged artifact in the sample fails the run but never leaves the tier
   half-rotated.
6. :func:`rotate_signing` makes a new signing key version when it is due
   (once: a retry finds it made), :func:`publish_trust_root` publishes the
   public signing keys.
7. :func:`repair_escrow` escrows cold artifacts whose escrow was deferred.
8. :func:`record_run` writes the run's audit event.

Compromised versions are never touched by rotation: :func:`compromise_key`
marks them, and :mod:`weightvault.lifecycle.rekey` re-encrypts or rewraps what they
protect. This module holds no key material beyond the DEK of the envelope
being rewrapped, which is dropped at once; nothing it returns or logs holds
any.
"""

from __future__ import annotations

import random
import re
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from weightvault._json import canonical_json
from weightvault.artifacts import BOOTSTRAP_PURPOSE, REWRAP_KIND, Vault, sha256_hex
from weightvault.config import TIERS
from weightvault.errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    NotFoundError,
    QuarantinedError,
    VaultError,
)
from weightvault.keys import (
    KeyProvider,
    KeyRecord,
    KeyState,
    LifetimePolicy,
    WrappedKey,
    expires_at,
    is_due,
    load_lifetime_policy,
    plan_key,
)
from weightvault.lifecycle.escrow import escrow_all_cold
from weightvault.lifecycle.evidence import sign_record
from weightvault.lifecycle.trust import refresh_root
from weightvault.logs import get_logger
from weightvault.provenance import (
    OMS_KEY_ID,
    SIGNING_KEY_ID,
    rotate_oms_key,
    rotate_signing_key,
    trust_root,
)
from weightvault.store.layout import ENVELOPES_PREFIX, envelope_key, parse_envelope_key

if TYPE_CHECKING:
    from weightvault.keys import KeyInventoryRow

log = get_logger("weightvault.lifecycle.rotation")

_T = TypeVar("_T")

KEK_TIERS: tuple[str, ...] = tuple(TIERS)
TRUST_ROOT_KEY = "trust/root.json"
DEFAULT_BATCH = 500
REWRAPPED = REWRAP_KIND
# Envelope digests per log entry: c2sp entry bundles hold entries of at most 64 KiB.
REWRAP_ENTRY_SIZE = 256
DEFAULT_WORKERS = 16
_KEY_REF = re.compile(r"^(?P<id>[a-z0-9][a-z0-9._-]{0,63})(?:@v(?P<version>[0-9]{1,9}))?$")
# Purposes the lifetime policy knows, by keystore purpose.
KEY_TYPES = {"kek": "kek", "signing": "signing", "escrow_kem": "escrow_kem", "token": "token"}


@runtime_checkable
class RotatingKeys(KeyProvider, Protocol):
    """What rotation needs from a keystore beyond :class:`KeyProvider`."""

    def get(self, key_id: str, version: int) -> KeyRecord:
        """One key version."""
        ...

    def begin_kek_rotation(self, tier: str, *, new_version: bool) -> tuple[KeyRecord, bool]:
        """Find or create the version a rotation rewraps to."""
        ...

    def rotate_kek(self, tier: str) -> KeyRecord:
        """Create a new KEK version."""
        ...

    def wrap_with(self, kek: KeyRecord, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        """Wrap under a given (active) KEK version."""
        ...

    def reserve_wraps(self, kek: KeyRecord, count: int) -> None:
        """Count ``count`` wraps under ``kek`` before they are done."""
        ...

    def set_state(
        self, key_id: str, version: int, state: KeyState, *, since: datetime | None = None
    ) -> KeyRecord:
        """Move a key version to another state (``since``: when a compromise began)."""
        ...


def rotating_keys(vault: Vault) -> RotatingKeys:
    """The vault's keystore as a :class:`RotatingKeys`; ConfigError if it cannot rotate."""
    keys = vault.keys
    if not isinstance(keys, RotatingKeys):
        raise ConfigError(f"the key provider {type(keys).__name__} does not support rotation")
    return keys


def kek_id(tier: str) -> str:
    """The KEK id of a tier."""
    return f"kek-{tier}"


def policy_tier(tier: str | None) -> str:
    """The lifetime-policy tier of a key: its own for hot/warm/cold, cold otherwise.

    Keys without a tier (signing) and the quarantine KEK are planned as cold,
    as :func:`weightvault.keys.policy_lifetime` does when it sets expiries.
    """
    return tier if tier in {"hot", "warm", "cold"} else "cold"


def parse_key_ref(ref: str) -> tuple[str, int | None]:
    """``KEY_ID`` or ``KEY_ID@vN`` -> (key id, version or None); InvalidInputError otherwise."""
    match = _KEY_REF.fullmatch(ref.strip())
    if not match:
        raise InvalidInputError(f"key reference {ref!r} is not KEY_ID or KEY_ID@vN")
    version = match.group("version")
    return match.group("id"), int(version) if version else None


def load_policy(vault: Vault) -> LifetimePolicy:
    """The vault's lifetime policy (config/lifetimes.toml)."""
    return load_lifetime_policy(vault.settings.lifetimes_file)


# -- schedule ---------------------------------------------------------------------

ROTATION_CONFIG = "rotation.toml"
_CRON_FIELD = re.compile(r"^[0-9*,/\-A-Za-z?LW#]+$")


@dataclass(frozen=True)
class RotationSchedule:
    """``config/rotation.toml``: when the rotation deployment runs, and how."""

    cron: str = "0 3 * * *"
    timezone: str = "UTC"
    batch_size: int = DEFAULT_BATCH
    workers: int = DEFAULT_WORKERS
    verify_sample: int = 3


def load_schedule(config_dir: Path) -> RotationSchedule:
    """Read ``[rotation]`` from ``config_dir/rotation.toml``; defaults when the file is absent."""
    path = config_dir / ROTATION_CONFIG
    if not path.is_file():
        return RotationSchedule()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({type(exc).__name__})") from None
    table = raw.get("rotation", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [rotation] must be a table")
    unknown = set(table) - {"cron", "timezone", "batch_size", "workers", "verify_sample"}
    if unknown:
        raise ConfigError(f"{path}: unknown rotation setting(s) {', '.join(sorted(unknown))}")
    default = RotationSchedule()
    cron = table.get("cron", default.cron)
    if (
        not isinstance(cron, str)
        or len(cron.split()) != 5
        or not all(_CRON_FIELD.fullmatch(f) for f in cron.split())
    ):
        raise ConfigError(f"{path}: rotation.cron must be a 5-field cron expression")
    timezone = table.get("timezone", default.timezone)
    if not isinstance(timezone, str) or not timezone:
        raise ConfigError(f"{path}: rotation.timezone must be a time zone name")
    numbers = {}
    for name, low, high in (
        ("batch_size", 1, 100_000),
        ("workers", 1, 64),
        ("verify_sample", 0, 1000),
    ):
        value = table.get(name, getattr(default, name))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{path}: rotation.{name} must be an integer in [{low}, {high}]")
        numbers[name] = value
    return RotationSchedule(cron=cron, timezone=timezone, **numbers)


# -- what is due ---------------------------------------------------------------


@dataclass(frozen=True)
class DueKey:
    """A key that a rotation run will act on, and why (no key material)."""

    key_id: str
    version: int
    purpose: str
    tier: str | None
    created_at: str
    expires_at: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dict(self.__dict__)


def wrap_due_at(max_wraps: int) -> int:
    """The wrap count from which a KEK version is due for rotation: 90% of its limit."""
    return max(1, max_wraps - max_wraps // 10)


def _due_reason(
    policy: LifetimePolicy,
    rec: KeyRecord,
    now: datetime,
    forced: bool,
    max_wraps: int | None = None,
) -> str | None:
    key_type = KEY_TYPES.get(rec.purpose)
    worn = max_wraps is not None and rec.purpose == "kek" and rec.wraps >= wrap_due_at(max_wraps)
    if forced or worn:
        return "forced" if forced else f"wrapped {rec.wraps} keys, limit {max_wraps}"
    if key_type is None:
        return None
    try:
        due = is_due(
            policy, key_type, policy_tier(rec.tier), rec.created_at, now, algorithm=rec.algorithm
        )
    except VaultError as exc:
        return f"policy refuses the key: {exc.message}"
    if not due:
        return None
    expiry = expires_at(
        policy, key_type, policy_tier(rec.tier), rec.created_at, algorithm=rec.algorithm
    )
    if now >= expiry:
        return "expired"
    return "near the end of its lifetime"


def due_keys(
    vault: Vault,
    policy: LifetimePolicy,
    now: datetime,
    *,
    force_tiers: Iterable[str] = (),
    force_signing: bool = False,
) -> list[DueKey]:
    """Tier KEKs and the signing key that a rotation must handle now.

    A tier is listed when its active KEK is due (or missing), when it is
    forced, or when its last rotation is unfinished (a decrypt-only version
    remains to drain). The signing key is listed when due or forced. Escrow
    keys are listed when due but rotating them needs a new split ceremony
    (``weightvault escrow split``), so the run only reports them.
    """
    forced = set(force_tiers)
    unknown = forced - set(KEK_TIERS)
    if unknown:
        raise InvalidInputError(f"unknown tier(s) to rotate: {', '.join(sorted(unknown))}")
    keys = rotating_keys(vault)
    out: list[DueKey] = []
    for tier in KEK_TIERS:
        versions = keys.versions(kek_id(tier))
        active = next((r for r in versions if r.state == KeyState.ACTIVE), None)
        pending = [r for r in versions if r.state == KeyState.DECRYPT_ONLY]
        if active is None:
            out.append(DueKey(kek_id(tier), 0, "kek", tier, "", None, "no active version"))
            continue
        reason = _due_reason(policy, active, now, tier in forced, vault.settings.max_kek_wraps)
        if reason is None and pending:
            reason = "unfinished rotation: " + ", ".join(r.ref for r in pending) + " to drain"
        if reason is not None:
            out.append(_due_key(active, reason))
    signing = keys.active(SIGNING_KEY_ID)
    if signing is not None:
        reason = _due_reason(policy, signing, now, force_signing)
        if reason is not None:
            out.append(_due_key(signing, reason))
    elif force_signing:
        out.append(DueKey(SIGNING_KEY_ID, 0, "signing", None, "", None, "forced"))
    for rec in keys.records():
        if rec.purpose == "escrow_kem" and rec.state == KeyState.ACTIVE:
            reason = _due_reason(policy, rec, now, forced=False)
            if reason is not None:
                out.append(_due_key(rec, reason + " (needs a new escrow split ceremony)"))
    return out


def _due_key(rec: KeyRecord, reason: str) -> DueKey:
    return DueKey(
        rec.key_id,
        rec.version,
        rec.purpose,
        rec.tier,
        rec.created_at.isoformat(),
        rec.expires_at.isoformat() if rec.expires_at else None,
        reason,
    )


def find_due(
    vault: Vault,
    now: datetime,
    *,
    force_tiers: Iterable[str] = (),
    force_signing: bool = False,
) -> tuple[DueKey, ...]:
    """Step 1: :func:`due_keys` under the vault's lifetime policy, at ``now``."""
    return tuple(
        due_keys(
            vault,
            load_policy(vault),
            now,
            force_tiers=tuple(force_tiers),
            force_signing=force_signing,
        )
    )


def tiers_due(due: Iterable[DueKey]) -> tuple[str, ...]:
    """The tiers whose KEK a run rotates, in the order :func:`find_due` listed them."""
    return tuple(d.tier for d in due if d.purpose == "kek" and d.tier)


def signing_due(due: Iterable[DueKey]) -> int | None:
    """The signing key version a run replaces (0: none exists yet), or None if not due."""
    return next((d.version for d in due if d.key_id == SIGNING_KEY_ID), None)


# -- rotation of one tier ------------------------------------------------------


@dataclass(frozen=True)
class TierRotation:
    """A started (or resumed) rotation of one tier's KEK."""

    tier: str
    kek_id: str
    target_version: int
    old_versions: tuple[int, ...]
    created: bool

    @property
    def target_ref(self) -> str:
        """``kek-<tier>@vN`` of the version envelopes move to."""
        return f"{self.kek_id}@v{self.target_version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "tier": self.tier,
            "kek_id": self.kek_id,
            "target_version": self.target_version,
            "old_versions": list(self.old_versions),
            "created": self.created,
        }


def start_rotation(vault: Vault, tier: str, *, new_version: bool = True) -> TierRotation:
    """Create the tier's new KEK version, or resume an unfinished rotation.

    The previous active version becomes decrypt-only. With an unfinished
    rotation (a decrypt-only version exists), its active version is reused
    and nothing is created. ``new_version=False`` only drains and retires.
    """
    if tier not in KEK_TIERS:
        raise InvalidInputError(f"unknown tier {tier!r}")
    keys = rotating_keys(vault)
    with vault.operation("key.rotated", None, tier, {"tier": tier}) as op:
        target, created = keys.begin_kek_rotation(tier, new_version=new_version)
        old = tuple(
            r.version for r in keys.versions(kek_id(tier)) if r.state == KeyState.DECRYPT_ONLY
        )
        previous = [f"{kek_id(tier)}@v{v}" for v in old]
        op.uses(target.ref, *previous)
        op.details.update(key=target.ref, created=created, previous=previous)
        record = {"key": target.ref, "state": str(target.state), "created": created}
        sign_record(vault, op, "key-rotation", target.ref, {**record, "previous": previous})
    return TierRotation(tier, kek_id(tier), target.version, old, created)


@dataclass(frozen=True)
class EnvelopeRef:
    """One envelope to rewrap: artifact id and tier (the object key follows)."""

    artifact_id: str
    tier: str


def pending_envelopes(vault: Vault, rot: TierRotation) -> list[EnvelopeRef]:
    """Envelopes the catalog still has on an old version of the tier's KEK."""
    rows = vault.catalog.envelopes_on_any(rot.kek_id, rot.old_versions)
    return [EnvelopeRef(r["artifact_id"], r["tier"]) for r in rows if r["tier"] == rot.tier]


def batches(items: Sequence[_T], size: int) -> list[list[_T]]:
    """``items`` cut into lists of at most ``size``."""
    if size < 1:
        raise InvalidInputError("batch size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class RewrapStats:
    """Counts of one or more rewrap batches."""

    rewrapped: int = 0
    already: int = 0
    missing: int = 0
    skipped: int = 0

    def __add__(self, other: RewrapStats) -> RewrapStats:
        return RewrapStats(
            self.rewrapped + other.rewrapped,
            self.already + other.already,
            self.missing + other.missing,
            self.skipped + other.skipped,
        )

    @classmethod
    def sum(cls, parts: Iterable[RewrapStats]) -> RewrapStats:
        """The totals of several batches."""
        total = cls()
        for part in parts:
            total = total + part
        return total

    @property
    def total(self) -> int:
        """Envelopes looked at."""
        return self.rewrapped + self.already + self.missing + self.skipped

    def to_dict(self) -> dict[str, int]:
        """JSON-safe form."""
        return {
            "rewrapped": self.rewrapped,
            "already": self.already,
            "missing": self.missing,
            "skipped": self.skipped,
        }


def rewrap_envelope(
    vault: Vault,
    keys: RotatingKeys,
    target: KeyRecord,
    ref: EnvelopeRef,
    drain: frozenset[int],
) -> str:
    """Rewrap one envelope to ``target``; returns rewrapped|already|missing|skipped.

    ``already``: the object is on the target version (a resumed run);
    ``missing``: the object is gone (the artifact moved or was deleted);
    ``skipped``: it is on a version that is not being drained (for example a
    compromised one, which :mod:`weightvault.lifecycle.rekey` handles).
    """
    return _rewrap(vault, keys, target, ref, drain)[0]


def _rewrap(
    vault: Vault,
    keys: RotatingKeys,
    target: KeyRecord,
    ref: EnvelopeRef,
    drain: frozenset[int],
) -> tuple[str, bytes | None]:
    """:func:`rewrap_envelope`, and the exact bytes of the envelope it wrote (rewrapped)."""
    try:
        wrapped, etag = vault.load_envelope_for_rewrite(ref.artifact_id, ref.tier)
    except NotFoundError:
        return "missing", None
    if wrapped.kek_id != target.key_id:
        raise IntegrityError(
            f"envelope of artifact {ref.artifact_id} names {wrapped.kek_id}, not {target.key_id}"
        )
    if wrapped.kek_version == target.version:
        return "already", None
    if wrapped.kek_version not in drain:
        return "skipped", None
    dek = keys.unwrap_dek(wrapped)
    try:
        new = keys.wrap_with(target, ref.tier, ref.artifact_id, dek)
    finally:
        del dek
    try:
        vault.put_envelope(
            ref.artifact_id,
            ref.tier,
            envelope_key(ref.artifact_id, ref.tier),
            new.to_dict(),
            if_match=etag,
        )
    except ConflictError:
        # Another rotation to the same version rewrapped it meanwhile: its envelope
        # stands (and is what this batch logs), or this one's start was stale.
        if vault.load_envelope(ref.artifact_id, ref.tier).kek_version == target.version:
            return "already", None
        raise
    return "rewrapped", canonical_json(new.to_dict())


BatchCallback = Callable[[RewrapStats], None]
PlanCallback = Callable[[str, int], None]
"""Told each tier and how many envelopes its rotation will visit, before the first batch."""


def rewrap_batch(
    vault: Vault,
    rot: TierRotation,
    refs: Sequence[EnvelopeRef],
    *,
    workers: int = DEFAULT_WORKERS,
    pool: ThreadPoolExecutor | None = None,
) -> RewrapStats:
    """Rewrap one batch in parallel, then record the new versions in one transaction.

    Safe to run again on the same batch: envelopes already on the target are
    counted as ``already`` and their catalog rows are (re)written.
    """
    keys = rotating_keys(vault)
    target = keys.get(rot.kek_id, rot.target_version)
    if target.state != KeyState.ACTIVE:
        raise KeyStateError(f"rotation target {target.ref} is {target.state}, not active")
    drain = frozenset(rot.old_versions)
    # Counted before any wrap is done (an envelope found already rewrapped over-counts).
    keys.reserve_wraps(target, len(refs))

    def one(ref: EnvelopeRef) -> tuple[str, str | None]:
        outcome, written = _rewrap(vault, keys, target, ref, drain)
        if written is not None:
            return outcome, sha256_hex(written)
        if outcome != "already":
            return outcome, None
        try:  # a resumed run: the envelope an earlier attempt wrote
            return outcome, vault.envelope_sha256(ref.artifact_id, ref.tier)
        except NotFoundError:
            return outcome, None

    if pool is not None:
        done = list(pool.map(one, refs))
    elif workers <= 1 or len(refs) <= 1:
        done = [one(r) for r in refs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as own:
            done = list(own.map(one, refs))
    outcomes = [outcome for outcome, _ in done]
    # The envelopes as they are now go to the log, which the rollback check reads.
    digests = [(r.artifact_id, d) for r, (_, d) in zip(refs, done, strict=True) if d is not None]
    for start in range(0, len(digests), REWRAP_ENTRY_SIZE):
        chunk = dict(digests[start : start + REWRAP_ENTRY_SIZE])
        vault.record(REWRAPPED, None, rot.tier, {"kek": target.ref, "envelopes": chunk})
    counts = Counter(outcomes)
    stats = RewrapStats(
        counts["rewrapped"], counts["already"], counts["missing"], counts["skipped"]
    )
    moved = []
    for ref, outcome in zip(refs, outcomes, strict=True):
        if outcome in {"rewrapped", "already"}:
            moved.append(
                {
                    "artifact_id": ref.artifact_id,
                    "tier": ref.tier,
                    "kek_id": rot.kek_id,
                    "kek_version": rot.target_version,
                }
            )
    with vault.catalog.transaction() as conn:
        vault.catalog.update_envelope_versions(conn, moved)
    return stats


def rewrap_all(
    vault: Vault,
    rot: TierRotation,
    refs: Sequence[EnvelopeRef],
    *,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    on_batch: BatchCallback | None = None,
) -> RewrapStats:
    """Rewrap ``refs`` batch after batch with one shared thread pool.

    ``on_batch`` is called with the running totals after each committed
    batch (progress reporting; tests raise from it to simulate a crash).
    """
    total = RewrapStats()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for chunk in batches(refs, batch_size):
            total = total + rewrap_batch(vault, rot, chunk, pool=pool)
            if on_batch is not None:
                on_batch(total)
    return total


@dataclass(frozen=True)
class RewrapPlan:
    """Step 3's plan: the artifact ids whose envelope a rotation moves, in batches."""

    rotation: TierRotation
    batches: tuple[tuple[str, ...], ...]

    @property
    def artifact_ids(self) -> tuple[str, ...]:
        """Every planned id, batch after batch."""
        return tuple(a for chunk in self.batches for a in chunk)


def plan_rewrap(vault: Vault, rot: TierRotation, batch_size: int = DEFAULT_BATCH) -> RewrapPlan:
    """Step 3a: the envelopes still on an old version (catalog), cut into batches."""
    ids = [r.artifact_id for r in pending_envelopes(vault, rot)]
    return RewrapPlan(rot, tuple(tuple(chunk) for chunk in batches(ids, batch_size)))


def rewrap(
    vault: Vault,
    rot: TierRotation,
    artifact_ids: Sequence[str],
    *,
    workers: int = DEFAULT_WORKERS,
    pool: ThreadPoolExecutor | None = None,
) -> RewrapStats:
    """Step 3b: rewrap one planned batch (:func:`rewrap_batch`); safe to run again."""
    refs = [EnvelopeRef(a, rot.tier) for a in artifact_ids]
    return rewrap_batch(vault, rot, refs, workers=workers, pool=pool)


# -- retirement ---------------------------------------------------------------


@dataclass(frozen=True)
class StoreScan:
    """Envelope objects of one tier that the store still has on an old version."""

    listed: int
    checked: int
    strays: tuple[tuple[EnvelopeRef, int], ...]


def scan_store(vault: Vault, rot: TierRotation, *, workers: int = DEFAULT_WORKERS) -> StoreScan:
    """Double-check the store: envelope objects of the tier still on an old version.

    Lists the envelope bucket; an object whose catalog row already says
    target version is trusted (this rotation wrote it), every other object of
    the tier (uncommitted puts, rows out of date) is read and checked.
    """
    on_target = {
        r["artifact_id"]
        for r in vault.catalog.envelopes_on(rot.kek_id, rot.target_version)
        if r["tier"] == rot.tier
    }
    to_check: list[EnvelopeRef] = []
    listed = 0
    for obj in vault.store.list(vault.bucket("envelopes"), ENVELOPES_PREFIX):
        found = parse_envelope_key(obj.key)
        if found is None or found.kind != "tier" or found.tier != rot.tier:
            continue
        listed += 1
        if found.artifact_id not in on_target:
            to_check.append(EnvelopeRef(found.artifact_id, rot.tier))
    drain = set(rot.old_versions)

    def old_version(ref: EnvelopeRef) -> int | None:
        try:
            wrapped = vault.load_envelope(ref.artifact_id, ref.tier)
        except (NotFoundError, IntegrityError):
            return None
        if wrapped.kek_id == rot.kek_id and wrapped.kek_version in drain:
            return wrapped.kek_version
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        versions = list(pool.map(old_version, to_check))
    strays = tuple((ref, v) for ref, v in zip(to_check, versions, strict=True) if v is not None)
    return StoreScan(listed, len(to_check), strays)


@dataclass(frozen=True)
class RetireResult:
    """What :func:`retire_drained` did."""

    retired: tuple[str, ...]
    kept: dict[str, int]
    strays_rewrapped: int
    store_listed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "retired": list(self.retired),
            "kept": dict(self.kept),
            "strays_rewrapped": self.strays_rewrapped,
            "store_listed": self.store_listed,
        }


def retire_drained(
    vault: Vault, rot: TierRotation, *, workers: int = DEFAULT_WORKERS
) -> RetireResult:
    """Retire each old version that nothing references any more.

    Nothing references a version when the catalog has no envelope on it and
    the store scan (:func:`scan_store`) finds none either; stray envelopes
    the scan finds (puts not yet committed) are rewrapped first. A version
    still referenced stays decrypt-only and is reported in ``kept``.
    """
    keys = rotating_keys(vault)
    with vault.operation("key.retired", None, rot.tier, {"tier": rot.tier}) as op:
        result = _retire(vault, keys, rot, workers)
        op.uses(*result.retired)
        op.details.update(keys=list(result.retired), kept=result.kept)
        record = {"retired": list(result.retired), "state": "retired", "kept": result.kept}
        sign_record(vault, op, "key-retirement", rot.kek_id, record)
    return result


def _retire(vault: Vault, keys: Any, rot: TierRotation, workers: int) -> RetireResult:
    scan = scan_store(vault, rot, workers=workers)
    rewrapped = 0
    if scan.strays:
        rewrapped = rewrap_all(vault, rot, [r for r, _ in scan.strays], workers=workers).rewrapped
        scan = scan_store(vault, rot, workers=workers)
    in_store = Counter(v for _, v in scan.strays)
    retired: list[str] = []
    kept: dict[str, int] = {}
    for version in rot.old_versions:
        ref = f"{rot.kek_id}@v{version}"
        count = len(vault.catalog.envelopes_on(rot.kek_id, version)) + in_store[version]
        if count:
            kept[ref] = count
            continue
        if keys.get(rot.kek_id, version).state == KeyState.DECRYPT_ONLY:
            keys.set_state(rot.kek_id, version, KeyState.RETIRED)
            retired.append(ref)
    return RetireResult(tuple(retired), kept, rewrapped, scan.listed)


def verify_sample(vault: Vault, artifact_ids: Sequence[str], size: int = 3) -> list[str]:
    """Decrypt and hash a random sample of readable artifacts (``Vault.verify``); their ids.

    Quarantined artifacts are never sampled (no reads until released; their
    envelopes were rewrapped all the same), nor is one quarantined while the
    sample runs. The runs (:func:`rotate_tier`, the flow) take the sample after
    :func:`retire_drained`, so a sample that fails never leaves a tier half-rotated.
    """
    ids = sorted(set(artifact_ids))
    readable = [a for a in ids if _sampleable(vault, a)]
    chosen = sorted(random.sample(readable, min(size, len(readable)))) if size > 0 else []
    verified = []
    for artifact_id in chosen:
        try:
            vault.verify(artifact_id)
        except QuarantinedError:
            continue
        verified.append(artifact_id)
    return verified


def _sampleable(vault: Vault, artifact_id: str) -> bool:
    try:
        return vault.catalog.artifact(artifact_id).tier != "quarantine"
    except NotFoundError:
        return False


def artifacts_on_tier_kek(vault: Vault, tier: str) -> list[str]:
    """Committed artifacts whose envelope is on the tier's KEK (for sampling)."""
    rows = vault.catalog.envelopes_on_any(
        kek_id(tier), [r.version for r in rotating_keys(vault).versions(kek_id(tier))]
    )
    return [r["artifact_id"] for r in rows if r["tier"] == tier]


# -- signing key and trust root ------------------------------------------------


def rotate_signing(vault: Vault, replaces: int | None = None) -> str:
    """Create a new signing key version (and OMS key version, if the vault has one); older
    public keys stay in the trust root.

    With ``replaces`` (the version :func:`signing_due` named; 0 when there was
    none) a new version is made only while that version is still the active
    one, so a retried or resumed step does not rotate twice: it returns the
    version the first attempt made.
    """
    keys = rotating_keys(vault)
    if replaces is not None:
        active = keys.active(SIGNING_KEY_ID)
        if active is not None and active.version != replaces:
            return active.ref
    with vault.operation("key.rotated", details={"purpose": "signing"}) as op:
        key = rotate_signing_key(keys)
        ref = f"{key.key_id}@v{key.version}"
        op.uses(ref)
        op.details["key"] = ref
        if keys.active(OMS_KEY_ID) is not None:
            # The OMS key (ECDSA P-256) follows the signing key's cadence.
            oms = rotate_oms_key(keys)
            op.uses(oms.ref)
            op.details["oms_key"] = oms.ref
        sign_record(vault, op, "key-rotation", ref, {"key": ref, "state": "active"})
    return ref


def publish_trust_root(vault: Vault) -> dict[str, Any]:
    """Write the trust root (every non-destroyed public signing key) to the audit bucket.

    Stored at ``trust/root.json`` (the audit bucket is versioned, so earlier
    roots stay retrievable). The signed trust root gets a new version too when
    its root keys are in the keystore (:func:`weightvault.lifecycle.trust.refresh_root`;
    with offline root keys ``weightvault trust rotate --root-key FILE`` does it).
    Returns a summary: key ids and versions only.
    """
    root = trust_root(rotating_keys(vault))
    vault.store.put_bytes(vault.bucket("audit"), TRUST_ROOT_KEY, canonical_json(root))
    signed = refresh_root(vault)
    return {
        "object": f"{vault.bucket('audit')}/{TRUST_ROOT_KEY}",
        "keys": [f"{k.get('key_id', '?')}@v{k.get('version', '?')}" for k in root["keys"]],
        "signed_root": signed.version if signed is not None else None,
    }


def repair_escrow(vault: Vault) -> dict[str, int]:
    """Step 7: escrow every cold artifact whose escrow was deferred (or is on an old key).

    :func:`weightvault.lifecycle.escrow.escrow_on_publish` leaves a failed
    escrow for this step; counts only, nothing without an escrow key.
    """
    return escrow_all_cold(vault)


@dataclass(frozen=True)
class RunRecord:
    """What the audit event of a rotation run says (ids, versions and counts)."""

    tiers: tuple[str, ...]
    rewrapped: int
    retired: tuple[str, ...]
    signing: str | None
    duration_s: float


def record_run(vault: Vault, record: RunRecord) -> None:
    """Step 8 of the flow: the ``keys.rotation_run`` summary (each key change has its own)."""
    vault.record("keys.rotation_run", details=_run_details(record))


def _run_details(record: RunRecord) -> dict[str, Any]:
    return {
        "tiers": list(record.tiers),
        "rewrapped": record.rewrapped,
        "retired": list(record.retired),
        "signing": record.signing,
        "duration_s": round(record.duration_s, 3),
    }


# -- the whole run (CLI; the Prefect flow runs the same steps as tasks) --------


@dataclass(frozen=True)
class TierOutcome:
    """What one tier's rotation did."""

    rotation: TierRotation
    stats: RewrapStats
    retire: RetireResult
    verified: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            **self.rotation.to_dict(),
            "target": self.rotation.target_ref,
            **self.stats.to_dict(),
            **self.retire.to_dict(),
            "verified": list(self.verified),
        }


@dataclass
class RotationReport:
    """Summary of a rotation run (no key material); both the CLI and the flow return it."""

    started_at: str
    duration_s: float
    due: list[DueKey]
    tiers: list[TierOutcome] = field(default_factory=list)
    signing: str | None = None
    trust_root: dict[str, Any] = field(default_factory=dict)
    escrow: dict[str, int] = field(default_factory=dict)

    @property
    def rewrapped(self) -> int:
        """Envelopes rewrapped over every tier."""
        return sum(t.stats.rewrapped for t in self.tiers)

    def run_record(self) -> RunRecord:
        """What :func:`record_run` writes for this run."""
        return RunRecord(
            tiers=tuple(t.rotation.target_ref for t in self.tiers),
            rewrapped=self.rewrapped,
            retired=tuple(r for t in self.tiers for r in t.retire.retired),
            signing=self.signing,
            duration_s=self.duration_s,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "due": [d.to_dict() for d in self.due],
            "tiers": [t.to_dict() for t in self.tiers],
            "signing": self.signing,
            "trust_root": self.trust_root,
            "escrow": dict(self.escrow),
            "rewrapped": self.rewrapped,
        }


def rotate_tier(
    vault: Vault,
    tier: str,
    *,
    new_version: bool = True,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    verify: int = 3,
    on_batch: BatchCallback | None = None,
    on_plan: PlanCallback | None = None,
) -> TierOutcome:
    """Steps 2-5 for one tier, in a row: start or resume, rewrap every batch, retire, verify.

    ``on_plan`` is told how many envelopes the tier's batches hold; ``on_batch``
    is called with the running totals after each committed batch.
    """
    rot = start_rotation(vault, tier, new_version=new_version)
    plan = plan_rewrap(vault, rot, batch_size)
    if on_plan is not None:
        on_plan(tier, sum(len(b) for b in plan.batches))
    stats = RewrapStats()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for chunk in plan.batches:
            stats = stats + rewrap(vault, rot, chunk, pool=pool)
            if on_batch is not None:
                on_batch(stats)
    retire = retire_drained(vault, rot, workers=workers)
    verified = verify_sample(vault, plan.artifact_ids, verify)
    log.info(
        "rotation.tier_done",
        tier=tier,
        target=rot.target_ref,
        rewrapped=stats.rewrapped,
        retired=list(retire.retired),
    )
    return TierOutcome(rot, stats, retire, verified)


def rotate(
    vault: Vault,
    now: datetime,
    *,
    force_tiers: Iterable[str] = (),
    force_signing: bool = False,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    verify: int = 3,
    on_batch: BatchCallback | None = None,
    on_plan: PlanCallback | None = None,
) -> RotationReport:
    """A whole rotation run: steps 1-8 in a row; resumable and idempotent.

    The ``rotate-keys`` flow runs the same steps as tasks; a step that raises
    fails both the same way (the CLI maps the error to its exit code).
    """
    started = time.perf_counter()
    forced = {"forced_tiers": sorted(force_tiers), "forced_signing": force_signing}
    with vault.operation("keys.rotation_run", details=forced) as op:
        due = find_due(vault, now, force_tiers=force_tiers, force_signing=force_signing)
        tiers = [
            rotate_tier(
                vault,
                tier,
                batch_size=batch_size,
                workers=workers,
                verify=verify,
                on_batch=on_batch,
                on_plan=on_plan,
            )
            for tier in tiers_due(due)
        ]
        replaces = signing_due(due)
        signing = rotate_signing(vault, replaces) if replaces is not None else None
        root = publish_trust_root(vault)
        escrow = repair_escrow(vault)
        report = RotationReport(
            now.isoformat(), time.perf_counter() - started, list(due), tiers, signing, root, escrow
        )
        op.details.update(_run_details(report.run_record()))
    return report


def plan_rows(vault: Vault, now: datetime) -> list[tuple[KeyRecord, str]]:
    """(active key version, explanation of its plan) for every key the policy knows."""
    from weightvault.keys import explain_plan

    policy = load_policy(vault)
    out = []
    for rec in sorted(rotating_keys(vault).records(), key=lambda r: (r.key_id, r.version)):
        key_type = KEY_TYPES.get(rec.purpose)
        if key_type is None or rec.state != KeyState.ACTIVE:
            continue
        plan = plan_key(policy, key_type, policy_tier(rec.tier), now=now)
        out.append((rec, explain_plan(plan)))
    return out


# -- inventory and reports ---------------------------------------------------------


def inventory_rows(vault: Vault, now: datetime) -> list[KeyInventoryRow]:
    """One CBOM row per key version: metadata and counts, never key material.

    ``artifacts_protected`` counts envelopes a KEK or escrow version wraps
    (catalog) and artifacts a signing version signed. The quantum status is
    the lifetime plan's for the key's type and tier, now.
    """
    from weightvault.keys import KeyInventoryRow

    policy = load_policy(vault)
    envelopes = vault.catalog.envelope_counts()
    signed = vault.catalog.signed_counts()
    rows = []
    for rec in rotating_keys(vault).records():
        if rec.purpose == BOOTSTRAP_PURPOSE:
            continue  # an enrolled principal's public key: the vault holds no secret of it
        key_type = KEY_TYPES.get(rec.purpose)
        status = "unknown"
        if key_type is not None:
            status = str(plan_key(policy, key_type, policy_tier(rec.tier), now=now).quantum_status)
        count = envelopes.get((rec.key_id, rec.version), 0) + signed.get(rec.ref, 0)
        rows.append(
            KeyInventoryRow(
                key_id=rec.key_id,
                version=rec.version,
                algorithm=rec.algorithm,
                tier=rec.tier or "global",
                created=rec.created_at,
                expires=rec.expires_at,
                state=str(rec.state),
                quantum_status=status,
                artifacts_protected=count,
                wraps=rec.wraps,
            )
        )
    return sorted(rows, key=lambda r: (r.key_id, r.version))


def render_report(report: dict[str, Any]) -> str:
    """Markdown summary of a rotation run (:meth:`RotationReport.to_dict`)."""
    lines = [
        "# Key rotation",
        "",
        f"Started {report['started_at']}, took {report['duration_s']:.2f} s; "
        f"{report['rewrapped']} envelope(s) rewrapped, no ciphertext rewritten.",
        "",
        "## Keys due",
        "",
    ]
    if report["due"]:
        lines += ["| key | version | reason |", "|---|---|---|"]
        lines += [f"| `{d['key_id']}` | {d['version']} | {d['reason']} |" for d in report["due"]]
    else:
        lines.append("Nothing was due.")
    if report["tiers"]:
        lines += [
            "",
            "## Tier KEKs",
            "",
            "| tier | new version | created | rewrapped | already | missing | skipped "
            "| retired | kept | verified |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for t in report["tiers"]:
            kept = ", ".join(f"{k} ({n})" for k, n in t["kept"].items()) or "-"
            lines.append(
                f"| {t['tier']} | `{t['target']}` | {'yes' if t['created'] else 'resumed'} "
                f"| {t['rewrapped']} | {t['already']} | {t['missing']} | {t['skipped']} "
                f"| {', '.join(t['retired']) or '-'} | {kept} | {len(t['verified'])} |"
            )
    lines += ["", "## Signing key", ""]
    lines.append(f"Rotated to `{report['signing']}`." if report["signing"] else "Not rotated.")
    root = report.get("trust_root") or {}
    if root:
        lines.append(
            f"Trust root published at `{root['object']}` with "
            + ", ".join(f"`{k}`" for k in root["keys"])
            + "."
        )
    escrow = report.get("escrow") or {}
    if escrow:
        lines += [
            "",
            "## Escrow",
            "",
            f"{escrow.get('written', 0)} cold artifact(s) escrowed now, "
            f"{escrow.get('current', 0)} already escrowed, of {escrow.get('cold', 0)}.",
        ]
    return "\n".join(lines)
