"""Verifying the audit trail: the steps ``weightvault audit verify`` (and a flow) run.

1. :func:`open_readonly_log`: the vault's log, opened to read and verify only;
2. :func:`~weightvault.lifecycle.witness.check_log`: the whole log, both checkpoint
   signatures, consistency with this host's last-seen checkpoint, every required
   witness;
3. :func:`check_index`: the catalog's ``log_entries`` index agrees with the log,
   row by row (an edited row, a missing row, a row of no entry are each named);
4. :func:`check_principals`: every entry is signed by the principal it names, with
   the key the trust root in force at that point of the log enrols under that name;
5. :func:`check_store`: the store agrees with the log: every artifact the log records
   (and has not deleted) holds, in the tier of its latest logged state, the manifest,
   statement and envelope bytes that state names (a restored older version, a swapped
   or missing object is named); every committed artifact in the store is one the log
   records; every signed statement the log names is in the audit bucket with the bytes
   it recorded;
6. :func:`render_report`: a short human summary (the JSON is ``report.to_dict()``).

:func:`verify_audit` runs them in a row.

:func:`prove_event` emits the c2sp tlog-proof of one entry (by event id, operation
id or ``#INDEX``); :func:`check_proof` checks one offline with only the log's
verifier keys (given, or the ``log`` keys of a trust root). Problems are collected in the report;
``report.raise_for_problems()`` turns them into LogVerificationError (27) or
LogForkError (29), one line each.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weightvault.artifacts import (
    REWRAP_KIND,
    STATE_KINDS,
    LoggedState,
    Vault,
    bootstrap_principals,
    log_origin,
    open_log,
    sha256_hex,
    stored_roots,
)
from weightvault.catalog import Catalog
from weightvault.config import TIERS
from weightvault.crypto.notes import verifier_from_vkey
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    LogVerificationError,
    NotFoundError,
    StoreRoleDeniedError,
    TrustRootError,
    VaultError,
)
from weightvault.lifecycle.witness import check_log
from weightvault.provenance import Principal, Root, verify_root, verify_successor
from weightvault.records import (
    Event,
    LogReport,
    TransparencyLog,
    prove_entry,
    verify_entry_proof,
)
from weightvault.store.layout import (
    envelope_key,
    log_sequenced_key,
    manifest_key,
    statement_key,
)
from weightvault.tlog import parse_tlog_proof

__all__ = [
    "CheckedProof",
    "EventProof",
    "check_index",
    "check_principals",
    "check_proof",
    "check_store",
    "open_readonly_log",
    "prove_event",
    "render_report",
    "resolve_event",
    "verify_audit",
]

_INDEX_LIMIT = 100
# Columns of a log_entries row, compared one by one so a problem names the edited ones.
_ROW_FIELDS = (
    "id",
    "ts",
    "kind",
    "phase",
    "op",
    "principal",
    "artifact_id",
    "tier",
    "outcome",
    "reason",
    "entry",
)


def open_readonly_log(vault: Vault) -> TransparencyLog:
    """The vault's transparency log with its verifiers and no signer."""
    return open_log(vault.settings, vault.store, vault.keys, writable=False)


def _expected(index: int, entry: bytes) -> dict[str, Any] | None:
    try:
        return Event.parse(entry).log_row(index)
    except IntegrityError:
        return None


def _differs(row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return [f for f in _ROW_FIELDS if row.get(f) != expected.get(f)]


def _entries(log: TransparencyLog, report: LogReport) -> Iterator[tuple[int, bytes]]:
    """The log's entries, or none (with a problem) when they cannot be read against the tiles."""
    try:
        yield from log.iter_entries()
    except IntegrityError as exc:
        report.add(
            "index",
            "catalog log_entries",
            f"cannot be compared with the log: {exc.message}",
            _INDEX_LIMIT,
        )


def _pending(log: TransparencyLog, index: int) -> bytes | None:
    """A sequenced entry not yet in a checkpoint (an operation still running, or cut short)."""
    try:
        return log.store.get_bytes(log.bucket, log_sequenced_key(index), limit=1 << 20)
    except NotFoundError:
        return None


def _compare(row: dict[str, Any], index: int, entry: bytes, report: LogReport, label: str) -> bool:
    """True when ``row`` is the index row of ``entry``, else a problem naming what differs."""
    expected = _expected(index, entry)
    if expected is None:
        report.add("index", f"log entry {index}", "is not an audit event", _INDEX_LIMIT)
        return False
    edited = _differs(row, expected)
    if edited:
        report.add(
            "index",
            f"catalog log_entries row {index}",
            f"differs from {label} in {', '.join(edited)}",
            _INDEX_LIMIT,
        )
    return not edited


def _stray(log: TransparencyLog, row: dict[str, Any], report: LogReport) -> bool:
    """A row of no checkpointed entry: pending (True) if it is the entry sequenced there."""
    idx = int(row["idx"])
    sequenced = _pending(log, idx) if idx >= report.size else None
    if sequenced is None:
        report.add("index", f"catalog log_entries row {idx}", "indexes no log entry", _INDEX_LIMIT)
        return False
    return _compare(row, idx, sequenced, report, f"the entry sequenced at {idx} (not checkpointed)")


def check_index(log: TransparencyLog, catalog: Catalog, report: LogReport) -> dict[str, int]:
    """Add a problem to ``report`` for every ``log_entries`` row that is not the log's entry.

    Rows and entries are walked side by side in index order (memory does not
    grow with the log). A row past the checkpoint must be the entry sequenced at
    its index (counted as pending). Returns the counts: rows, agreeing, pending.
    """
    counts = {"rows": 0, "agree": 0, "pending": 0}
    rows = catalog.iter_log_rows()
    row = next(rows, None)
    for index, entry in _entries(log, report):
        while row is not None and row["idx"] < index:
            counts["rows"] += 1
            _stray(log, row, report)
            row = next(rows, None)
        if row is None or row["idx"] != index:
            report.add(
                "index", f"log entry {index}", "is missing from the catalog's index", _INDEX_LIMIT
            )
            continue
        counts["rows"] += 1
        counts["agree"] += _compare(row, index, entry, report, f"log entry {index}")
        row = next(rows, None)
    while row is not None:
        counts["rows"] += 1
        counts["pending"] += _stray(log, row, report)
        row = next(rows, None)
    if not any(p.kind == "index" for p in report.problems):
        report.checked.append(
            f"catalog index: {counts['agree']} rows agree with the log"
            + (f", {counts['pending']} pending" if counts["pending"] else "")
        )
    return counts


def _verified_chain(vault: Vault) -> list[Root]:
    """The stored roots, each verified as the successor of the one before (v1 by itself)."""
    chain = stored_roots(vault.settings, vault.store)
    previous: Root | None = None
    for root in chain:
        if previous is None:
            if root.version != 1:
                raise TrustRootError(f"the trust root chain starts at v{root.version}, not v1")
            verify_root(root)
        else:
            verify_successor(previous, root)
        previous = root
    return chain


def _by_key(principals: tuple[Principal, ...]) -> dict[str, Principal]:
    return {p.keyid: p for p in principals}


class _PrincipalCheck:
    """The walk of :func:`check_principals`: the enrolment in force and open operations."""

    def __init__(self, vault: Vault, chain: dict[int, Root], report: LogReport) -> None:
        self.chain = chain
        self.report = report
        self.bootstrap = bootstrap_principals(vault.keys)
        first = chain.get(1)
        self.in_force = _by_key(self.bootstrap + (first.principals if first else ()))
        self.where = "the bootstrap enrolment"
        self.origin = log_origin(vault.settings)
        self.intents: dict[str, Principal | None] = {}
        self.seen_signed = False
        self.counts = {"signed": 0, "legacy": 0, "unenrolled": 0}

    def problem(self, index: int, event: Event, detail: str) -> None:
        self.report.add(
            "principal", f"log entry {index}", f"({event.kind} {event.phase}) {detail}", 100
        )

    def entry(self, index: int, event: Event) -> None:
        keyid, name = event.keyid, event.principal.get("name")
        if keyid is None:
            if self.seen_signed:
                self.problem(index, event, "is not signed by a principal")
            else:
                self.counts["legacy"] += 1
            return
        self.seen_signed = True
        enrolled = self.in_force.get(keyid)
        if event.phase == "outcome" and event.op in self.intents:
            enrolled = self.intents.pop(event.op)
        if name is None:
            self.unenrolled(index, event, keyid)
            return
        if enrolled is None or enrolled.keyid != keyid:
            detail = f"names {name!r:.70} but {self.where} does not enrol key {keyid[:16]}"
            self.problem(index, event, detail)
            enrolled = None
        elif enrolled.name != name:
            self.problem(
                index, event, f"names {name!r:.70} but its key is enrolled as {enrolled.name}"
            )
        elif not event.signature_valid(self.origin, enrolled.public_key):
            self.problem(index, event, f"does not carry a valid signature by {name}")
        else:
            self.counts["signed"] += 1
        if event.phase == "intent":
            self.intents[event.op] = enrolled
        if event.kind == "trust.root_published" and event.outcome == "ok":
            self.published(index, event)

    def unenrolled(self, index: int, event: Event, keyid: str) -> None:
        self.counts["unenrolled"] += 1
        if event.phase == "intent":
            self.intents[event.op] = None
        elif event.outcome != "refused":
            self.problem(index, event, f"by key {keyid[:16]}, enrolled by nobody, is not a refusal")

    def published(self, index: int, event: Event) -> None:
        version = event.details.get("version")
        root = self.chain.get(version) if isinstance(version, int) else None
        if root is None:
            self.problem(index, event, f"records trust root v{version}, which the store lacks")
            return
        self.in_force = _by_key(root.principals or self.bootstrap)
        self.where = f"trust root v{root.version}"


def check_principals(vault: Vault, log: TransparencyLog, report: LogReport) -> dict[str, int]:
    """Add a problem for every entry not signed by the principal it names.

    The enrolment in force changes where the log records a trust root published
    (the ok outcome of ``trust.root_published``): before the first one it is the
    bootstrap enrolment (the keystore's, and version 1's); after version N it is
    N's principals (or the bootstrap enrolment if N lists none). An outcome is
    checked against the enrolment of its intent. An entry by a key nobody
    enrolled (name null) may only be a refused attempt. Unsigned entries are
    accepted only before the log's first signed one (a log begun before
    principals existed). Returns the counts: signed, legacy, unenrolled attempts.
    """
    try:
        chain = {r.version: r for r in _verified_chain(vault)}
    except TrustRootError as exc:
        report.add("principal", "trust root", f"cannot name the principals: {exc.message}", 100)
        return {"signed": 0, "legacy": 0, "unenrolled": 0}
    check = _PrincipalCheck(vault, chain, report)
    before = len(report.problems) + report.omitted
    try:
        for index, entry in log.iter_entries():
            try:
                event = Event.parse(entry)
            except IntegrityError:
                continue  # named by the index check
            check.entry(index, event)
    except IntegrityError as exc:
        report.add("principal", "log entries", f"cannot be read: {exc.message}", 100)
    counts = check.counts
    if len(report.problems) + report.omitted == before:
        report.checked.append(
            f"principals: {counts['signed']} entries signed by enrolled keys"
            + (
                f", {counts['unenrolled']} refused unenrolled attempts"
                if counts["unenrolled"]
                else ""
            )
            + (f", {counts['legacy']} unsigned from before principals" if counts["legacy"] else "")
        )
    return counts


_STORE_LIMIT = 100


@dataclass
class _Objects:
    """What the log says of one artifact: its latest state entry, the latest rotation
    entry naming it since, and whether it was deleted after."""

    state: tuple[int, Event] | None = None
    rewrap: tuple[int, Event] | None = None
    deleted: bool = False


def _logged_objects(
    log: TransparencyLog, report: LogReport
) -> tuple[dict[str, _Objects], list[tuple[int, dict[str, str]]]]:
    """Per artifact, the entries its current objects must match; every statement named."""
    found: dict[str, _Objects] = {}
    statements: list[tuple[int, dict[str, str]]] = []
    for index, entry in log.verified_entries():
        event = Event.parse(entry)
        if event.phase != "outcome" or event.outcome != "ok":
            continue
        ref = event.details.get("statement")
        if isinstance(ref, dict) and all(isinstance(ref.get(k), str) for k in ("key", "sha256")):
            statements.append((index, {"key": ref["key"], "sha256": ref["sha256"]}))
        if event.kind == REWRAP_KIND:
            envelopes = event.details.get("envelopes")
            for artifact_id in envelopes if isinstance(envelopes, dict) else ():
                objects = found.get(str(artifact_id))
                if objects is not None and objects.state is not None:
                    objects.rewrap = (index, event)
        elif (
            event.artifact_id
            and event.kind in STATE_KINDS
            # A recovery without --restore records no state (it changes no object).
            and isinstance(event.details.get("state"), dict)
        ):
            found[event.artifact_id] = _Objects(state=(index, event))
        elif event.artifact_id and event.kind == "artifact.deleted":
            found.setdefault(event.artifact_id, _Objects()).deleted = True
    return found, statements


def _stored(vault: Vault, bucket: str, key: str) -> bytes | None:
    try:
        return vault.store.get_bytes(bucket, key, limit=1 << 24)
    except NotFoundError:
        return None


def check_store(vault: Vault, log: TransparencyLog, report: LogReport) -> dict[str, int]:
    """The store agrees with the log (see the module docstring, step 5); problems named."""
    before = len(report.problems) + report.omitted
    try:
        logged, statements = _logged_objects(log, report)
        counts = _check_objects(vault, logged, report)
        counts["statements"] = _check_statements(vault, statements, report)
    except StoreRoleDeniedError as exc:
        report.checked.append(f"store: not checked, this credential may not read it ({exc})")
        return {}
    except IntegrityError as exc:
        report.add("store", "log entries", f"cannot be read: {exc.message}", _STORE_LIMIT)
        return {}
    if len(report.problems) + report.omitted == before:
        report.checked.append(
            f"store: {counts['artifacts']} artifacts hold the objects their latest logged "
            f"state names, {counts['statements']} signed statements as logged"
        )
    return counts


def _check_objects(vault: Vault, logged: dict[str, _Objects], report: LogReport) -> dict[str, int]:
    checked = 0
    for artifact_id, objects in sorted(logged.items()):
        if objects.state is None or objects.deleted:
            continue
        events = [objects.state] + ([objects.rewrap] if objects.rewrap else [])
        latest = LoggedState.from_events(artifact_id, events).latest
        if latest is None:
            continue
        bucket = vault.bucket(latest.tier)
        stored = {
            "manifest": _stored(vault, bucket, manifest_key(artifact_id)),
            "statement": _stored(vault, bucket, statement_key(artifact_id)),
            "envelope": _stored(
                vault, vault.bucket("envelopes"), envelope_key(artifact_id, latest.tier)
            ),
        }
        checked += 1
        for what, data in stored.items():
            where = f"artifact {artifact_id}"
            if data is None:
                detail = (
                    f"its {what} is missing from {latest.tier}, where log entry "
                    f"{latest.index} ({latest.kind}) recorded it"
                )
                report.add("store", where, detail, _STORE_LIMIT)
            elif sha256_hex(data) != latest.digest(what):
                detail = (
                    f"its {what} in {latest.tier} is not the one log entry {latest.index} "
                    f"({latest.kind}) recorded (an older version restored, or another "
                    "object put in its place)"
                )
                report.add("store", where, detail, _STORE_LIMIT)
    for tier in TIERS:
        for artifact_id in sorted(vault.committed_ids(tier)):
            known = logged.get(artifact_id)
            if known is None or known.state is None:
                detail = f"committed in {tier} but the log records no state of it"
                report.add("store", f"artifact {artifact_id}", detail, _STORE_LIMIT)
    return {"artifacts": checked}


def _check_statements(
    vault: Vault, statements: list[tuple[int, dict[str, str]]], report: LogReport
) -> int:
    bucket = vault.bucket("audit")
    for index, ref in statements:
        data = _stored(vault, bucket, ref["key"])
        if data is None:
            detail = f"names signed statement {ref['key']}, which is missing from the store"
            report.add("store", f"entry {index}", detail, _STORE_LIMIT)
        elif sha256_hex(data) != ref["sha256"]:
            detail = f"names signed statement {ref['key']}, whose bytes were changed"
            report.add("store", f"entry {index}", detail, _STORE_LIMIT)
    return len(statements)


def verify_audit(vault: Vault) -> tuple[LogReport, dict[str, int]]:
    """Every step in a row: what ``weightvault audit verify`` does (nothing raised for
    problems; see :meth:`LogReport.raise_for_problems`)."""
    log = open_readonly_log(vault)
    report = check_log(log, vault.settings)
    counts = check_index(log, vault.catalog, report)
    check_principals(vault, log, report)
    try:
        check_store(vault, log, report)
    except VaultError as exc:
        report.add("store", "the store", f"cannot be read: {exc.message}", _STORE_LIMIT)
    return report, counts


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "unknown"
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def render_report(report: LogReport, counts: dict[str, int]) -> str:
    """A short summary: size, root, checkpoint time, witnesses, then every problem."""
    lines = [
        f"log {report.origin}",
        f"  size {report.size}, root {report.root or '-'}",
        f"  checkpoint time {_when(report.checkpoint_time)}",
    ]
    if report.last_seen_size is not None:
        lines.append(f"  last seen by this host: size {report.last_seen_size}")
    witnesses = ", ".join(f"{w['name']} at size {w['size']}" for w in report.witnesses)
    lines.append(f"  witnesses: {witnesses or 'none required'}")
    lines.append(
        f"  catalog index: {counts['rows']} rows, {counts['agree']} agree"
        + (f", {counts['pending']} pending" if counts["pending"] else "")
    )
    if report.ok:
        lines.append("ok: " + "; ".join(report.checked))
    else:
        total = len(report.problems) + report.omitted
        lines.append(f"{total} problem{'s' if total != 1 else ''}:")
        lines += [f"  - {p.line()}" for p in report.problems]
        if report.omitted:
            lines.append(f"  - and {report.omitted} more")
    return "\n".join(lines)


# -- proofs of single entries ----------------------------------------------------


@dataclass(frozen=True)
class EventProof:
    """A c2sp tlog-proof of one log entry, with the entry's exact bytes."""

    index: int
    size: int
    proof: bytes
    entry: bytes

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the index, the checkpoint size, the proof text and the event."""
        return {
            "index": self.index,
            "size": self.size,
            "proof": self.proof.decode(),
            "event": _event_summary(self.entry),
        }


def _event_summary(entry: bytes) -> dict[str, Any]:
    event = Event.parse(entry)
    return {
        "id": event.id,
        "op": event.op,
        "kind": event.kind,
        "phase": event.phase,
        "outcome": event.outcome,
        "artifact_id": event.artifact_id,
        "ts": event.ts,
    }


def resolve_event(vault: Vault, ref: str) -> int:
    """The log index ``ref`` names: ``#INDEX``, an event id, or an operation id (its
    outcome). Found through the catalog's index; :func:`prove_event` then checks the
    entry itself. NotFoundError if nothing matches, InvalidInputError if malformed."""
    if ref.startswith("#"):
        digits = ref[1:]
        if not digits.isdigit():
            raise InvalidInputError(f"{ref!r}: a log index is #<decimal>")
        return int(digits)
    rows = [r for r in vault.catalog.log_search(ref=ref, limit=4) if ref in (r["id"], r["op"])]
    by_id = [r for r in rows if r["id"] == ref]
    outcomes = [r for r in rows if r["op"] == ref and r["phase"] == "outcome"]
    if by_id:
        return int(by_id[0]["idx"])
    if outcomes:
        return int(outcomes[0]["idx"])
    if rows:
        raise NotFoundError(f"operation {ref} has no outcome in the log yet")
    raise NotFoundError(f"no log entry or operation {ref!r} in the index")


def prove_event(vault: Vault, ref: str) -> EventProof:
    """The tlog-proof of the entry ``ref`` names, under the current signed checkpoint.

    The entry is read from the log (checked against its tile) and must be the
    event ``ref`` names, so an edited catalog index cannot get another entry proved.
    """
    index = resolve_event(vault, ref)
    log = open_readonly_log(vault)
    signed = log.checkpoint()
    proof = prove_entry(log, index, signed)
    entry = log.entries(index, index + 1)[0]
    event = Event.parse(entry)
    if not ref.startswith("#") and ref not in (event.id, event.op):
        raise LogVerificationError(
            f"log entry {index} is not {ref}: the catalog's index of the log was edited"
        )
    verify_entry_proof(proof, entry, log.verifiers, origin=log.origin)
    return EventProof(index, signed.checkpoint.size, proof, entry)


@dataclass(frozen=True)
class CheckedProof:
    """What :func:`check_proof` verified."""

    origin: str
    size: int
    root: str
    index: int
    verifiers: tuple[str, ...]
    event: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": True,
            "origin": self.origin,
            "size": self.size,
            "root": self.root,
            "index": self.index,
            "verifiers": list(self.verifiers),
            "event": self.event,
        }


def check_proof(proof: bytes, entry: bytes, vkeys: Sequence[str]) -> CheckedProof:
    """Check a tlog-proof of ``entry`` offline: signed by every one of ``vkeys`` (the
    log's), the entry included under that checkpoint. LogVerificationError if not."""
    if not vkeys:
        raise InvalidInputError("checking a log proof needs the log's verifier keys")
    verifiers = [verifier_from_vkey(v) for v in vkeys]
    checkpoint = verify_entry_proof(proof, entry, verifiers)
    index = parse_tlog_proof(proof.decode()).index
    event: dict[str, Any] | None
    try:
        event = _event_summary(entry)
    except IntegrityError:
        event = None
    return CheckedProof(
        checkpoint.origin,
        checkpoint.size,
        base64.b64encode(checkpoint.root).decode(),
        index,
        tuple(v.name for v in verifiers),
        event,
    )
