"""``weightvault init``: everything a new vault needs, idempotently."""

from __future__ import annotations

from typing import Any

from weightvault._fs import make_private_dir
from weightvault.artifacts import (
    audit_hmac_key,
    bootstrap_principals,
    enrol_bootstrap,
    log_keys,
    log_origin,
    open_keystore,
)
from weightvault.config import Settings
from weightvault.keys import (
    KeyProvider,
    create_identity,
    create_master_key,
    default_identity,
    identity_path,
    read_public,
)
from weightvault.provenance import ROLES
from weightvault.store import (
    Capability,
    EmbeddedStore,
    ObjectStore,
    connect,
    ensure_layout,
    probe_store,
    require_capabilities,
)

KEK_TIERS = ("hot", "warm", "cold", "quarantine")


def ensure_buckets(settings: Settings) -> list[Capability]:
    """Create every bucket the vault uses, then probe the endpoint for what the vault needs.

    Raises StoreCapabilityError, one line per missing capability, when the
    endpoint lacks versioning, object lock or conditional writes.
    """
    store = connect(settings)
    ensure_layout(store, settings)
    return require_capabilities(store, settings)


def check_store(settings: Settings) -> list[Capability]:
    """``weightvault store check``: every capability probed, missing ones included.

    In the single-bucket layout the bucket is checked first (SingleBucketError): the
    probe needs it to exist with versioning and Object Lock.
    """
    store = connect(settings)
    if settings.store.single_bucket:
        ensure_layout(store, settings)  # checks that one bucket, creates nothing
    return probe_store(store, settings)


def first_principal(keys: KeyProvider, identity: str | None = None) -> str:
    """The acting identity, made if it does not exist, enrolled if nobody is yet.

    The bootstrap enrolment (in the sealed keystore) names the vault's first
    principal with every role, so a fresh vault works; ``trust init`` copies it
    into the signed root, and from then on only ``trust enrol`` adds principals.
    """
    path = identity_path(identity or default_identity())
    created = not path.exists()
    public = create_identity(path.stem, directory=path.parent) if created else read_public(path)
    made = "created" if created else "present"
    if enrol_bootstrap(keys, public.name, public.public_key, ROLES):
        return f"{public.name} ({made}, key {public.keyid[:16]}), enrolled as the first principal"
    first = ", ".join(p.name for p in bootstrap_principals(keys))
    return f"{public.name} ({made}, key {public.keyid[:16]}); first principal: {first}"


def init_vault(
    settings: Settings,
    *,
    start_store: bool = True,
    identity: str | None = None,
    probe: bool = True,
) -> dict[str, Any]:
    """Create home, master key, buckets, tier KEKs and the first principal; safe to run again.

    ``probe=False`` skips the capability probe (its object-lock probe objects are
    retained a day): for a scratch vault on an endpoint the live vault has proved.

    The store comes first when it runs, so the keystore's first versions are
    recorded there (:class:`weightvault.artifacts.StoreKeystoreVersions`).
    Every KEK gets its expiry from the lifetime policy.
    """
    make_private_dir(settings.home)
    created_key = create_master_key(settings.master_key_path)
    report: dict[str, Any] = {
        "home": str(settings.home),
        "master_key": "created" if created_key else "present",
    }
    store: ObjectStore | None = None
    if settings.store.embedded:
        server = EmbeddedStore.of(settings)
        if start_store:
            status = server.up()
            report["store"] = f"http://{status.endpoint}"
        else:
            report["store"] = "embedded (not started)"
    else:
        report["store"] = settings.store.endpoint
    if start_store or not settings.store.embedded:
        if probe:
            ensure_buckets(settings)
            store = connect(settings)
        else:
            store = connect(settings)
            ensure_layout(store, settings)
        report["buckets"] = settings.store.bucket("*")
    keystore = open_keystore(settings, store)
    keks = ", ".join(keystore.active_kek(tier).ref for tier in KEK_TIERS)
    # The audit log's keys and the audit HMAC key; only the public vkey is reported.
    report["log_key"] = log_keys(keystore, log_origin(settings)).vkeys["ed25519"]
    audit_hmac_key(keystore)
    report["identity"] = first_principal(keystore, identity)
    order = ("home", "master_key", "keks", "log_key", "store", "buckets", "identity")
    report["keks"] = keks
    return {name: report[name] for name in order if name in report}
