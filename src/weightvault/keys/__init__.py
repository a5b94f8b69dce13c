"""Keys.

The KeyProvider protocol, the sealed local keystore, lifetimes, SLIP-39 escrow shares, the CBOM.
"""

from weightvault.keys._cbom import (
    CYCLONEDX_SPEC_VERSION,
    KeyInventoryRow,
    build_cbom,
    cbom_json,
    render_inventory_table,
)
from weightvault.keys._escrow import escrow_keypair, generate_escrow_seed, recover_seed, split_seed
from weightvault.keys._keystore import (
    DEFAULT_MAX_WRAPS,
    KeyProvider,
    KeyRecord,
    KeyState,
    KeystoreBackups,
    KeystoreVersions,
    LocalKeyStore,
    WrappedKey,
    create_master_key,
    load_master_key,
)
from weightvault.keys._lifetimes import (
    LifetimePolicy,
    expires_at,
    explain_plan,
    is_due,
    load_lifetime_policy,
    plan_key,
    plan_matrix,
    policy_lifetime,
)

__all__ = [
    "CYCLONEDX_SPEC_VERSION",
    "DEFAULT_MAX_WRAPS",
    "KeyInventoryRow",
    "KeyProvider",
    "KeyRecord",
    "KeyState",
    "KeystoreBackups",
    "KeystoreVersions",
    "LifetimePolicy",
    "LocalKeyStore",
    "WrappedKey",
    "build_cbom",
    "cbom_json",
    "create_master_key",
    "escrow_keypair",
    "expires_at",
    "explain_plan",
    "generate_escrow_seed",
    "is_due",
    "load_lifetime_policy",
    "load_master_key",
    "plan_key",
    "plan_matrix",
    "policy_lifetime",
    "recover_seed",
    "render_inventory_table",
    "split_seed",
]
