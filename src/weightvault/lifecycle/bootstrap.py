"""``weightvault init``: everything a new vault needs, idempotently."""

from __future__ import annotations

from typing import Any

from weightvault._fs import make_private_dir
from weightvault.config import Settings
from weightvault.keys import LocalKeyStore, create_master_key, load_master_key
from weightvault.store import (
    Capability,
    EmbeddedStore,
    connect,
    ensure_layout,
    probe_store,
    require_capabilities,
)


def ensure_buckets(settings: Settings) -> list[Capability]:
    """Create every bucket the vault uses, then probe the endpoint for what the vault needs.

    Raises StoreCapabilityError, one line per missing capability, when the
    endpoint lacks versioning, object lock or conditional writes.
    """
    store = connect(settings)
    ensure_layout(store, settings)
    return require_capabilities(store, settings)


def check_store(settings: Settings) -> list[Capability]:
    """``weightvault store check``: every capability probed, missing ones included."""
    return probe_store(connect(settings), settings)


def init_vault(settings: Settings, *, start_store: bool = True) -> dict[str, Any]:
    """Create home, master key, tier KEKs and buckets; safe to run again."""
    make_private_dir(settings.home)
    created_key = create_master_key(settings.master_key_path)
    keystore = LocalKeyStore(settings.keystore_path, load_master_key(settings.master_key_path))
    keks = [keystore.active_kek(tier).ref for tier in ("hot", "warm", "cold", "quarantine")]
    report: dict[str, Any] = {
        "home": str(settings.home),
        "master_key": "created" if created_key else "present",
        "keks": ", ".join(keks),
    }
    if settings.store.embedded:
        server = EmbeddedStore(settings.store_dir)
        if start_store:
            status = server.up()
            report["store"] = f"http://{status.endpoint}"
        else:
            report["store"] = "embedded (not started)"
            return report
    else:
        report["store"] = settings.store.endpoint
    ensure_buckets(settings)
    report["buckets"] = settings.store.bucket("*")
    return report
