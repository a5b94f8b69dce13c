"""Verifying the whole transparency log, and proofs of single entries.

:func:`verify_log` walks the log a tile at a time (memory does not grow with
the log): every entry bundle against the level-0 tile, every full subtree
against the hash its parent tile holds, the root recomputed from the entries
against the signed checkpoint (both log signatures required), then
consistency with the checkpoint this host saw last and with the latest
checkpoint each required witness cosigned. Every problem is named (entry
index, tile path, sizes and roots); :meth:`LogReport.raise_for_problems` turns
them into :class:`~weightvault.errors.LogForkError` (a rollback or a fork) or
:class:`~weightvault.errors.LogVerificationError`.

:func:`prove_entry` emits a c2sp tlog-proof that anyone holding the log's
verifier keys can check (:func:`verify_entry_proof`, or any tlog-proof
verifier).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightvault._fs import write_private
from weightvault.crypto.notes import NoteError, NoteVerifier, parse_note, verify_note
from weightvault.errors import (
    IntegrityError,
    LogForkError,
    LogVerificationError,
    NotFoundError,
)
from weightvault.records._tlog import SignedCheckpoint, TransparencyLog
from weightvault.store.layout import LOG_PREFIX, log_witness_key
from weightvault.tlog import (
    TILE_WIDTH,
    Checkpoint,
    decode_bundle,
    empty_root,
    entries_path,
    leaf_hash,
    node_hash,
    open_checkpoint,
    parse_checkpoint,
    tile_path,
    verify_consistency,
    verify_tlog_proof,
)

__all__ = [
    "LogProblem",
    "LogReport",
    "WitnessedCheckpoint",
    "prove_entry",
    "read_witnessed",
    "verify_entry_proof",
    "verify_log",
]

_HASH = 32
_TILE_LIMIT = TILE_WIDTH * (_HASH + 2 + 0xFFFF)
_NOTE_LIMIT = 1 << 20
# Kinds of problem that mean two views of the log disagree (LogForkError).
_FORK_KINDS = frozenset({"rollback", "fork"})


@dataclass(frozen=True)
class LogProblem:
    """One thing wrong with the log: its kind, where (entry, tile path, object) and what."""

    kind: str
    where: str
    detail: str

    def line(self) -> str:
        """``<where>: <detail>``."""
        return f"{self.where}: {self.detail}"


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """The latest checkpoint a witness cosigned, as published in the audit bucket."""

    witness: str
    checkpoint: Checkpoint
    timestamp: int | None
    note: bytes

    def signed(self) -> SignedCheckpoint:
        """As a checkpoint to prove entries under (:func:`prove_entry`): its proofs then
        carry the witness's cosignature, so an offline verifier can require it."""
        return SignedCheckpoint(self.checkpoint, self.note)


@dataclass
class LogReport:
    """What :func:`verify_log` checked and found."""

    origin: str
    size: int = 0
    root: str = ""
    checkpoint_time: int | None = None
    checked: list[str] = field(default_factory=list)
    problems: list[LogProblem] = field(default_factory=list)
    omitted: int = 0
    last_seen_size: int | None = None
    witnesses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, kind: str, where: str, detail: str, limit: int) -> None:
        """Record a problem (beyond ``limit`` only counted, so memory stays bounded)."""
        if len(self.problems) < limit:
            self.problems.append(LogProblem(kind, where, detail))
        else:
            self.omitted += 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "origin": self.origin,
            "size": self.size,
            "root": self.root,
            "checkpoint_time": self.checkpoint_time,
            "checked": list(self.checked),
            "ok": self.ok,
            "problems": [p.__dict__ for p in self.problems],
            "problems_omitted": self.omitted,
            "last_seen_size": self.last_seen_size,
            "witnesses": list(self.witnesses),
        }

    def raise_for_problems(self) -> None:
        """LogForkError for a rollback or fork, else LogVerificationError; nothing if ok."""
        if self.ok:
            return
        forks = [p for p in self.problems if p.kind in _FORK_KINDS]
        first = (forks or self.problems)[0]
        more = len(self.problems) + self.omitted - 1
        message = f"log {self.origin}: {first.line()}" + (
            f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        )
        lines = [f"log {self.origin}: {p.line()}" for p in self.problems]
        if self.omitted:
            lines.append(f"log {self.origin}: and {self.omitted} more problems not shown")
        if forks:
            raise LogForkError(message, problems=lines)
        raise LogVerificationError(message, problems=lines)


def _short(root: bytes) -> str:
    return base64.b64encode(root).decode()


class _CompactRange:
    """The full subtrees of a growing tree (one per set bit of its size), hashed as leaves arrive.

    ``on_subtree(height, start, hash)`` sees every completed subtree whose height is
    a multiple of 8: those are the hashes the level ``height / 8`` tiles hold.
    """

    def __init__(self, on_subtree: Callable[[int, int, bytes], None] | None = None) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self._on_subtree = on_subtree

    def push(self, leaf: bytes, index: int) -> None:
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            node = node_hash(self._stack.pop()[1], node)
            height += 1
            if self._on_subtree is not None and height % 8 == 0:
                self._on_subtree(height, index + 1 - (1 << height), node)
        self._stack.append((height, node))

    def root(self) -> bytes:
        if not self._stack:
            return empty_root()
        root = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            root = node_hash(left, root)
        return root


class _Walker:
    """Streams the tiles of a tree of ``size`` leaves, keeping one tile per level.

    Two compact ranges run side by side: one over the entries' leaf hashes (its
    root must be the signed root), one over the level-0 tiles' hashes (each full
    subtree must be the hash its parent tile holds).
    """

    def __init__(self, log: TransparencyLog, size: int, report: LogReport, limit: int) -> None:
        self._log = log
        self._size = size
        self._report = report
        self._limit = limit
        self._entries = _CompactRange()
        self._tiles = _CompactRange(self._check_parent)
        self._parents: dict[int, tuple[int, list[bytes] | None]] = {}
        self.complete = True

    def _read(self, path: str) -> bytes | None:
        try:
            return self._log.store.get_bytes(
                self._log.bucket, f"{LOG_PREFIX}{path}", limit=_TILE_LIMIT
            )
        except NotFoundError:
            self._report.add("tile", f"{LOG_PREFIX}{path}", "missing", self._limit)
        except IntegrityError as exc:
            self._report.add("tile", f"{LOG_PREFIX}{path}", exc.message, self._limit)
        return None

    def _hashes(self, path: str, width: int) -> list[bytes] | None:
        data = self._read(path)
        if data is None:
            return None
        if len(data) != width * _HASH:
            self._report.add(
                "tile",
                f"{LOG_PREFIX}{path}",
                f"is {len(data)} bytes, not {width} hashes",
                self._limit,
            )
            return None
        return [data[i : i + _HASH] for i in range(0, len(data), _HASH)]

    def _check_parent(self, height: int, start: int, node: bytes) -> None:
        level = height // 8
        position = start // TILE_WIDTH**level
        count = self._size // TILE_WIDTH**level
        tile = position // TILE_WIDTH
        width = min(TILE_WIDTH, count - tile * TILE_WIDTH)
        path = tile_path(level, tile, width)
        held = self._parents.get(level)
        if held is None or held[0] != tile:
            held = (tile, self._hashes(path, width))
            self._parents[level] = held
        hashes = held[1]
        if hashes is not None and hashes[position % TILE_WIDTH] != node:
            child = tile_path(level - 1, position)
            self._report.add(
                "tile",
                f"{LOG_PREFIX}{path}",
                f"hash {position} is not the hash of the tile below it, {LOG_PREFIX}{child}",
                self._limit,
            )

    def walk(self) -> bytes | None:
        """The root recomputed from the entries (None if some hashes could not be read)."""
        for tile in range(-(-self._size // TILE_WIDTH)):
            width = min(TILE_WIDTH, self._size - tile * TILE_WIDTH)
            bundle_path = entries_path(tile, width)
            hashes_path = tile_path(0, tile, width)
            hashes = self._hashes(hashes_path, width)
            entries: list[bytes] | None = None
            data = self._read(bundle_path)
            if data is not None:
                try:
                    entries = decode_bundle(data, width)
                except IntegrityError as exc:
                    self._report.add(
                        "entry", f"{LOG_PREFIX}{bundle_path}", exc.message, self._limit
                    )
            for offset in range(width):
                index = tile * TILE_WIDTH + offset
                from_entry = leaf_hash(entries[offset]) if entries is not None else None
                from_tile = hashes[offset] if hashes is not None else None
                if from_entry is not None and from_tile is not None and from_entry != from_tile:
                    self._report.add(
                        "entry",
                        f"entry {index}",
                        f"does not match its hash in {LOG_PREFIX}{hashes_path}",
                        self._limit,
                    )
                if from_entry is None and from_tile is None:
                    self.complete = False
                self._entries.push(from_entry or from_tile or bytes(_HASH), index)
                self._tiles.push(from_tile or from_entry or bytes(_HASH), index)
        return self._entries.root() if self.complete else None


def _compare(
    log: TransparencyLog,
    old: Checkpoint,
    new: SignedCheckpoint,
    label: str,
    report: LogReport,
    limit: int,
) -> None:
    """Record a rollback or fork unless ``new`` extends ``old`` (proved from the tiles)."""
    cur = new.checkpoint
    if old.size > cur.size:
        report.add(
            "rollback",
            "log/checkpoint",
            f"the log has {cur.size} entries but {label} had {old.size}: the log was rolled back",
            limit,
        )
        return
    if old.size == cur.size:
        if old.root != cur.root:
            report.add(
                "fork",
                "log/checkpoint",
                f"size {cur.size} has root {_short(cur.root)} but {label} had root "
                f"{_short(old.root)}: a forked log",
                limit,
            )
        return
    if old.size == 0:
        return
    try:
        proof = log.consistency(old.size, new)
        verify_consistency(old.size, cur.size, old.root, cur.root, proof)
    except IntegrityError:
        report.add(
            "fork",
            "log/checkpoint",
            f"the log of size {cur.size} (root {_short(cur.root)}) does not extend size "
            f"{old.size} (root {_short(old.root)}) that {label} had: a forked log",
            limit,
        )


def read_witnessed(log: TransparencyLog, witness: NoteVerifier) -> WitnessedCheckpoint:
    """The latest checkpoint ``witness`` cosigned for ``log``, every signature checked.

    NotFoundError if the witness published none; LogVerificationError if it is not
    signed by both the log's keys and the witness, or is of another log.
    """
    key = log_witness_key(witness.name)
    data = log.store.get_bytes(log.bucket, key, limit=_NOTE_LIMIT)
    try:
        note = verify_note(data, [witness, *log.verifiers])
        checkpoint = parse_checkpoint(note.text)
    except NoteError as exc:
        raise LogVerificationError(f"{key}: {exc.message}") from None
    if checkpoint.origin != log.origin:
        raise LogVerificationError(f"{key}: a checkpoint of log {checkpoint.origin!r}")
    return WitnessedCheckpoint(
        witness.name, checkpoint, getattr(witness, "last_timestamp", None), data
    )


def verify_log(
    log: TransparencyLog,
    *,
    last_seen: Path | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    max_problems: int = 100,
    update_last_seen: bool = True,
) -> LogReport:
    """Check the whole log; a report naming every problem (nothing raised for them).

    ``last_seen`` is this host's saved checkpoint: the log must extend it, and it
    is replaced (atomically, 0600) by the verified checkpoint only when nothing is
    wrong. Each of ``witnesses`` must have cosigned a checkpoint the log extends.
    """
    report = LogReport(log.origin)
    try:
        signed = log.checkpoint()
    except IntegrityError as exc:
        report.add("checkpoint", "log/checkpoint", exc.message, max_problems)
        return report
    cur = signed.checkpoint
    report.size, report.root = cur.size, _short(cur.root)
    report.checkpoint_time = next(
        (
            t
            for t in (getattr(v, "last_timestamp", None) for v in log.verifiers)
            if isinstance(t, int)
        ),
        None,
    )
    report.checked.append(f"checkpoint signed by {', '.join(v.name for v in log.verifiers)}")

    root = _Walker(log, cur.size, report, max_problems).walk()
    report.checked.append(f"{cur.size} entries against their tiles, tiles against their parents")
    if root is None:
        report.add(
            "root",
            "log/checkpoint",
            "the root cannot be recomputed: hashes are missing",
            max_problems,
        )
    elif root != cur.root:
        report.add(
            "root",
            "log/checkpoint",
            f"the entries hash to {_short(root)}, not the signed root {_short(cur.root)}",
            max_problems,
        )
    else:
        report.checked.append("root recomputed from the entries")

    if last_seen is not None and last_seen.is_file():
        try:
            old = open_checkpoint(last_seen.read_bytes(), log.origin, log.verifiers)
        except (OSError, IntegrityError) as exc:
            report.add(
                "last-seen", str(last_seen), f"cannot be read or verified: {exc}", max_problems
            )
        else:
            report.last_seen_size = old.size
            _compare(log, old, signed, "the checkpoint this host saw last", report, max_problems)
            report.checked.append(f"consistent with the last checkpoint seen (size {old.size})")

    for witness in witnesses:
        key = log_witness_key(witness.name)
        try:
            seen = read_witnessed(log, witness)
        except NotFoundError:
            report.add("witness", key, f"witness {witness.name} has cosigned nothing", max_problems)
            continue
        except IntegrityError as exc:
            report.add("witness", key, exc.message, max_problems)
            continue
        report.witnesses.append(
            {"name": witness.name, "size": seen.checkpoint.size, "timestamp": seen.timestamp}
        )
        _compare(
            log,
            seen.checkpoint,
            signed,
            f"witness {witness.name}'s cosigned checkpoint",
            report,
            max_problems,
        )
        report.checked.append(f"cosigned by witness {witness.name} at size {seen.checkpoint.size}")

    if report.ok and last_seen is not None and update_last_seen and signed.note:
        write_private(last_seen, signed.note)
    return report


def prove_entry(log: TransparencyLog, index: int, signed: SignedCheckpoint | None = None) -> bytes:
    """A c2sp tlog-proof of entry ``index`` under ``signed`` (default: the current checkpoint)."""
    signed = signed or log.checkpoint()
    if not 0 <= index < signed.checkpoint.size:
        raise NotFoundError(
            f"log {log.origin} has no entry {index} (its size is {signed.checkpoint.size})"
        )
    return log.prove(index, signed).encode().encode()


def verify_entry_proof(
    proof: bytes,
    entry: bytes,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Check a tlog-proof of ``entry`` offline: every verifier's signature, then inclusion.

    ``origin`` defaults to the proof's own checkpoint origin (the signatures bind it).
    LogVerificationError on any failure.
    """
    if not verifiers:
        raise LogVerificationError("verifying a log proof needs the log's verifier keys")
    try:
        text = proof.decode("utf-8")
        if origin is None:
            _, _, note = text.partition("\n\n")
            origin = parse_checkpoint(parse_note(note.encode()).text).origin
        return verify_tlog_proof(text, leaf_hash(entry), origin, list(verifiers))
    except UnicodeDecodeError:
        raise LogVerificationError("the log proof is not UTF-8") from None
    except IntegrityError as exc:
        raise LogVerificationError(f"the log proof does not verify: {exc.message}") from None
