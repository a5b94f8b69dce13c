"""A transparency-log witness (c2sp tlog-witness, tlog-cosignature) and its driver.

A :class:`Witness` has its own Ed25519 cosigning key (``cosignature/v1``, type
0x04) and its own home directory, 0700::

    witness.key            the 32-byte Ed25519 seed, 0600 (refused if looser)
    witness.json           its name and the logs it witnesses: origin -> verifier keys
    state/<sha256(origin)> the latest checkpoint it cosigned for that log (a note)
    forks/                 evidence: checkpoints it refused as a fork or rollback
    lock                   held (flock) while checking and recording a checkpoint

:meth:`Witness.add_checkpoint` is the spec's ``add-checkpoint``: it checks the
log's signatures, the old size against the size it last cosigned, and the
consistency proof, then persists the new checkpoint and returns its
cosignature line. The check and the write happen under one file lock, so
concurrent rounds (threads or processes) never roll its state back.

:func:`witness_log` runs one round against a vault's store: read
``log/checkpoint``, prove consistency from the witness's size with the log's
tiles, call the witness, publish the cosigned note at ``log/witness/<name>``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault._fs import make_private_dir, write_private
from weightvault._json import canonical_json, parse_canonical
from weightvault.crypto.notes import (
    Ed25519Cosigner,
    NoteError,
    NoteVerifier,
    Signature,
    parse_note,
    sign_note,
    verifier_from_vkey,
    verify_note,
)
from weightvault.errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    LogForkError,
    LogVerificationError,
    NotFoundError,
)
from weightvault.records._tlog import TransparencyLog
from weightvault.store import ObjectStore
from weightvault.store.layout import log_checkpoint_key, log_witness_key
from weightvault.tlog import Checkpoint, empty_root, parse_checkpoint, verify_consistency

__all__ = ["Witness", "WitnessRound", "witness_log"]

KEY_FILE = "witness.key"
CONFIG_FILE = "witness.json"
_CONFIG_TYPE = "weightvault.dev/witness/v1"
_NOTE = "text/plain; charset=utf-8"
_MAX_PROOF = 63
_ROUND_ATTEMPTS = 5


def _b64(root: bytes) -> str:
    return base64.b64encode(root).decode()


def _origin_file(origin: str) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()


class Witness:
    """One witness: its key, the logs it witnesses and the latest checkpoint of each."""

    def __init__(self, home: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.home = home
        self._clock = clock
        config = self._config()
        self.name: str = config["name"]
        self._cosigner = Ed25519Cosigner.from_seed(self.name, self._load_seed(), clock)
        self.vkey: str = self._cosigner.vkey

    # -- creating and configuring ------------------------------------------------------

    @classmethod
    def create(cls, home: Path, name: str, *, clock: Callable[[], float] = time.time) -> Witness:
        """A new witness in ``home`` with a fresh key; ConflictError if one is there."""
        if (home / KEY_FILE).exists() or (home / CONFIG_FILE).exists():
            raise ConflictError(f"{home} already holds a witness")
        seed = os.urandom(32)  # any 32 bytes are an Ed25519 private key (RFC 8032)
        Ed25519Cosigner.from_seed(name, seed, clock)  # refuses a name unusable in a note
        try:
            log_witness_key(name)
        except ValueError:
            raise InvalidInputError(f"{name!r} is not a usable witness name") from None
        make_private_dir(home)
        write_private(home / CONFIG_FILE, _config_bytes(name, {}))
        write_private(home / KEY_FILE, seed)
        return cls(home, clock=clock)

    def _config(self) -> dict[str, Any]:
        path = self.home / CONFIG_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"no witness in {self.home}: run `weightvault witness init`"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        try:
            config = parse_canonical(data, CONFIG_FILE)
        except (InvalidInputError, IntegrityError):
            raise ConfigError(f"{path} is not a witness configuration") from None
        logs = config.get("logs")
        if (
            config.get("type") != _CONFIG_TYPE
            or not isinstance(config.get("name"), str)
            or not isinstance(logs, dict)
            or not all(
                isinstance(v, list) and v and all(isinstance(k, str) for k in v)
                for v in logs.values()
            )
        ):
            raise ConfigError(f"{path} is not a witness configuration")
        return config

    def _load_seed(self) -> bytes:
        path = self.home / KEY_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ConfigError(f"cannot read the witness key {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o077:
                raise ConfigError(f"the witness key {path} is readable by others; chmod 600 it")
            seed = fh.read(33)
        if len(seed) != 32:
            raise ConfigError(f"the witness key {path} is not a 32-byte Ed25519 seed")
        return seed

    def verifier(self) -> NoteVerifier:
        """The verifier of this witness's cosignatures (what a vault lists to require it)."""
        return verifier_from_vkey(self.vkey)

    def logs(self) -> dict[str, list[str]]:
        """Origin -> the verifier keys a checkpoint of that log must be signed by."""
        logs: dict[str, list[str]] = self._config()["logs"]
        return logs

    def add_log(self, origin: str, vkeys: list[str]) -> None:
        """Witness ``origin``; its checkpoints must carry a signature of each of ``vkeys``."""
        if not origin or "\n" in origin or len(origin.encode()) > 255:
            raise InvalidInputError("a log origin is one non-empty line of at most 255 bytes")
        if not vkeys:
            raise InvalidInputError("a log needs at least one verifier key")
        for vkey in vkeys:
            verifier_from_vkey(vkey)
        with self._locked():
            logs = self.logs()
            logs[origin] = list(vkeys)
            write_private(self.home / CONFIG_FILE, _config_bytes(self.name, logs))

    def log_verifiers(self, origin: str) -> list[NoteVerifier]:
        """The verifiers of ``origin``; LogVerificationError (404) for a log not witnessed."""
        vkeys = self.logs().get(origin)
        if vkeys is None:
            raise LogVerificationError(
                f"witness {self.name} does not witness log {origin!r}", status=404
            )
        return [verifier_from_vkey(v) for v in vkeys]

    # -- state -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        make_private_dir(self.home)
        fd = os.open(self.home / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _state_path(self, origin: str) -> Path:
        return self.home / "state" / _origin_file(origin)

    def latest_note(self, origin: str) -> bytes | None:
        """The latest checkpoint cosigned for ``origin`` with every signature (or None)."""
        try:
            return self._state_path(origin).read_bytes()
        except FileNotFoundError:
            return None

    def latest(self, origin: str) -> Checkpoint | None:
        """The latest checkpoint cosigned for ``origin``, its cosignature checked (or None)."""
        data = self.latest_note(origin)
        if data is None:
            return None
        try:
            note = verify_note(data, [self.verifier()])
            checkpoint = parse_checkpoint(note.text)
        except NoteError as exc:
            raise LogVerificationError(
                f"witness {self.name}'s state for {origin!r} is damaged: {exc.message}"
            ) from None
        if checkpoint.origin != origin:
            raise LogVerificationError(f"witness {self.name}'s state for {origin!r} is damaged")
        return checkpoint

    def _evidence(self, note: bytes, reason: str) -> None:
        """Keep a refused checkpoint: it may prove the log misbehaved."""
        stamp = f"{time.time_ns():020d}-{os.getpid()}"
        write_private(self.home / "forks" / f"{stamp}.note", note)
        write_private(self.home / "forks" / f"{stamp}.txt", (reason + "\n").encode())

    def forks(self) -> list[Path]:
        """Checkpoints this witness refused as a fork or rollback, oldest first."""
        folder = self.home / "forks"
        return sorted(folder.glob("*.note")) if folder.is_dir() else []

    # -- add-checkpoint ----------------------------------------------------------------

    def add_checkpoint(
        self,
        old_size: int,
        proof: list[bytes],
        note: bytes,
        *,
        publish: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """c2sp tlog-witness ``add-checkpoint``: the cosignature line(s) for ``note``.

        Raises LogVerificationError with the spec's status (404 unknown log, 403 bad
        signature, 400 bad request, 422 bad proof), ConflictError (409) naming the
        size last cosigned when ``old_size`` is not it, and LogForkError for a
        smaller tree or the same size with another root (never cosigned, kept as
        evidence). ``publish`` gets the cosigned note while the lock is held.
        """
        try:
            text = parse_note(note).text
            origin = parse_checkpoint(text).origin
        except NoteError as exc:
            raise LogVerificationError(f"not a checkpoint: {exc.message}", status=400) from None
        verifiers = self.log_verifiers(origin)
        try:
            verified = verify_note(note, verifiers)
        except NoteError as exc:
            raise LogVerificationError(f"{origin}: {exc.message}", status=403) from None
        checkpoint = parse_checkpoint(verified.text)
        if len(proof) > _MAX_PROOF:
            raise LogVerificationError("a consistency proof has at most 63 hashes", status=400)
        if checkpoint.size == 0 and checkpoint.root != empty_root():
            raise LogVerificationError(
                f"{origin}: a checkpoint of size 0 must have the empty tree's root", status=422
            )
        with self._locked():
            self._check_extends(self.latest(origin), old_size, proof, checkpoint, note)
            trusted = {(v.name, v.key_id) for v in verifiers}
            kept = tuple(s for s in verified.signatures if (s.name, s.key_id) in trusted)
            cosigned = sign_note(verified.text, [self._cosigner], kept)
            ours: Signature = cosigned.signatures[-1]
            stored = cosigned.encode()
            write_private(self._state_path(origin), stored)
            if publish is not None:
                publish(stored)
        return ours.line().encode()

    def _check_extends(
        self,
        latest: Checkpoint | None,
        old_size: int,
        proof: list[bytes],
        checkpoint: Checkpoint,
        note: bytes,
    ) -> None:
        """The spec's size and consistency checks of a verified checkpoint (lock held)."""
        origin = checkpoint.origin
        size = latest.size if latest else 0
        if old_size > checkpoint.size:
            if old_size == size:
                reason = (
                    f"{origin}: a checkpoint of size {checkpoint.size} but witness "
                    f"{self.name} cosigned size {size}: the log was rolled back"
                )
                self._evidence(note, reason)
                raise LogForkError(reason, status=400)
            raise LogVerificationError(
                f"old size {old_size} is larger than the checkpoint's {checkpoint.size}",
                status=400,
            )
        if old_size != size:
            raise ConflictError(
                f"{origin}: witness {self.name} last cosigned size {size}, not {old_size}"
            )
        if old_size == 0 and proof:
            raise LogVerificationError("a consistency proof from size 0 must be empty", status=422)
        if latest is not None and old_size == checkpoint.size:
            if latest.root != checkpoint.root:
                reason = (
                    f"{origin}: size {size} has root {_b64(checkpoint.root)} but witness "
                    f"{self.name} cosigned root {_b64(latest.root)}: a forked log"
                )
                self._evidence(note, reason)
                raise LogForkError(reason, status=422)
        elif latest is not None and old_size:
            try:
                verify_consistency(old_size, checkpoint.size, latest.root, checkpoint.root, proof)
            except IntegrityError:
                reason = (
                    f"{origin}: the checkpoint of size {checkpoint.size} (root "
                    f"{_b64(checkpoint.root)}) is not proved consistent with size {size} "
                    f"(root {_b64(latest.root)}) that witness {self.name} cosigned"
                )
                self._evidence(note, reason)
                raise LogVerificationError(reason, status=422) from None

    def add_checkpoint_request(self, body: bytes) -> bytes:
        """``add-checkpoint`` from its HTTP request body (old size, proof lines, checkpoint)."""
        head, sep, note = body.partition(b"\n\n")
        lines = head.split(b"\n")
        if not sep or not lines[0].startswith(b"old "):
            raise LogVerificationError(
                "the request does not start with an old size line", status=400
            )
        size_text = lines[0][4:].decode("ascii", "replace")
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise LogVerificationError("the old size is not a decimal", status=400)
        try:
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
        except binascii.Error:
            raise LogVerificationError(
                "a consistency proof line is not base64", status=400
            ) from None
        if any(len(h) != 32 for h in proof):
            raise LogVerificationError("a consistency proof hash is not 32 bytes", status=400)
        return self.add_checkpoint(int(size_text), proof, note)


def _config_bytes(name: str, logs: dict[str, list[str]]) -> bytes:
    return canonical_json({"type": _CONFIG_TYPE, "name": name, "logs": logs})


@dataclass(frozen=True)
class WitnessRound:
    """One round of a witness against a store: what it cosigned and where it published it."""

    witness: str
    origin: str
    old_size: int
    size: int
    root: str
    published: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return dict(self.__dict__)


def witness_log(witness: Witness, store: ObjectStore, bucket: str) -> WitnessRound:
    """Cosign the log in ``bucket`` if it extends what ``witness`` cosigned, and publish it.

    LogForkError (naming sizes and roots) when the log was rolled back or forked
    from what the witness cosigned; LogVerificationError when its checkpoint is
    not signed by the keys the witness holds for it.
    """
    try:
        data = store.get_bytes(bucket, log_checkpoint_key(), limit=1 << 20)
    except NotFoundError:
        raise NotFoundError(f"bucket {bucket} holds no transparency log checkpoint") from None
    try:
        origin = parse_checkpoint(parse_note(data).text).origin
    except NoteError as exc:
        raise LogVerificationError(f"{bucket}/log/checkpoint: {exc.message}") from None
    log = TransparencyLog(store, bucket, origin, verifiers=witness.log_verifiers(origin))
    key = log_witness_key(witness.name)

    def publish(cosigned: bytes) -> None:
        store.put_bytes(bucket, key, cosigned, content_type=_NOTE)

    for _ in range(_ROUND_ATTEMPTS):
        # The witness's size first, then the checkpoint: whatever it cosigned was in the
        # store before, so a checkpoint read now is at least as large unless rolled back.
        latest = witness.latest(origin)
        old = latest.size if latest else 0
        try:
            signed = log.checkpoint()
        except IntegrityError as exc:
            raise LogVerificationError(
                f"{bucket}/log/checkpoint: {exc.message}", status=403
            ) from None
        new = signed.checkpoint
        proof: list[bytes] = []
        if 0 < old < new.size:
            try:
                proof = log.consistency(old, signed)
            except IntegrityError as exc:
                raise LogVerificationError(
                    f"{origin}: no consistency proof from size {old} in the tiles: {exc.message}"
                ) from None
        try:
            witness.add_checkpoint(old, proof, signed.note, publish=publish)
        except ConflictError:
            continue  # another round moved the witness on; prove from its new size
        except LogForkError:
            raise
        except LogVerificationError as exc:
            if exc.status == 422 and latest is not None:
                raise LogForkError(exc.message, status=422) from None
            raise
        return WitnessRound(witness.name, origin, old, new.size, _b64(new.root), key)
    raise ConflictError(f"{origin}: the witness's state kept moving; run the witness again")
