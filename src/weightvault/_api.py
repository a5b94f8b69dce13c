"""The Python API a training job calls: open the vault, push what it made, pull, verify.

It runs the same lifecycle steps as the CLI and the Prefect flows
(:mod:`weightvault.lifecycle.ingest` for a push), so a push from a job is the
same operation as ``weightvault put`` or the ingest flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from weightvault.artifacts import Vault as _Engine
from weightvault.artifacts import VerifyReport
from weightvault.catalog import ArtifactRow
from weightvault.config import load_settings
from weightvault.lifecycle import ingest
from weightvault.lifecycle.break_glass import break_glass_get
from weightvault.provenance import capture_provenance

__all__ = ["Artifact", "Vault", "VerifyReport", "open_vault"]


@dataclass(frozen=True)
class Artifact:
    """A stored artifact version (no key material)."""

    id: str
    name: str
    tier: str
    content_digest: str
    files: int
    bytes: int
    creator: str
    created_at: str
    duplicate_of: str | None = None


def _artifact(row: ArtifactRow, duplicate_of: str | None = None) -> Artifact:
    return Artifact(
        id=row.id,
        name=row.name,
        tier=row.tier,
        content_digest=row.content_digest,
        files=row.file_count,
        bytes=row.total_size,
        creator=row.creator,
        created_at=row.created_at,
        duplicate_of=duplicate_of,
    )


class Vault:
    """An open vault. Make one with :func:`weightvault.open`."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def push(
        self,
        path: str | Path,
        *,
        name: str,
        model_repo: str | Path | None = None,
        run_id: str | None = None,
        labels: dict[str, str] | None = None,
        tier: str = "hot",
        parent: str | None = None,
        creator: str | None = None,
        lock_file: str | Path | None = None,
        allow_incomplete: bool = False,
    ) -> Artifact:
        """Encrypt, sign and store a file or directory; returns the stored artifact.

        With ``model_repo`` the signed statement records its git commit, DVC
        datasets, ``run_id`` and environment; missing fields are refused unless
        ``allow_incomplete``. The same content pushed again returns the stored
        artifact with ``duplicate_of`` set.
        """
        provenance = None
        if model_repo is not None:
            provenance = capture_provenance(
                Path(model_repo),
                run_id=run_id,
                creator=creator,
                lock_file=Path(lock_file) if lock_file is not None else None,
                parent=parent,
                allow_incomplete=allow_incomplete,
            )
        result = ingest.put(
            self._engine,
            Path(path),
            name,
            tier,
            labels=labels,
            provenance=provenance,
            model_repo=None if model_repo is None else Path(model_repo),
        )
        return _artifact(result.artifact, result.duplicate_of)

    def pull(self, artifact_id: str, out: str | Path, *, break_glass: str | None = None) -> Path:
        """Decrypt and verify into ``out`` (created; it appears only when all is good).

        ``break_glass`` (the justification) reads a quarantined artifact when the log
        records the approvals for it (``weightvault approve ID --to break-glass``).
        """
        target = Path(out)
        if break_glass is None:
            self._engine.get(artifact_id, target)
        else:
            break_glass_get(self._engine, artifact_id, target, justification=break_glass)
        return target.absolute()

    def verify(self, artifact_id: str) -> VerifyReport:
        """Check every file's sha256 and the signature without writing plaintext."""
        return self._engine.verify(artifact_id)

    def artifact(self, artifact_id: str) -> Artifact:
        """One artifact, by id or unique prefix."""
        return _artifact(self._engine.resolve(artifact_id))

    def artifacts(self, tier: str | None = None) -> list[Artifact]:
        """Every artifact, or those of one tier."""
        return [_artifact(r) for r in self._engine.catalog.list_artifacts(tier)]


def open_vault(home: str | Path | None = None, *, config_dir: str | Path | None = None) -> Vault:
    """Open the configured vault (settings as for the CLI; the store must be reachable)."""
    settings = load_settings(
        Path(config_dir) if config_dir is not None else None,
        Path(home) if home is not None else None,
    )
    return Vault(_Engine.open(settings))
