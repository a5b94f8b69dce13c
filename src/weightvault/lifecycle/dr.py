"""Restore the vault home from the store and k master-key shares (issue 13, item 3).

Losing the vault home (``master.key``, ``keystore.sealed``, the catalog) must
not lose the hot and warm keys. Two things make that so:

- every change of the sealed keystore is copied to the audit bucket
  (:class:`weightvault.artifacts.StoreKeystoreBackups`,
  ``keystore/backups/<version>.sealed``, never overwritten);
- :func:`split_master` splits the master key into SLIP-39 shares (k of n),
  shown once and never stored; the store keeps only a record that the split
  was made and a check value (an HMAC under the master key, which reveals
  nothing about it) so a restore can tell this vault's key from another one.

:func:`restore_home` runs the steps in a row, each usable from a flow:
:func:`recover_master` (shares -> master key, checked), :func:`fetch_keystore`
(the newest backup, checked against the highest version record: an older
backup is a rollback and refused), :func:`write_home` (only now is anything
written) and :func:`rebuild` (the catalog, from the store).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault._fs import make_private_dir, write_private
from weightvault._json import canonical_json
from weightvault._time import utcnow
from weightvault.artifacts import StoreKeystoreBackups, StoreKeystoreVersions, Vault
from weightvault.config import Settings
from weightvault.errors import (
    AuthenticationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeystoreBackupError,
    KeystoreRollbackError,
    MasterSharesError,
    NotFoundError,
)
from weightvault.keys import (
    LocalKeyStore,
    SharedKeyStore,
    load_master_key,
    recover_seed,
    split_seed,
)
from weightvault.lifecycle.escrow import write_mnemonic_files
from weightvault.lifecycle.evidence import sign_record
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.logs import get_logger, register_secret
from weightvault.store import ObjectStore
from weightvault.store.layout import MASTER_SHARES_KEY

log = get_logger("weightvault.lifecycle.dr")

SPLIT_RECORD_TYPE = "weightvault.master-split/v1"
_CHECK_LABEL = b"weightvault/v1/master-key-check"
_MAX_SHARES = 16


def master_check(master: bytes) -> str:
    """A value that identifies the master key without revealing it (HMAC-SHA256 under it)."""
    return hmac.new(master, _CHECK_LABEL, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class MasterSplit:
    """The outcome of a split. ``shares`` are secret: show them once, or write them."""

    threshold: int
    shares: tuple[str, ...]
    replaced: bool

    def __repr__(self) -> str:
        return (
            f"MasterSplit(threshold={self.threshold}, shares=<{len(self.shares)} redacted>, "
            f"replaced={self.replaced})"
        )


def split_record(store: ObjectStore, settings: Settings) -> dict[str, Any] | None:
    """The store's record of the master-key split, if one was made."""
    try:
        raw = store.get_bytes(settings.store.bucket("audit"), MASTER_SHARES_KEY, limit=4096)
    except NotFoundError:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise IntegrityError("the master-key split record in the store is not JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != SPLIT_RECORD_TYPE:
        raise IntegrityError("the master-key split record in the store has an unknown type")
    return doc


def split_master(
    settings: Settings,
    store: ObjectStore,
    *,
    threshold: int = 3,
    shares: int = 5,
    replace: bool = False,
) -> MasterSplit:
    """Split the master key into ``shares`` SLIP-39 mnemonics, any ``threshold`` recover it.

    Refuses (ConflictError) when a split was already recorded, unless
    ``replace``. A new split is of the same key: shares of an earlier split
    still recover it (the master key itself does not change).
    """
    if not 2 <= threshold <= shares <= _MAX_SHARES:
        raise InvalidInputError(
            f"master-key split needs 2 <= threshold <= shares <= {_MAX_SHARES}, "
            f"got {threshold}-of-{shares}"
        )
    existing = split_record(store, settings)
    if existing is not None and not replace:
        raise ConflictError(
            f"the master key was already split ({existing.get('threshold')} of "
            f"{existing.get('shares')}, {existing.get('created_at')}); "
            "pass --replace to split again"
        )
    master = load_master_key(settings.master_key_path, settings.master_key)
    mnemonics = split_seed(master, threshold=threshold, shares=shares)
    for mnemonic in mnemonics:
        register_secret(mnemonic)
    record = {
        "type": SPLIT_RECORD_TYPE,
        "threshold": threshold,
        "shares": shares,
        "created_at": utcnow().isoformat(),
        "check": master_check(master),
    }
    store.put_bytes(
        settings.store.bucket("audit"),
        MASTER_SHARES_KEY,
        canonical_json(record),
        if_none_match=existing is None,
    )
    return MasterSplit(threshold, tuple(mnemonics), existing is not None)


def write_share_files(split: MasterSplit, out_dir: Path) -> list[Path]:
    """Write one share per custodian file (mode 0600, never overwriting) into ``out_dir``."""
    return write_mnemonic_files(split.shares, out_dir, "master-share")


def parse_shares(text: str) -> list[str]:
    """Mnemonics from text: one share per non-empty line (what stdin gives)."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


# -- restore-home steps --------------------------------------------------------


def recover_master(settings: Settings, store: ObjectStore, mnemonics: Sequence[str]) -> bytes:
    """k shares -> the master key, checked against the split recorded in the store.

    MasterSharesError (one line, never quoting a share) for too few shares,
    a malformed one, shares of different splits, or a key that is not this
    vault's.
    """
    for mnemonic in mnemonics:
        register_secret(mnemonic)
    record = split_record(store, settings)
    if record is None:
        raise MasterSharesError(
            "the store records no master-key split (`weightvault dr split-master`): "
            "shares cannot be checked against this vault"
        )
    try:
        master = recover_seed(list(mnemonics))
    except (InvalidInputError, IntegrityError) as exc:
        raise MasterSharesError(exc.message.replace("escrow share", "master-key share")) from None
    if len(master) != 32 or not hmac.compare_digest(master_check(master), str(record["check"])):
        raise MasterSharesError(
            "the shares recover a key that is not this vault's master key "
            "(shares of another vault or a wrong share set)"
        )
    return master


@dataclass(frozen=True)
class KeystoreBackup:
    """The keystore backup a restore writes. ``blob`` is sealed under the master key."""

    version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"KeystoreBackup(version={self.version}, bytes={len(self.blob)})"


def fetch_keystore(settings: Settings, store: ObjectStore, master: bytes) -> KeystoreBackup:
    """The newest keystore backup, opened under ``master`` and checked for rollback.

    It must open, hold the version its key names, and no authentic keystore
    version record may be newer (an older backup put back as the newest, or
    newer backups deleted): KeystoreBackupError otherwise.
    """
    audit = settings.store.bucket("audit")
    backups = StoreKeystoreBackups(store, audit)
    stored = backups.versions()
    if not stored:
        raise KeystoreBackupError("the store holds no keystore backup: the home cannot be restored")
    newest = stored[-1]
    blob = backups.get(newest)
    scratch = Path(tempfile.mkdtemp(prefix="weightvault-restore-"))
    try:
        path = scratch / "keystore.sealed"
        write_private(path, blob)
        keystore = LocalKeyStore(path, master, versions=StoreKeystoreVersions(store, audit))
        try:
            opened = keystore.version
        except KeystoreRollbackError:
            raise KeystoreBackupError(
                f"the newest keystore backup (version {newest}) is older than the newest "
                "keystore version recorded in the store: refusing a rolled-back keystore"
            ) from None
        except (AuthenticationError, IntegrityError):
            raise KeystoreBackupError(
                f"keystore backup {newest} does not open under the recovered master key"
            ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if opened != newest:
        raise KeystoreBackupError(
            f"keystore backup stored as version {newest} holds version {opened}: "
            "refusing a backup put back under another version"
        )
    return KeystoreBackup(newest, blob)


def check_new_home(settings: Settings) -> None:
    """The new home must not hold a vault already (ConflictError): nothing is overwritten."""
    own = () if settings.keystore_url else (settings.keystore_path,)
    for path in (settings.master_key_path, *own):
        if path.exists():
            raise ConflictError(
                f"{path} exists: restore-home writes only into a new or empty vault home"
            )


def write_home(settings: Settings, master: bytes, backup: KeystoreBackup) -> None:
    """Write the keystore and the 0600 master key file into the new home."""
    check_new_home(settings)
    make_private_dir(settings.home)
    if settings.keystore_url:
        SharedKeyStore(settings.keystore_url, master).install(backup.blob)
    else:
        write_private(settings.keystore_path, backup.blob)
    try:
        fd = os.open(settings.master_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConflictError(f"{settings.master_key_path} appeared during the restore") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(master) + b"\n")


def rebuild(settings: Settings, *, identity: str | None = None) -> dict[str, Any]:
    """Open the restored vault and rebuild its catalog from the store."""
    vault = Vault.open(settings, identity=identity)
    return rebuild_catalog(vault)


def restore_home(
    settings: Settings,
    store: ObjectStore,
    mnemonics: Sequence[str],
    *,
    identity: str | None = None,
) -> dict[str, Any]:
    """Every step in a row; nothing is written before the shares and the backup checked out."""
    check_new_home(settings)
    master = recover_master(settings, store, mnemonics)
    backup = fetch_keystore(settings, store, master)
    write_home(settings, master, backup)
    catalog = rebuild(settings, identity=identity)
    vault = Vault.open(settings, identity=identity)
    # The log's keys are in the keystore just restored, so this is recorded after the effect.
    details = {
        "home": vault.private(str(settings.home)),
        "keystore_version": backup.version,
        **_counts(catalog),
    }
    with vault.operation("dr.home_restored", details=details) as op:
        # The recovery certificate: which backup, that the shares recovered the master key
        # that opens it, and the catalog rebuilt from the log.
        certificate = {
            "backup_version": backup.version,
            "backup_sha256": hashlib.sha256(backup.blob).hexdigest(),
            "shares_checked": True,
            "home": details["home"],
            "catalog_rebuilt": _counts(catalog),
        }
        sign_record(vault, op, "recovery", f"keystore-backup@{backup.version}", certificate)
    log.info("dr.home_restored", keystore_version=backup.version)
    return {
        "home": str(settings.home),
        "keystore_version": backup.version,
        "catalog": _counts(catalog),
    }


def _counts(catalog: dict[str, Any]) -> dict[str, int]:
    return {name: int(catalog[name]) for name in ("artifacts", "events", "skipped", "damaged")}
