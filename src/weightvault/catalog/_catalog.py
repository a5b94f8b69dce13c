"""The catalog: a SQL index (SQLite by default, or PostgreSQL) over what the store holds.

It is an index, not the source of truth: :func:`weightvault.lifecycle.rebuild.rebuild_catalog`
reconstructs every row from the store. It never holds key material.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError

from weightvault._database import SQLITE, backend, database_url, open_engine, shown
from weightvault._fs import create_private_file
from weightvault.catalog._migrate import upgrade
from weightvault.catalog._schema import (
    TABLES,
    artifacts,
    claims,
    damage,
    envelopes,
    events,
    files,
    log_entries,
    placements,
)
from weightvault.errors import (
    AmbiguousIdError,
    ConflictError,
    DatabaseConfigError,
    DiskFullError,
    NotFoundError,
)


@dataclass(frozen=True)
class IndexedArtifact:
    """Every catalog row of one artifact, as a rebuild collects them before the swap."""

    artifact: dict[str, Any]
    files: tuple[dict[str, Any], ...]
    placement: dict[str, Any]
    envelopes: tuple[dict[str, Any], ...]
    damage: str | None = None


@dataclass(frozen=True)
class ClaimOwner:
    """Who takes a claim: host, process (pid and start time), and the lease's end (ISO 8601)."""

    host: str
    pid: int
    started: float
    lease_until: str


@dataclass(frozen=True)
class ClaimHolder:
    """A pending claim as the catalog holds it; ``owner`` is None for a claim without one."""

    artifact_id: str
    source: str
    target: str
    generation: int
    owner: ClaimOwner | None


@dataclass(frozen=True)
class ArtifactRow:
    """An artifact as the catalog knows it."""

    id: str
    name: str
    content_digest: str
    manifest_sha256: str
    created_at: str
    creator: str
    tier: str
    file_count: int
    total_size: int
    signed_by: str | None
    validation_status: str | None
    validation_sha256: str | None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # The timeout first: switching to WAL takes a lock another opener may hold.
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Catalog:
    """Reads and writes of the index, each write in one transaction."""

    def __init__(self, url: str) -> None:
        parsed = database_url(url, "catalog")
        self.backend = backend(parsed)
        lock_file = None
        if self.backend == SQLITE and parsed.database not in (None, "", ":memory:"):
            db = Path(parsed.database)
            db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # SQLite gives its -wal and -shm files the database file's mode.
            create_private_file(db)
            lock_file = db.with_name(db.name + ".migrate-lock")
        self.engine: Engine = open_engine(parsed, "catalog")
        if self.backend == SQLITE:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._where = parsed.database or ":memory:"
        else:
            self._where = shown(parsed)
        try:
            upgrade(self.engine, lock_file)
        except OperationalError as exc:
            self._raise_if_full(exc)
            raise DatabaseConfigError(
                f"cannot open the catalog {self._where}: {exc.orig}"
            ) from None

    def _raise_if_full(self, exc: OperationalError) -> None:
        # SQLITE_FULL, or the journal that could not be created on a full disk.
        if "full" in str(exc.orig).lower():
            raise DiskFullError(
                f"no space left for the catalog {self._where}: free space in the vault home"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of writes (DiskFullError when the catalog's disk is full)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            self._raise_if_full(exc)
            raise

    # -- writes ------------------------------------------------------------

    def add_artifact(
        self,
        conn: Connection,
        artifact: dict[str, Any],
        file_rows: Sequence[dict[str, Any]],
        placement: dict[str, Any],
        envelope: dict[str, Any],
    ) -> None:
        """Insert an artifact with its files, placement and envelope."""
        try:
            conn.execute(insert(artifacts), [artifact])
        except SAIntegrityError:
            raise ConflictError(f"artifact {artifact['id']} is already in the catalog") from None
        if file_rows:
            conn.execute(insert(files), list(file_rows))
        conn.execute(insert(placements), [placement])
        conn.execute(insert(envelopes), [envelope])

    def add_event(self, conn: Connection, row: dict[str, Any]) -> None:
        """Index an event (idempotent on its id, also when two writers add it at once)."""
        self._insert_new(conn, events, row, events.c.id)

    def add_log_entry(self, conn: Connection, row: dict[str, Any]) -> None:
        """Index a log entry (idempotent on its index, also when two writers add it at once)."""
        self._insert_new(conn, log_entries, row, log_entries.c.idx)

    def _insert_new(self, conn: Connection, table: Table, row: dict[str, Any], key: Any) -> None:
        dialect_insert = pg_insert if self.backend != SQLITE else sqlite_insert
        conn.execute(dialect_insert(table).on_conflict_do_nothing(index_elements=[key]), [row])

    def log_indexes(self, below: int) -> tuple[int, set[int] | None]:
        """How many entries below index ``below`` are indexed, and (only when some are
        missing) which ones are."""
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(log_entries).where(log_entries.c.idx < below)
            ).scalar_one()
            if count >= below:
                return int(count), None
            have = conn.execute(select(log_entries.c.idx).where(log_entries.c.idx < below))
            return int(count), {int(r[0]) for r in have}

    def log_history(self, artifact_id: str, below: int) -> list[tuple[int, str]]:
        """(index, entry text) of every ok outcome of ``artifact_id`` below index ``below``,
        in log order."""
        query = (
            select(log_entries.c.idx, log_entries.c.entry)
            .where(
                (log_entries.c.artifact_id == artifact_id)
                & (log_entries.c.phase == "outcome")
                & (log_entries.c.outcome == "ok")
                & (log_entries.c.idx < below)
            )
            .order_by(log_entries.c.idx)
        )
        with self.engine.connect() as conn:
            return [(int(r[0]), str(r[1])) for r in conn.execute(query).all()]

    def log_mentions(self, kind: str, text: str, after: int) -> list[tuple[int, str]]:
        """(index, entry text) of the ok outcomes of ``kind`` after index ``after`` whose
        entry contains ``text``, newest first (a locator only: the caller parses and
        proves what it uses)."""
        query = (
            select(log_entries.c.idx, log_entries.c.entry)
            .where(
                (log_entries.c.kind == kind)
                & (log_entries.c.phase == "outcome")
                & (log_entries.c.outcome == "ok")
                & (log_entries.c.idx > after)
                & log_entries.c.entry.contains(text, autoescape=True)
            )
            .order_by(log_entries.c.idx.desc())
        )
        with self.engine.connect() as conn:
            return [(int(r[0]), str(r[1])) for r in conn.execute(query).all()]

    def log_of_kinds(self, kinds: Sequence[str], after: int, below: int) -> list[tuple[int, str]]:
        """(index, entry text) of the ok outcomes of any of ``kinds`` with ``after`` < index
        < ``below``, oldest first. A row matches by its ``kind`` column or by the kind its
        entry text names, so editing one of the two does not hide it (a locator only: the
        caller parses and proves what it uses)."""
        named = [log_entries.c.entry.contains(f'"kind":"{k}"', autoescape=True) for k in kinds]
        query = (
            select(log_entries.c.idx, log_entries.c.entry)
            .where(
                (log_entries.c.kind.in_(list(kinds)) | or_(*named))
                & (log_entries.c.idx > after)
                & (log_entries.c.idx < below)
            )
            .order_by(log_entries.c.idx)
        )
        with self.engine.connect() as conn:
            return [(int(r[0]), str(r[1])) for r in conn.execute(query).all()]

    def iter_log_rows(self, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Every indexed log entry in index order, ``entry`` as stored (its text), a batch
        at a time so memory does not grow with the log."""
        after = -1
        while True:
            query = (
                select(log_entries)
                .where(log_entries.c.idx > after)
                .order_by(log_entries.c.idx)
                .limit(batch)
            )
            with self.engine.connect() as conn:
                rows = [r._asdict() for r in conn.execute(query).all()]
            yield from rows
            if len(rows) < batch:
                return
            after = int(rows[-1]["idx"])

    def log_search(
        self,
        *,
        artifact_id: str | None = None,
        principal: str | None = None,
        kind: str | None = None,
        phase: str | None = None,
        outcome: str | None = None,
        op: str | None = None,
        ref: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Indexed log entries matching every given filter, in log order.

        ``ref`` matches an entry's id, its operation id or its log index.
        """
        query = select(log_entries).order_by(log_entries.c.idx).limit(limit)
        filters = {
            log_entries.c.artifact_id: artifact_id,
            log_entries.c.principal: principal,
            log_entries.c.kind: kind,
            log_entries.c.phase: phase,
            log_entries.c.outcome: outcome,
            log_entries.c.op: op,
        }
        for column, value in filters.items():
            if value is not None:
                query = query.where(column == value)
        if ref is not None:
            match = (log_entries.c.id == ref) | (log_entries.c.op == ref)
            if ref.isdigit():
                match = match | (log_entries.c.idx == int(ref))
            query = query.where(match)
        if since is not None:
            query = query.where(log_entries.c.ts >= since)
        if until is not None:
            query = query.where(log_entries.c.ts < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            row = r._asdict()
            row["entry"] = json.loads(row["entry"])
            out.append(row)
        return out

    def set_envelope(
        self,
        conn: Connection,
        artifact_id: str,
        tier: str,
        kek_id: str,
        kek_version: int,
        object_key: str,
    ) -> None:
        """Record which KEK version wraps an artifact's DEK for a tier."""
        conn.execute(
            delete(envelopes).where(
                (envelopes.c.artifact_id == artifact_id) & (envelopes.c.tier == tier)
            )
        )
        conn.execute(
            insert(envelopes),
            [
                {
                    "artifact_id": artifact_id,
                    "tier": tier,
                    "kek_id": kek_id,
                    "kek_version": kek_version,
                    "object_key": object_key,
                }
            ],
        )

    def set_validation(self, artifact_id: str, status: str, report_sha256: str) -> None:
        """Record the outcome of the latest validation."""
        with self.transaction() as conn:
            conn.execute(
                update(artifacts)
                .where(artifacts.c.id == artifact_id)
                .values(validation_status=status, validation_sha256=report_sha256)
            )

    def claim(
        self, artifact_id: str, source: str, target: str, owner: ClaimOwner | None = None
    ) -> int:
        """Atomically mark an artifact as moving; ConflictError if someone else holds it.

        With ``owner`` the claim records who holds it and its lease.
        """
        with self.transaction() as conn:
            result = conn.execute(
                update(placements)
                .where(
                    (placements.c.artifact_id == artifact_id)
                    & (placements.c.tier == source)
                    & placements.c.pending.is_(None)
                )
                .values(pending=target, generation=placements.c.generation + 1)
            )
            if result.rowcount != 1:
                raise ConflictError(
                    f"artifact {artifact_id} is being moved by another operation or left {source}"
                )
            row = conn.execute(
                select(placements.c.generation).where(placements.c.artifact_id == artifact_id)
            ).one()
            generation = int(row[0])
            self._set_owner(conn, artifact_id, generation, owner)
        return generation

    def _set_owner(
        self, conn: Connection, artifact_id: str, generation: int, owner: ClaimOwner | None
    ) -> None:
        conn.execute(delete(claims).where(claims.c.artifact_id == artifact_id))
        if owner is not None:
            conn.execute(
                insert(claims),
                [
                    {
                        "artifact_id": artifact_id,
                        "generation": generation,
                        "host": owner.host,
                        "pid": owner.pid,
                        "started": owner.started,
                        "lease_until": owner.lease_until,
                    }
                ],
            )

    def claim_holder(self, artifact_id: str) -> ClaimHolder | None:
        """The pending claim on an artifact and its owner, or None when nothing is pending."""
        with self.engine.connect() as conn:
            placement = conn.execute(
                select(placements).where(placements.c.artifact_id == artifact_id)
            ).first()
            if placement is None or placement.pending is None:
                return None
            found = conn.execute(
                select(claims).where(
                    (claims.c.artifact_id == artifact_id)
                    & (claims.c.generation == placement.generation)
                )
            ).first()
        owner = None
        if found is not None:
            owner = ClaimOwner(found.host, int(found.pid), float(found.started), found.lease_until)
        return ClaimHolder(
            artifact_id, placement.tier, placement.pending, int(placement.generation), owner
        )

    def take_over(self, stale: ClaimHolder, owner: ClaimOwner) -> int:
        """Replace the stale claim ``stale`` (same move) by one of ``owner``; new generation.

        ConflictError when the claim changed since it was read (someone else took it).
        """
        with self.transaction() as conn:
            result = conn.execute(
                update(placements)
                .where(
                    (placements.c.artifact_id == stale.artifact_id)
                    & (placements.c.tier == stale.source)
                    & (placements.c.pending == stale.target)
                    & (placements.c.generation == stale.generation)
                )
                .values(generation=placements.c.generation + 1)
            )
            if result.rowcount != 1:
                raise ConflictError(
                    f"artifact {stale.artifact_id} is being moved by another operation"
                )
            generation = stale.generation + 1
            self._set_owner(conn, stale.artifact_id, generation, owner)
        return generation

    def renew(self, artifact_id: str, generation: int, lease_until: str) -> None:
        """Extend the lease of the claim ``generation`` (nothing if it is not held)."""
        with self.transaction() as conn:
            conn.execute(
                update(claims)
                .where((claims.c.artifact_id == artifact_id) & (claims.c.generation == generation))
                .values(lease_until=lease_until)
            )

    def release(self, artifact_id: str, generation: int | None = None) -> bool:
        """Drop a claim without moving (after a failed move); True if one was dropped.

        With ``generation`` only that claim is dropped: a stale holder never
        releases a newer claim of someone else.
        """
        where = (placements.c.artifact_id == artifact_id) & placements.c.pending.is_not(None)
        if generation is not None:
            where = where & (placements.c.generation == generation)
        with self.transaction() as conn:
            result = conn.execute(update(placements).where(where).values(pending=None))
            if result.rowcount == 1:
                conn.execute(delete(claims).where(claims.c.artifact_id == artifact_id))
        return result.rowcount == 1

    def move(
        self,
        conn: Connection,
        artifact_id: str,
        *,
        tier: str,
        bucket: str,
        since: str,
        retain_until: str | None,
        legal_hold: bool,
    ) -> None:
        """Record a completed move and release the claim."""
        conn.execute(update(artifacts).where(artifacts.c.id == artifact_id).values(tier=tier))
        conn.execute(
            update(placements)
            .where(placements.c.artifact_id == artifact_id)
            .values(
                tier=tier,
                bucket=bucket,
                since=since,
                retain_until=retain_until,
                legal_hold=int(legal_hold),
                pending=None,
                generation=0,
            )
        )
        conn.execute(delete(claims).where(claims.c.artifact_id == artifact_id))

    def drop_envelope(self, conn: Connection, artifact_id: str, tier: str) -> None:
        """Forget an artifact's envelope for a tier."""
        conn.execute(
            delete(envelopes).where(
                (envelopes.c.artifact_id == artifact_id) & (envelopes.c.tier == tier)
            )
        )

    def remove_artifact(self, conn: Connection, artifact_id: str) -> None:
        """Drop an artifact's rows (events stay: they are evidence)."""
        for table in (files, placements, envelopes, claims, damage):
            conn.execute(delete(table).where(table.c.artifact_id == artifact_id))
        conn.execute(delete(artifacts).where(artifacts.c.id == artifact_id))

    def replace_all(
        self,
        event_rows: Sequence[dict[str, Any]],
        indexed: Sequence[IndexedArtifact],
        log_rows: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Swap the whole index for ``event_rows`` and ``indexed`` in one transaction.

        Until it commits every reader sees the old catalog; if anything fails it
        is rolled back and the old catalog stays, whole.
        """
        with self.transaction() as conn:
            for table in reversed(TABLES):
                conn.execute(delete(table))
            if event_rows:
                conn.execute(insert(events), list(event_rows))
            if log_rows:
                conn.execute(insert(log_entries), list(log_rows))
            for item in indexed:
                try:
                    conn.execute(insert(artifacts), [item.artifact])
                except SAIntegrityError:
                    raise ConflictError(
                        f"artifact {item.artifact['id']} is indexed twice"
                    ) from None
                if item.files:
                    conn.execute(insert(files), list(item.files))
                conn.execute(insert(placements), [item.placement])
                if item.envelopes:
                    conn.execute(insert(envelopes), list(item.envelopes))
                if item.damage is not None:
                    conn.execute(
                        insert(damage),
                        [{"artifact_id": item.artifact["id"], "reason": item.damage}],
                    )

    def damaged(self) -> dict[str, str]:
        """Artifact id -> why a rebuild found it damaged."""
        with self.engine.connect() as conn:
            return {str(a): str(r) for a, r in conn.execute(select(damage)).all()}

    def damage_of(self, artifact_id: str) -> str | None:
        """Why a rebuild found the artifact damaged, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(damage.c.reason).where(damage.c.artifact_id == artifact_id)
            ).first()
        return None if row is None else str(row[0])

    def clear(self) -> None:
        """Delete every row (before a rebuild)."""
        with self.transaction() as conn:
            for table in reversed(TABLES):
                conn.execute(delete(table))

    # -- reads -------------------------------------------------------------

    def artifact(self, artifact_id: str) -> ArtifactRow:
        """One artifact by id or unique id prefix; NotFoundError otherwise."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(artifacts).where(artifacts.c.id.startswith(artifact_id, autoescape=True))
            ).all()
        exact = [r for r in rows if r.id == artifact_id]
        if exact:
            return ArtifactRow(**exact[0]._asdict())
        if len(rows) != 1 or len(artifact_id) < 4:
            if len(rows) > 1:
                found = sorted((ArtifactRow(**r._asdict()) for r in rows), key=lambda a: a.id)
                raise AmbiguousIdError(
                    artifact_id,
                    [f"{a.id}  {a.name}  {a.tier}  {a.created_at}" for a in found[:20]],
                )
            raise NotFoundError(f"artifact {artifact_id} is not in the catalog")
        return ArtifactRow(**rows[0]._asdict())

    def find_by_digest(self, content_digest: str) -> list[ArtifactRow]:
        """Artifacts with this content digest."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(artifacts)
                .where(artifacts.c.content_digest == content_digest)
                .order_by(artifacts.c.created_at)
            ).all()
        return [ArtifactRow(**r._asdict()) for r in rows]

    def list_artifacts(self, tier: str | None = None) -> list[ArtifactRow]:
        """All artifacts, newest first."""
        query = select(artifacts).order_by(artifacts.c.created_at.desc(), artifacts.c.id)
        if tier:
            query = query.where(artifacts.c.tier == tier)
        with self.engine.connect() as conn:
            return [ArtifactRow(**r._asdict()) for r in conn.execute(query).all()]

    def files_of(self, artifact_id: str) -> list[dict[str, Any]]:
        """File rows of an artifact, in manifest order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(files).where(files.c.artifact_id == artifact_id).order_by(files.c.idx)
            ).all()
        return [r._asdict() for r in rows]

    def placement(self, artifact_id: str) -> dict[str, Any]:
        """Where an artifact lives now."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(placements).where(placements.c.artifact_id == artifact_id)
            ).first()
        if row is None:
            raise NotFoundError(f"artifact {artifact_id} has no placement")
        return row._asdict()

    def envelopes_of(self, artifact_id: str) -> list[dict[str, Any]]:
        """Envelope rows of an artifact."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(envelopes).where(envelopes.c.artifact_id == artifact_id)
            ).all()
        return [r._asdict() for r in rows]

    def envelopes_on(self, kek_id: str, kek_version: int) -> list[dict[str, Any]]:
        """Envelopes wrapped by one KEK version."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(envelopes).where(
                    (envelopes.c.kek_id == kek_id) & (envelopes.c.kek_version == kek_version)
                )
            ).all()
        return [r._asdict() for r in rows]

    def envelopes_on_any(self, kek_id: str, kek_versions: Sequence[int]) -> list[dict[str, Any]]:
        """Envelopes wrapped by any of the given versions of one key, by artifact id."""
        if not kek_versions:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(envelopes)
                .where(
                    (envelopes.c.kek_id == kek_id) & envelopes.c.kek_version.in_(list(kek_versions))
                )
                .order_by(envelopes.c.artifact_id, envelopes.c.tier)
            ).all()
        return [r._asdict() for r in rows]

    def envelope_counts(self) -> dict[tuple[str, int], int]:
        """(key id, version) -> number of envelopes that version wraps."""
        query = select(envelopes.c.kek_id, envelopes.c.kek_version, func.count()).group_by(
            envelopes.c.kek_id, envelopes.c.kek_version
        )
        with self.engine.connect() as conn:
            return {(str(k), int(v)): int(n) for k, v, n in conn.execute(query).all()}

    def signed_counts(self) -> dict[str, int]:
        """Signer reference (``key@vN``) -> number of artifacts it signed."""
        query = (
            select(artifacts.c.signed_by, func.count())
            .where(artifacts.c.signed_by.is_not(None))
            .group_by(artifacts.c.signed_by)
        )
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query).all()}

    def update_envelope_versions(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
        """Point envelope rows (artifact_id, tier, kek_id, kek_version) at new KEK versions.

        One executemany for the whole batch; rows of artifacts not in the
        catalog are ignored. Returns how many rows were updated.
        """
        if not rows:
            return 0
        stmt = (
            update(envelopes)
            .where(
                (envelopes.c.artifact_id == bindparam("b_artifact_id"))
                & (envelopes.c.tier == bindparam("b_tier"))
            )
            .values(kek_id=bindparam("b_kek_id"), kek_version=bindparam("b_kek_version"))
        )
        params = [
            {
                "b_artifact_id": r["artifact_id"],
                "b_tier": r["tier"],
                "b_kek_id": r["kek_id"],
                "b_kek_version": r["kek_version"],
            }
            for r in rows
        ]
        result = conn.execute(stmt, params)
        return int(result.rowcount or 0)

    def replace_files(
        self,
        conn: Connection,
        artifact_id: str,
        file_rows: Sequence[dict[str, Any]],
        manifest_sha256: str,
        *,
        signed_by: str | None = None,
    ) -> None:
        """Swap an artifact's file rows, manifest digest and signer (after a re-encryption)."""
        conn.execute(delete(files).where(files.c.artifact_id == artifact_id))
        if file_rows:
            conn.execute(insert(files), list(file_rows))
        values: dict[str, Any] = {"manifest_sha256": manifest_sha256}
        if signed_by is not None:
            values["signed_by"] = signed_by
        conn.execute(update(artifacts).where(artifacts.c.id == artifact_id).values(**values))

    def events_of(self, artifact_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Events, oldest first, optionally of one artifact."""
        query = select(events).order_by(events.c.ts, events.c.id).limit(limit)
        if artifact_id:
            query = query.where(events.c.artifact_id == artifact_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            row = r._asdict()
            row["details"] = json.loads(row["details"])
            out.append(row)
        return out

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: for comparing two catalogs."""
        with self.engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all()) for t in TABLES}
