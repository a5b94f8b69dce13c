"""Settings: weightvault.toml, the tiers and the store connection."""

from weightvault.config._settings import (
    ROLES,
    TIERS,
    AutomationSettings,
    Environment,
    Settings,
    StoreSettings,
    TierSettings,
    child_environment,
    environment,
    find_config_dir,
    identity_dir,
    load_settings,
    packaged_config_dir,
    prefect_flow_run_id,
    read_toml,
    resolve_config_file,
)

__all__ = [
    "ROLES",
    "TIERS",
    "AutomationSettings",
    "Environment",
    "Settings",
    "StoreSettings",
    "TierSettings",
    "child_environment",
    "environment",
    "find_config_dir",
    "identity_dir",
    "load_settings",
    "packaged_config_dir",
    "prefect_flow_run_id",
    "read_toml",
    "resolve_config_file",
]
