"""Settings: weightvault.toml, the tiers and the store connection."""

from weightvault.config._settings import (
    TIERS,
    Settings,
    StoreSettings,
    TierSettings,
    find_config_dir,
    load_settings,
    packaged_config_dir,
)

__all__ = [
    "TIERS",
    "Settings",
    "StoreSettings",
    "TierSettings",
    "find_config_dir",
    "load_settings",
    "packaged_config_dir",
]
