"""The catalog.

A SQLAlchemy index of artifacts, files, placements, envelopes and events, rebuildable from the
store.
"""

from weightvault.catalog._catalog import (
    ArtifactRow,
    Catalog,
    ClaimHolder,
    ClaimOwner,
    IndexedArtifact,
)

__all__ = [
    "ArtifactRow",
    "Catalog",
    "ClaimHolder",
    "ClaimOwner",
    "IndexedArtifact",
]
