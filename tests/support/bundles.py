"""What an attacker holding a bundle-signing key does to an export bundle after editing it."""

from __future__ import annotations

import json
from pathlib import Path

from weightvault._fs import hash_file
from weightvault._json import canonical_json
from weightvault.crypto import dsse
from weightvault.crypto.signing import HybridSigningKey

BUNDLE_TYPE = "application/vnd.weightvault.bundle+json"


def resign_index(bundle: Path, key: HybridSigningKey, *, exported_at: str | None = None) -> None:
    """Relist every file of ``bundle`` in bundle.json and re-sign it with ``key``."""
    index = json.loads((bundle / "bundle.json").read_bytes())
    if exported_at is not None:
        index["exported_at"] = exported_at
    listing = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle).as_posix()
        if rel in {"bundle.json", "bundle.dsse.json"}:
            continue
        found = hash_file(path)
        listing.append({"path": rel, "sha256": found.sha256, "size": found.size})
    index["files"] = listing
    body = canonical_json(index)
    (bundle / "bundle.json").write_bytes(body)
    envelope = dsse.sign_envelope(body, BUNDLE_TYPE, key)
    (bundle / "bundle.dsse.json").write_bytes(canonical_json(envelope))
