"""The manifest: every file of an artifact version with its size and digests.

Stored canonical at ``artifacts/<id>/manifest.json`` in the tier bucket. Its
presence is the commit point: an artifact is visible only once its manifest
exists, and the manifest is written only after every other object.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.errors import IntegrityError, InvalidInputError

MANIFEST_TYPE = "weightvault.manifest/v1"
PAYLOAD_SCHEME = "c2sp.org/chunked-encryption@v1 Cobblestone-256"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[0-9a-z][0-9a-z-]{7,63}")
REBUILD_KIT = "rebuild-kit"
"""The role of a file kept beside the model files to rebuild them (docs/disaster-recovery.md)."""
FILE_ROLES = frozenset({REBUILD_KIT})


def check_relpath(path: str) -> str:
    """A safe relative POSIX path, or InvalidInputError."""
    p = PurePosixPath(path)
    if (
        not path
        or p.is_absolute()
        or any(part in {"", ".", ".."} for part in path.split("/"))
        or "\\" in path
        or "\x00" in path
    ):
        raise InvalidInputError(f"unsafe file path in artifact: {path!r}")
    return path


def check_artifact_id(artifact_id: str) -> str:
    """A well-formed artifact id, or InvalidInputError."""
    if not _ID.fullmatch(artifact_id):
        raise InvalidInputError(f"malformed artifact id: {artifact_id!r}")
    return artifact_id


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact."""

    path: str
    size: int
    sha256: str
    ciphertext_size: int
    object_key: str
    #: None for a model file; a role in :data:`FILE_ROLES` for a file kept beside them
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``role`` only when set, so model-only manifests are unchanged)."""
        doc: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "ciphertext_size": self.ciphertext_size,
            "object": self.object_key,
        }
        if self.role is not None:
            doc["role"] = self.role
        return doc

    @classmethod
    def from_dict(cls, raw: Any) -> FileEntry:
        """Parse and check one file entry."""
        try:
            entry = cls(
                path=check_relpath(str(raw["path"])),
                size=int(raw["size"]),
                sha256=str(raw["sha256"]),
                ciphertext_size=int(raw["ciphertext_size"]),
                object_key=str(raw["object"]),
                role=None if raw.get("role") is None else str(raw["role"]),
            )
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            raise IntegrityError(f"manifest file entry is malformed ({exc})") from None
        if entry.role is not None and entry.role not in FILE_ROLES:
            raise IntegrityError(f"manifest entry for {entry.path!r} has an unknown role")
        if not _HEX64.fullmatch(entry.sha256) or entry.size < 0:
            raise IntegrityError(f"manifest entry for {entry.path!r} is malformed")
        return entry


def content_digest(entries: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """sha256 over the canonical (path, size, sha256) list of the model files: same
    content, same digest (files kept beside them, such as a rebuild kit, are not content)."""
    return digest_of((e.path, e.size, e.sha256) for e in entries if e.role is None)


def digest_of(files: Iterable[tuple[str, int, str]]) -> str:
    """The content digest of model files given as ``(path, size, sha256)``: what a put of
    exactly these files would record (:func:`content_digest`), known before any upload."""
    body = [
        {"path": path, "sha256": sha256, "size": size}
        for path, size, sha256 in sorted(files, key=lambda f: f[0])
    ]
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """An artifact version's manifest."""

    artifact_id: str
    name: str
    created_at: str
    creator: str
    tier: str
    files: tuple[FileEntry, ...]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def content_digest(self) -> str:
        """Digest of the content, independent of id, name and time."""
        return content_digest(self.files)

    @property
    def total_size(self) -> int:
        """Sum of the plaintext sizes."""
        return sum(f.size for f in self.files)

    @property
    def model_files(self) -> tuple[FileEntry, ...]:
        """The artifact's own files (what ``get`` writes and the content digest covers)."""
        return tuple(f for f in self.files if f.role is None)

    def files_with_role(self, role: str) -> tuple[FileEntry, ...]:
        """The files kept beside the model files in ``role`` (e.g. the rebuild kit)."""
        return tuple(f for f in self.files if f.role == role)

    def body(self) -> dict[str, Any]:
        """The authenticated part of the manifest."""
        return {
            "type": MANIFEST_TYPE,
            "artifact_id": self.artifact_id,
            "name": self.name,
            "created_at": self.created_at,
            "creator": self.creator,
            "tier": self.tier,
            "labels": dict(sorted(self.labels.items())),
            "payload": PAYLOAD_SCHEME,
            "content_digest": self.content_digest,
            "files": [f.to_dict() for f in self.files],
        }

    def body_bytes(self) -> bytes:
        """Canonical bytes of :meth:`body`, which the MAC covers."""
        return canonical_json(self.body())

    def to_bytes(self, mac: str) -> bytes:
        """The stored object: body plus its MAC."""
        return canonical_json({**self.body(), "mac": mac})

    @classmethod
    def parse(cls, data: bytes) -> tuple[Manifest, str]:
        """Parse a stored manifest; returns it with its MAC (not yet verified)."""
        raw = parse_canonical(data, "manifest")
        try:
            if raw["type"] != MANIFEST_TYPE or raw["payload"] != PAYLOAD_SCHEME:
                raise IntegrityError("manifest has an unknown type or payload scheme")
            manifest = cls(
                artifact_id=str(raw["artifact_id"]),
                name=str(raw["name"]),
                created_at=str(raw["created_at"]),
                creator=str(raw["creator"]),
                tier=str(raw["tier"]),
                files=tuple(FileEntry.from_dict(f) for f in raw["files"]),
                labels={str(k): str(v) for k, v in raw["labels"].items()},
            )
            mac = str(raw["mac"])
        except (KeyError, TypeError, AttributeError):
            raise IntegrityError("manifest is missing required fields") from None
        if raw.get("content_digest") != manifest.content_digest:
            raise IntegrityError("manifest content digest does not match its files")
        if manifest.body_bytes() != canonical_json({k: v for k, v in raw.items() if k != "mac"}):
            raise IntegrityError("manifest has unexpected fields")
        paths = [f.path for f in manifest.files]
        if len(set(paths)) != len(paths):
            raise IntegrityError("manifest lists a path twice")
        return manifest, mac
