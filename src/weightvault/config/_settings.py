"""Settings: the one loader of the vault's configuration files and ``WEIGHTVAULT_*`` variables.

Files are looked up by name in this order, the first one found wins:

1. the vault home (``<home>/weightvault.toml``, ``<home>/policies/``, ...);
2. the config directory: the folder of ``WEIGHTVAULT_CONFIG``, else a
   ``config/`` found in the working directory or above it;
3. the defaults packaged with weightvault (:func:`packaged_config_dir`).

Environment variables (read here and nowhere else, through pydantic-settings)
override values of ``weightvault.toml``:

``WEIGHTVAULT_HOME``            vault home (keystore, catalog, embedded store)
``WEIGHTVAULT_CONFIG``          a weightvault.toml to use; its folder is the config directory
``WEIGHTVAULT_S3_ENDPOINT``     an external S3 endpoint: host:port, or an http(s):// URL
``WEIGHTVAULT_STORE_PORT``      S3 port of the embedded store (``[store] port``; 0: a free one)
``WEIGHTVAULT_PREFECT_PORT``    port of the Prefect server `up` starts (``[prefect] port``; 0: free)
``WEIGHTVAULT_S3_ACCESS_KEY``   access key for it
``WEIGHTVAULT_S3_CREDENTIALS``  "aws": without the keys, the AWS default chain (AWS_* variables,
                                the shared credentials file and profile, IAM) gives them
``WEIGHTVAULT_S3_SECRET_KEY``   secret key for it
``WEIGHTVAULT_S3_ROLE``         the store role whose credential the vault uses (default admin;
                                the embedded store's own, else the role the keys above are for)
``WEIGHTVAULT_DVC_ACCESS_KEY``  the DVC credential of an external store (its ``dvc`` role)
``WEIGHTVAULT_DVC_SECRET_KEY``  its secret key
``WEIGHTVAULT_S3_SECURE``       "1"/"true" for HTTPS
``WEIGHTVAULT_S3_REGION``       region name
``WEIGHTVAULT_BUCKET_PREFIX``   prefix of every bucket name
``WEIGHTVAULT_STORE_BUCKET``    one existing bucket holding every role under ``<role>/``
                                (``[store] bucket``; empty: a bucket per role, the default)
``WEIGHTVAULT_CATALOG_URL``     SQLAlchemy URL of the catalog (SQLite file, or postgresql://)
``WEIGHTVAULT_KEYSTORE_URL``    postgresql:// URL of the keystore shared by every worker
``WEIGHTVAULT_MASTER_KEY``      base64 master key sealing the keystore
``WEIGHTVAULT_IDENTITY``        the identity to act as: a name under the identity directory,
                                or a path to an identity file (default: the login name)
``WEIGHTVAULT_IDENTITY_DIR``    where identities live (default
                                ``$XDG_CONFIG_HOME/weightvault/identities``)
``WEIGHTVAULT_IDENTITY_PASSPHRASE_FILE`` a file whose first line unlocks a protected identity
                                (the passphrase itself is never read from the environment)
``WEIGHTVAULT_LOG_LEVEL``       log level of every entry point
``WEIGHTVAULT_DEBUG``           "1": tracebacks instead of one-line errors
``WEIGHTVAULT_WITNESSES``       verifier keys of the witnesses the log needs, comma-separated
                                (replaces ``[witnesses] required``; empty: none)
``WEIGHTVAULT_WITNESS_HOME``    home of the witness this host runs (``weightvault witness``)
``WEIGHTVAULT_CERTIFICATE_TIERS`` tiers whose promotion needs a reproducibility certificate,
                                comma-separated ``warm``/``cold``, or ``none`` (replaces the
                                ``[policy] *_requires_certificate`` settings)
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from weightvault.errors import ConfigError

TIERS = ("hot", "warm", "cold", "quarantine")
ROLES = (
    "reader",
    "ingester",
    "validator",
    "promoter",
    "approver",
    "key-admin",
    "auditor",
    "incident-responder",
)
"""The principals' roles (docs/identity.md): the trust root enrols them, the
authorization policy gives each its operations."""
CONFIG_NAME = "weightvault.toml"
LIFETIMES_NAME = "lifetimes.toml"
ROTATION_NAME = "rotation.toml"
POLICIES_NAME = "policies"
EXPECTATIONS_NAME = "expectations"
DEFAULT_STORE_PORT = 9470
"""S3 port of the embedded store unless ``[store] port`` says otherwise (fixed, so a DVC
remote or an aws-cli profile written once keeps working across restarts)."""
DEFAULT_PREFECT_PORT = 4270
"""Port of the Prefect server `weightvault up` starts unless ``[prefect] port`` says otherwise."""


class Environment(BaseSettings):
    """Every ``WEIGHTVAULT_*`` variable the vault reads; secrets stay ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="WEIGHTVAULT_", extra="ignore", frozen=True)

    home: Path | None = None
    config: Path | None = None
    s3_endpoint: str | None = None
    store_port: int | None = Field(default=None, ge=0, le=65535)
    prefect_port: int | None = Field(default=None, ge=0, le=65535)
    s3_access_key: SecretStr | None = None
    s3_credentials: Literal["static", "aws"] | None = None
    s3_secret_key: SecretStr | None = None
    s3_role: str | None = None
    dvc_access_key: SecretStr | None = None
    dvc_secret_key: SecretStr | None = None
    s3_secure: bool | None = None
    s3_region: str | None = None
    bucket_prefix: str | None = None
    store_bucket: str | None = None
    catalog_url: str | None = None
    keystore_url: str | None = None
    master_key: SecretStr | None = None
    identity: str | None = None
    identity_dir: Path | None = None
    identity_passphrase_file: Path | None = None
    log_level: str | None = None
    debug: bool = False
    witnesses: str | None = None
    witness_home: Path | None = None
    certificate_tiers: str | None = None
    training_run_id: str | None = None
    #: credentials of an ``adopt s3://... --endpoint URL`` source (else the AWS_ variables)
    adopt_access_key: SecretStr | None = None
    adopt_secret_key: SecretStr | None = None


def environment() -> Environment:
    """The ``WEIGHTVAULT_*`` variables as they are now (read on every call)."""
    try:
        return Environment()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "WEIGHTVAULT_" + str(first["loc"][0]).upper() if first["loc"] else "WEIGHTVAULT_*"
        raise ConfigError(f"{name} is invalid: {first['msg']}") from None


def identity_dir() -> Path:
    """Where this user's identities live: ``WEIGHTVAULT_IDENTITY_DIR``, else the config dir."""
    env = environment()
    if env.identity_dir is not None:
        return env.identity_dir
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "weightvault" / "identities"


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child it runs, without any ``WEIGHTVAULT_*`` variable.

    A child (git, DVC, a model repository's own training code during a rebuild)
    never sees the vault's settings or secrets (master key, store credentials);
    ``extra`` is added on top.
    """
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WEIGHTVAULT_")}
    env.update(extra)
    return env


def prefect_flow_run_id() -> str | None:
    """The Prefect flow run this process runs in, as Prefect's runner exports it, or None."""
    return os.environ.get("PREFECT__FLOW_RUN_ID") or None


def other_variable(name: str) -> str | None:
    """A non-vault variable the telemetry reads (``PREFECT_API_URL``, ``PREFECT_PROFILE``,
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` ...), or None when unset or empty."""
    if name.upper().startswith("WEIGHTVAULT_"):
        raise ValueError(f"{name} is a vault setting: read it through environment()")
    return os.environ.get(name) or None


# -- weightvault.toml, validated -------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# An S3 bucket name (3-63 characters), or empty for the bucket-per-role layout.
_SINGLE_BUCKET = r"^(|[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$"


class _StoreFile(_Strict):
    endpoint: str
    secure: bool
    region: str
    bucket_prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    bucket: str = Field(default="", pattern=_SINGLE_BUCKET)
    part_size_mib: int = Field(ge=5, le=5120)
    port: int = Field(default=DEFAULT_STORE_PORT, ge=0, le=65535)
    credentials: Literal["static", "aws"] = "static"


class _PrefectFile(_Strict):
    port: int = Field(default=DEFAULT_PREFECT_PORT, ge=0, le=65535)


class _TierFile(_Strict):
    versioned: bool
    object_lock: bool
    retention_days: int = Field(ge=0)

    @model_validator(mode="after")
    def _lock_needs_versions(self) -> _TierFile:
        if self.object_lock and not self.versioned:
            raise ValueError("object_lock needs versioned = true")
        return self


class _TiersFile(_Strict):
    hot: _TierFile
    warm: _TierFile
    cold: _TierFile
    quarantine: _TierFile


class _KeysFile(_Strict):
    lifetimes_file: str = LIFETIMES_NAME
    # NIST SP 800-38D: 2^32 random-nonce AES-GCM invocations per key at most.
    max_kek_wraps: int = Field(default=2**31, ge=1, le=2**32)


class _GcFile(_Strict):
    grace_minutes: int = Field(ge=0)


class _ValidationFile(_Strict):
    min_accuracy: float = Field(ge=0.0, le=1.0)


# A c2sp vkey: <name>+<8 hex digits>+<base64>; the key itself is checked when it is used.
_VKEY = r"^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+={0,2}$"


class _ApprovalsFile(_Strict):
    window_hours: int = Field(default=72, ge=1, le=24 * 90)
    required: int = Field(default=2, ge=1, le=10)
    creator_may_approve: bool = False


class _AutomationsFile(_Strict):
    enabled: bool = True
    read_spike_threshold: int = Field(default=50, ge=2, le=1_000_000)
    read_spike_within_seconds: int = Field(default=300, ge=10, le=86_400)
    denied_threshold: int = Field(default=10, ge=2, le=1_000_000)
    denied_within_seconds: int = Field(default=300, ge=10, le=86_400)
    backstop_minutes: int = Field(default=5, ge=1, le=1440)


@dataclass(frozen=True)
class AutomationSettings:
    """The Prefect automations `weightvault up` installs (docs/containment.md)."""

    enabled: bool = True
    read_spike_threshold: int = 50
    read_spike_within_seconds: int = 300
    denied_threshold: int = 10
    denied_within_seconds: int = 300
    backstop_minutes: int = 5


class _DetectFile(_Strict):
    """Overrides of the detection policy's thresholds (config/policies/detect.rego)."""

    window_seconds: int | None = Field(default=None, ge=1, le=7 * 86400)
    read_spike_artifact: int | None = Field(default=None, ge=1, le=1_000_000)
    read_spike_principal: int | None = Field(default=None, ge=1, le=1_000_000)
    denied_burst: int | None = Field(default=None, ge=1, le=1_000_000)
    integrity_failures: int | None = Field(default=None, ge=1, le=1_000_000)


class _PolicyFile(_Strict):
    cold_requires_certificate: bool = True
    warm_requires_certificate: bool = False


class _EventsFile(_Strict):
    enabled: bool = True
    prefect_api_url: str | None = None


class _TelemetryFile(_Strict):
    otlp_endpoint: str | None = None


class _WitnessesFile(_Strict):
    required: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _vkeys(self) -> _WitnessesFile:
        for vkey in self.required:
            _check_vkey(vkey)
        return self


def _check_vkey(vkey: str) -> str:
    if not re.match(_VKEY, vkey):
        raise ValueError(f"{vkey[:40]!r} is not a verifier key <name>+<hex id>+<base64 key>")
    return vkey


class _SettingsFile(_Strict):
    store: _StoreFile
    tiers: _TiersFile
    keys: _KeysFile = _KeysFile()
    gc: _GcFile
    validation: _ValidationFile
    witnesses: _WitnessesFile = _WitnessesFile()
    approvals: _ApprovalsFile = _ApprovalsFile()
    policy: _PolicyFile = _PolicyFile()
    automations: _AutomationsFile = _AutomationsFile()
    detect: _DetectFile = _DetectFile()
    events: _EventsFile = _EventsFile()
    telemetry: _TelemetryFile = _TelemetryFile()
    prefect: _PrefectFile = _PrefectFile()


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
    # The store role (weightvault.store's role table) the vault's credential is for.
    role: str = "admin"
    # The DVC remote's own credential on an external store (the embedded one issues it).
    dvc_access_key: str = field(default="", repr=False)
    dvc_secret_key: str = field(default="", repr=False)
    #: the embedded store's S3 port (0: a free port on every start)
    port: int = DEFAULT_STORE_PORT
    #: "aws": an external store's credential comes from the AWS default chain, not the keys
    credentials: Literal["static", "aws"] = "static"
    #: ``[store] bucket``: one existing bucket holding each role under ``<role>/``; empty:
    #: the default layout, a bucket ``<bucket_prefix>-<role>`` per role
    single_bucket: str = ""

    @property
    def embedded(self) -> bool:
        """True when the vault runs its own SeaweedFS server."""
        return not self.endpoint

    def bucket(self, role: str) -> str:
        """Bucket name for a tier or for ``envelopes``, ``audit``, ``dvc``.

        In the single-bucket layout it is ``<bucket>/<role>``: the key prefix ``<role>/``
        of that one bucket, which :class:`weightvault.store.ObjectStore` translates.
        """
        if self.single_bucket:
            return f"{self.single_bucket}/{role}"
        return f"{self.bucket_prefix}-{role}"


@dataclass(frozen=True)
class Settings:
    """Everything the core needs to open a vault."""

    home: Path
    config_dir: Path
    store: StoreSettings
    tiers: dict[str, TierSettings]
    catalog_url: str = field(repr=False)  # a PostgreSQL URL may carry a password
    lifetimes_file: Path
    gc_grace_minutes: int
    min_accuracy: float = 0.9
    rotation_file: Path | None = None
    policy_dir: Path = field(default_factory=lambda: packaged_config_dir() / POLICIES_NAME)
    expectations_dir: Path = field(
        default_factory=lambda: packaged_config_dir() / EXPECTATIONS_NAME
    )
    master_key: str | None = field(default=None, repr=False)
    keystore_url: str | None = field(default=None, repr=False)
    max_kek_wraps: int = 2**31
    witnesses: tuple[str, ...] = ()
    approval_window_hours: int = 72
    approvals_required: int = 2
    creator_may_approve: bool = False
    #: tiers a promotion into needs a valid reproducibility certificate (Rego ``reproducible``)
    certificate_tiers: tuple[str, ...] = ("cold",)
    automations: AutomationSettings = field(default_factory=AutomationSettings)
    #: ``[detect]``: the detection thresholds set in the file (the policy's defaults otherwise)
    detect_thresholds: dict[str, int] = field(default_factory=dict)
    #: Prefect events of every outcome (``[events]``; the URL else from Prefect's own settings)
    events_enabled: bool = True
    events_api_url: str | None = None
    #: the OTLP/HTTP endpoint (``[telemetry]``; else ``OTEL_EXPORTER_OTLP_ENDPOINT``)
    otlp_endpoint: str | None = None
    #: the port of the Prefect server `up` starts (``[prefect] port``; 0: a free port)
    prefect_port: int = DEFAULT_PREFECT_PORT

    @property
    def last_checkpoint_path(self) -> Path:
        """The log checkpoint this host verified last (``audit verify`` keeps it, 0600)."""
        return self.home / "log-last-seen.checkpoint"

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


def packaged_config_dir() -> Path:
    """The default config shipped with weightvault.

    In a wheel it is package data (``weightvault/_defaults``, built from the
    repository's ``config/``); in a checkout it is that ``config/`` itself.
    """
    package = Path(__file__).resolve().parents[1]
    wheel = package / "_defaults"
    return wheel if wheel.is_dir() else package.parents[1] / "config"


def find_config_dir(start: Path | None = None) -> Path:
    """The config directory: WEIGHTVAULT_CONFIG's folder, a ``config/`` above ``start``, or
    the packaged defaults."""
    explicit = environment().config
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"WEIGHTVAULT_CONFIG names a missing file: {explicit}")
        return explicit.parent
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "config" / CONFIG_NAME).is_file():
            return folder / "config"
    packaged = packaged_config_dir()
    if (packaged / CONFIG_NAME).is_file():
        return packaged
    raise ConfigError(f"no config/{CONFIG_NAME} found; set WEIGHTVAULT_CONFIG")


def resolve_config_file(name: str, home: Path, config_dir: Path) -> Path | None:
    """The first of ``home/name``, ``config_dir/name``, packaged ``name`` that exists."""
    for folder in (home, config_dir, packaged_config_dir()):
        candidate = folder / name
        if candidate.exists():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; ConfigError naming the file on any problem."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _validated(path: Path) -> _SettingsFile:
    try:
        return _SettingsFile.model_validate(read_toml(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        kind: Literal["missing", "other"] = "missing" if first["type"] == "missing" else "other"
        detail = "is missing" if kind == "missing" else f"is invalid: {first['msg']}"
        raise ConfigError(f"{path.name}: {where} {detail}") from None


def _default_home(config_dir: Path) -> Path:
    """``<checkout>/.weightvault`` beside a checkout's config, else ``./.weightvault``."""
    if config_dir.resolve() == packaged_config_dir().resolve() and (
        packaged_config_dir().name == "_defaults"
    ):
        return Path.cwd() / ".weightvault"
    return config_dir.parent / ".weightvault"


def load_settings(config_dir: Path | None = None, home: Path | None = None) -> Settings:
    """Read the settings files and apply the environment."""
    env = environment()
    config_dir = config_dir or find_config_dir()
    home_dir = (home or env.home or _default_home(config_dir)).resolve()
    path = (
        env.config
        if env.config is not None
        else resolve_config_file(CONFIG_NAME, home_dir, config_dir)
    )
    if path is None:
        raise ConfigError(f"no {CONFIG_NAME} found in {home_dir} or {config_dir}")
    raw = _validated(path)

    endpoint, secure = parse_endpoint(
        env.s3_endpoint if env.s3_endpoint is not None else raw.store.endpoint,
        env.s3_secure if env.s3_secure is not None else raw.store.secure,
        "WEIGHTVAULT_S3_ENDPOINT" if env.s3_endpoint is not None else f"{path.name}: endpoint",
    )
    access_key = env.s3_access_key.get_secret_value() if env.s3_access_key else ""
    store = StoreSettings(
        endpoint=endpoint,
        secure=secure,
        region=env.s3_region or raw.store.region,
        bucket_prefix=env.bucket_prefix or raw.store.bucket_prefix,
        part_size=raw.store.part_size_mib * 1024 * 1024,
        access_key=access_key,
        secret_key=env.s3_secret_key.get_secret_value() if env.s3_secret_key else "",
        role=env.s3_role or "admin",
        dvc_access_key=env.dvc_access_key.get_secret_value() if env.dvc_access_key else "",
        dvc_secret_key=env.dvc_secret_key.get_secret_value() if env.dvc_secret_key else "",
        port=env.store_port if env.store_port is not None else raw.store.port,
        single_bucket=_single_bucket(env.store_bucket, raw.store.bucket),
        # Keys set explicitly win over the chain.
        credentials="static" if access_key else (env.s3_credentials or raw.store.credentials),
    )
    static = store.credentials == "static"
    if store.endpoint and static and not (store.access_key and store.secret_key):
        raise ConfigError(
            "an external S3 endpoint needs WEIGHTVAULT_S3_ACCESS_KEY and "
            "WEIGHTVAULT_S3_SECRET_KEY (or WEIGHTVAULT_S3_CREDENTIALS=aws for the AWS chain)"
        )
    tiers = {
        name: TierSettings(name=name, **getattr(raw.tiers, name).model_dump()) for name in TIERS
    }
    lifetimes = resolve_config_file(raw.keys.lifetimes_file, home_dir, config_dir)
    witnesses = tuple(raw.witnesses.required)
    if env.witnesses is not None:
        try:
            witnesses = tuple(_check_vkey(v) for v in env.witnesses.replace(",", " ").split())
        except ValueError as exc:
            raise ConfigError(f"WEIGHTVAULT_WITNESSES is invalid: {exc}") from None
    return Settings(
        home=home_dir,
        config_dir=config_dir,
        store=store,
        tiers=tiers,
        catalog_url=env.catalog_url or f"sqlite:///{home_dir / 'catalog.db'}",
        keystore_url=env.keystore_url or None,
        lifetimes_file=lifetimes or config_dir / raw.keys.lifetimes_file,
        gc_grace_minutes=raw.gc.grace_minutes,
        min_accuracy=raw.validation.min_accuracy,
        rotation_file=resolve_config_file(ROTATION_NAME, home_dir, config_dir),
        policy_dir=resolve_config_file(POLICIES_NAME, home_dir, config_dir)
        or config_dir / POLICIES_NAME,
        expectations_dir=resolve_config_file(EXPECTATIONS_NAME, home_dir, config_dir)
        or config_dir / EXPECTATIONS_NAME,
        master_key=env.master_key.get_secret_value() if env.master_key else None,
        max_kek_wraps=raw.keys.max_kek_wraps,
        witnesses=witnesses,
        approval_window_hours=raw.approvals.window_hours,
        approvals_required=raw.approvals.required,
        creator_may_approve=raw.approvals.creator_may_approve,
        certificate_tiers=_certificate_tiers(raw.policy, env.certificate_tiers),
        automations=AutomationSettings(**raw.automations.model_dump()),
        detect_thresholds={k: v for k, v in raw.detect.model_dump().items() if v is not None},
        events_enabled=raw.events.enabled,
        events_api_url=raw.events.prefect_api_url,
        otlp_endpoint=raw.telemetry.otlp_endpoint,
        prefect_port=env.prefect_port if env.prefect_port is not None else raw.prefect.port,
    )


def _single_bucket(override: str | None, configured: str) -> str:
    """``[store] bucket``, or ``WEIGHTVAULT_STORE_BUCKET`` when set (ConfigError if not a
    bucket name)."""
    if override is None:
        return configured
    name = override.strip()
    if not re.match(_SINGLE_BUCKET, name):
        raise ConfigError(
            f"WEIGHTVAULT_STORE_BUCKET {override[:70]!r} is not an S3 bucket name "
            "(3-63 lowercase letters, digits, dots and hyphens)"
        )
    return name


_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$")


def parse_endpoint(text: str, secure: bool, setting: str) -> tuple[str, bool]:
    """``(host[:port], secure)`` of an S3 endpoint given as ``host[:port]`` or a URL.

    A URL's scheme (``http``/``https``) decides ``secure``; a path, query, user
    name or anything but a host and port is a ConfigError naming ``setting``.
    """
    text = text.strip()
    if not text:
        return "", secure
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in {"http", "https"}:
            raise ConfigError(f"{setting} {text!r}: the scheme must be http or https")
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            raise ConfigError(f"{setting} {text!r}: only scheme, host and port, no path")
        if parts.username or parts.password:
            raise ConfigError(f"{setting}: credentials never go in the endpoint URL")
        host, secure = parts.netloc, parts.scheme == "https"
    else:
        host = text
    match = _HOST.match(host)
    if match is None or (match.group(3) and not 0 < int(match.group(3)[1:]) < 65536):
        raise ConfigError(f"{setting} {text!r} is not host[:port] or http(s)://host[:port]")
    return host, secure


def _certificate_tiers(policy: _PolicyFile, override: str | None) -> tuple[str, ...]:
    """The tiers whose promotion needs a certificate: the ``[policy]`` table, or the variable."""
    if override is None:
        flags = {"warm": policy.warm_requires_certificate, "cold": policy.cold_requires_certificate}
        return tuple(tier for tier, on in flags.items() if on)
    named = {t.strip().lower() for t in override.split(",") if t.strip()}
    if named == {"none"}:
        return ()
    if not named or not named <= {"warm", "cold"}:
        raise ConfigError(
            "WEIGHTVAULT_CERTIFICATE_TIERS is invalid: name warm and/or cold, or none"
        )
    return tuple(t for t in ("warm", "cold") if t in named)
