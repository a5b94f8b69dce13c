"""Child process body for the keystore race test (kept light: spawn imports it)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from weightvault.keys import LocalKeyStore


def race_active_kek(path: str, key: bytes, tiers: list[str], barrier: Any, out: Any) -> None:
    """Wait for the others, then ask for the active KEK of every tier."""
    store = LocalKeyStore(Path(path), key)
    barrier.wait(timeout=60)
    got = []
    for tier in tiers:
        rec = store.active_kek(tier)
        got.append((rec.ref, hashlib.sha256(rec.material).hexdigest()))
    out.put(got)


def race_rotation(url: str, key: bytes, barrier: Any, out: Any) -> None:
    """Wait for the others, then start a rotation of the hot KEK on the shared keystore."""
    from weightvault.keys import SharedKeyStore

    store = SharedKeyStore(url, key)
    barrier.wait(timeout=60)
    rec, created = store.begin_kek_rotation("hot", new_version=True)
    out.put((rec.ref, created))
