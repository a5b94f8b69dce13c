"""Settings: where the vault lives, which store it talks to, tier behaviour.

Values come from ``config/weightvault.toml`` (or the file named by
``WEIGHTVAULT_CONFIG``) and are overridden by environment variables:

``WEIGHTVAULT_HOME``            vault home (keystore, catalog, embedded store)
``WEIGHTVAULT_S3_ENDPOINT``     host:port of an external S3 endpoint
``WEIGHTVAULT_S3_ACCESS_KEY``   access key for it
``WEIGHTVAULT_S3_SECRET_KEY``   secret key for it
``WEIGHTVAULT_S3_SECURE``       "1"/"true" for HTTPS
``WEIGHTVAULT_S3_REGION``       region name
``WEIGHTVAULT_BUCKET_PREFIX``   prefix of every bucket name
``WEIGHTVAULT_CATALOG_URL``     SQLAlchemy URL of the catalog
``WEIGHTVAULT_MASTER_KEY``      base64 master key sealing the keystore
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightvault.errors import ConfigError

TIERS = ("hot", "warm", "cold", "quarantine")
CONFIG_NAME = "weightvault.toml"


@dataclass(frozen=True)
class TierSettings:
    """Storage behaviour of one tier."""

    name: str
    versioned: bool
    object_lock: bool
    retention_days: int


@dataclass(frozen=True)
class StoreSettings:
    """How to reach the object store; ``endpoint`` empty means embedded."""

    endpoint: str
    secure: bool
    region: str
    bucket_prefix: str
    part_size: int
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)

    @property
    def embedded(self) -> bool:
        """True when the vault runs its own SeaweedFS server."""
        return not self.endpoint

    def bucket(self, role: str) -> str:
        """Bucket name for a tier or for ``envelopes``, ``audit``, ``dvc``."""
        return f"{self.bucket_prefix}-{role}"


@dataclass(frozen=True)
class Settings:
    """Everything the core needs to open a vault."""

    home: Path
    config_dir: Path
    store: StoreSettings
    tiers: dict[str, TierSettings]
    catalog_url: str
    lifetimes_file: Path
    gc_grace_minutes: int
    min_accuracy: float = 0.9

    @property
    def keystore_path(self) -> Path:
        """The sealed keystore file."""
        return self.home / "keystore.sealed"

    @property
    def master_key_path(self) -> Path:
        """The 0600 master key file created by ``weightvault init``."""
        return self.home / "master.key"

    @property
    def store_dir(self) -> Path:
        """Data and state of the embedded store."""
        return self.home / "store"

    @property
    def policy_dir(self) -> Path:
        """Rego policies."""
        return self.config_dir / "policies"

    @property
    def expectations_dir(self) -> Path:
        """Great Expectations suites."""
        return self.config_dir / "expectations"


def packaged_config_dir() -> Path:
    """The default config shipped with weightvault.

    In a wheel it is package data (``weightvault/_defaults``, built from the
    repository's ``config/``); in a checkout it is that ``config/`` itself.
    """
    package = Path(__file__).resolve().parents[1]
    wheel = package / "_defaults"
    return wheel if wheel.is_dir() else package.parents[1] / "config"


def find_config_dir(start: Path | None = None) -> Path:
    """The ``config`` folder: WEIGHTVAULT_CONFIG's folder, or found above ``start``."""
    explicit = os.environ.get("WEIGHTVAULT_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"WEIGHTVAULT_CONFIG names a missing file: {path}")
        return path.parent
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "config" / CONFIG_NAME).is_file():
            return folder / "config"
    packaged = packaged_config_dir()
    if (packaged / CONFIG_NAME).is_file():
        return packaged
    raise ConfigError(f"no config/{CONFIG_NAME} found; set WEIGHTVAULT_CONFIG")


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _get(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}.{key} is missing")
    value = table[key]
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be an integer")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key} must be of type {kind.__name__}")
    return value


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def load_settings(config_dir: Path | None = None, home: Path | None = None) -> Settings:
    """Read the settings file and apply environment overrides."""
    config_dir = config_dir or find_config_dir()
    explicit = os.environ.get("WEIGHTVAULT_CONFIG")
    path = Path(explicit) if explicit else config_dir / CONFIG_NAME
    raw = _load_toml(path)
    env = os.environ

    store_raw = raw.get("store", {})
    part_mib = _get(store_raw, "part_size_mib", int, "store")
    if part_mib < 5:
        raise ConfigError("store.part_size_mib must be at least 5")
    store = StoreSettings(
        endpoint=env.get("WEIGHTVAULT_S3_ENDPOINT", _get(store_raw, "endpoint", str, "store")),
        secure=_truthy(env["WEIGHTVAULT_S3_SECURE"])
        if "WEIGHTVAULT_S3_SECURE" in env
        else _get(store_raw, "secure", bool, "store"),
        region=env.get("WEIGHTVAULT_S3_REGION", _get(store_raw, "region", str, "store")),
        bucket_prefix=env.get(
            "WEIGHTVAULT_BUCKET_PREFIX", _get(store_raw, "bucket_prefix", str, "store")
        ),
        part_size=part_mib * 1024 * 1024,
        access_key=env.get("WEIGHTVAULT_S3_ACCESS_KEY", ""),
        secret_key=env.get("WEIGHTVAULT_S3_SECRET_KEY", ""),
    )
    if store.endpoint and not (store.access_key and store.secret_key):
        raise ConfigError(
            "an external S3 endpoint needs WEIGHTVAULT_S3_ACCESS_KEY and WEIGHTVAULT_S3_SECRET_KEY"
        )

    tiers_raw = raw.get("tiers", {})
    tiers: dict[str, TierSettings] = {}
    for name in TIERS:
        table = tiers_raw.get(name)
        if not isinstance(table, dict):
            raise ConfigError(f"tiers.{name} is missing")
        where = f"tiers.{name}"
        tiers[name] = TierSettings(
            name=name,
            versioned=_get(table, "versioned", bool, where),
            object_lock=_get(table, "object_lock", bool, where),
            retention_days=_get(table, "retention_days", int, where),
        )
        if tiers[name].object_lock and not tiers[name].versioned:
            raise ConfigError(f"{where}.object_lock needs versioned = true")

    home_dir = home or Path(env.get("WEIGHTVAULT_HOME") or config_dir.parent / ".weightvault")
    keys_raw = raw.get("keys", {})
    gc_raw = raw.get("gc", {})
    return Settings(
        home=home_dir.resolve(),
        config_dir=config_dir,
        store=store,
        tiers=tiers,
        catalog_url=env.get(
            "WEIGHTVAULT_CATALOG_URL", f"sqlite:///{home_dir.resolve() / 'catalog.db'}"
        ),
        lifetimes_file=config_dir / _get(keys_raw, "lifetimes_file", str, "keys"),
        gc_grace_minutes=_get(gc_raw, "grace_minutes", int, "gc"),
        min_accuracy=float(_get(raw.get("validation", {}), "min_accuracy", float, "validation")),
    )
