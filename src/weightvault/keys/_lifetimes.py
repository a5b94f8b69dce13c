"""Quantum-aware key lifetime policy.

This module decides, for a key type (``kek``, ``signing``, ``escrow_kem``,
``token``), a tier (``hot``, ``warm``, ``cold``), a data sensitivity class and a
moment ``now``, how long a new key may live, which algorithms it may use and
why. It is pure: the only I/O is reading the TOML policy file in
:func:`load_lifetime_policy`, and ``now`` is always injectable (only the public
wrappers default it to the current time).

The rules, in order (numbers are the shipped defaults of
``config/lifetimes.toml``):

1. **Tier cap** -- ``tiers.<tier>.max_lifetime_days.<key type>`` (e.g. hot KEK
   30 days, cold KEK 365 days). Loading refuses a cap above the key type's
   ``nist_max_days``, the cryptoperiod ceiling of NIST SP 800-57 Part 1 Rev. 5,
   Table 1 (symmetric key-wrapping key: originator-usage period <= 2 years;
   private signature key: 1-3 years; private key-transport key: <= 2 years;
   symmetric authorization key: <= 2 years).
2. **Sensitivity** -- the cap is multiplied by the sensitivity class's
   ``lifetime_factor`` (public/internal 1.0, confidential 0.75, restricted
   0.5).
3. **Quantum cap (asymmetric keys only)** -- with ``days_to_crqc`` the days
   from ``now`` to 1 January of the CRQC horizon year *z* and *y* the global
   migration time, the lifetime is capped at
   ``max(min_lifetime_days, days_to_crqc - y)``: a key never outlives the date
   by which migration must start, and inside that window keys rotate at the
   floor cadence (90 days). The cap only shrinks as *z* approaches, so
   lifetimes are monotonically non-increasing in ``now`` and in *z*. Symmetric
   keys (AES-256) are Grover-safe -- Grover at most halves the effective key
   strength, to about 128 bits -- and NIST IR 8547 and CNSA 2.0 both keep
   AES-256, so this rule never shortens them; only rules 1 and 2 do.
4. **Mosca's inequality** -- with shelf life *x* from the sensitivity class
   (public 0, internal 2, confidential 7, restricted 15 years),
   ``x + y > years_to_crqc`` means data protected today by classical-only
   asymmetric cryptography is exposed once a CRQC exists ("harvest now,
   decrypt later", forged signatures on archived artifacts). Then hybrid
   post-quantum protection (Ed25519 + ML-DSA-65 signatures, ML-KEM-768 +
   X25519 HPKE) is required and :func:`check_algorithm` refuses classical-only
   algorithms such as ``ed25519`` or ``x25519`` alone. ``years_to_crqc`` is
   fractional (``days_to_crqc / 365.2425``); equality does not trigger the
   rule.
5. **NIST IR 8547 dates** -- after ``classical_deprecated_after`` (2030) a
   classical-only asymmetric key carries a warning; after
   ``classical_disallowed_after`` (2035, i.e. from 1 January 2036) it is always
   refused, whatever Mosca says. While classical is still allowed, a
   classical-only key's lifetime (``classical_max_lifetime``) is further
   capped so that the data it protects last still satisfies Mosca
   (``years_to_crqc - x - y``) and so that it expires before the disallow
   date.

The rotation lead ("near expiry") is
``min(lead_fraction * max_lifetime, lead_max_days)``; :func:`is_due` is true
once ``now >= expiry - lead``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeVar

from weightvault.errors import ConfigError, PolicyError, UsageError

__all__ = [
    "DAYS_PER_YEAR",
    "AlgorithmRequirement",
    "KeyFamily",
    "KeyPlan",
    "KeyTypeRule",
    "LifetimePolicy",
    "QuantumRule",
    "QuantumStatus",
    "Reason",
    "RotationRule",
    "SensitivityClass",
    "TierRule",
    "check_algorithm",
    "expires_at",
    "explain_plan",
    "is_algorithm_allowed",
    "is_due",
    "load_lifetime_policy",
    "normalize_algorithm",
    "parse_lifetime_policy",
    "plan_key",
    "plan_matrix",
]

_T = TypeVar("_T")

#: Mean Gregorian year, used to convert the policy's years to days.
DAYS_PER_YEAR = 365.2425

SCHEMA_VERSION = 1

SP800_57 = "NIST SP 800-57 Part 1 Rev. 5, Table 1"
IR_8547 = "NIST IR 8547"
CNSA_2 = "CNSA 2.0"
MOSCA = "Mosca's inequality"
CONFIG = "lifetimes.toml"

#: 256-bit symmetric algorithms: Grover leaves them about 128-bit strength.
GROVER_SAFE_SYMMETRIC = frozenset(
    {
        "aes-256-gcm",
        "aes-256-gcm-siv",
        "aes-256-kw",
        "aes-256-kwp",
        "chacha20-poly1305",
        "hmac-sha-256",
        "hmac-sha-384",
        "hmac-sha-512",
    }
)

_PQ_COMPONENT = re.compile(r"^(ml-kem-|ml-dsa-|slh-dsa-|lms|xmss|hss)")
_CLASSICAL_ASYMMETRIC = re.compile(
    r"^(rsa|ecdsa|ecdh|eddsa|dsa|dh|ffdh|ed25519|ed448|x25519|x448|p-?256|p-?384|p-?521|secp)"
)
_ALIASES = {
    "mldsa65": "ml-dsa-65",
    "mldsa87": "ml-dsa-87",
    "mlkem768": "ml-kem-768",
    "mlkem1024": "ml-kem-1024",
    "aes256gcm": "aes-256-gcm",
    "aes-256gcm": "aes-256-gcm",
}


class KeyFamily(StrEnum):
    """Whether a key type is symmetric (AES-256) or asymmetric (hybrid PQ)."""

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"


class QuantumStatus(StrEnum):
    """Where a key stands against a cryptographically relevant quantum computer."""

    GROVER_SAFE = "grover-safe"
    """Symmetric 256-bit key: not shortened by the quantum rule."""
    CLASSICAL_ALLOWED = "classical-allowed"
    """Asymmetric, x + y <= years to CRQC: classical-only still accepted."""
    HYBRID_REQUIRED = "hybrid-required"
    """Asymmetric, x + y > years to CRQC (Mosca): classical-only refused."""
    CLASSICAL_DISALLOWED = "classical-disallowed"
    """Asymmetric, past the NIST IR 8547 disallow date: classical-only refused."""


class AlgorithmRequirement(StrEnum):
    """What a key's algorithm must be."""

    SYMMETRIC = "aes-256"
    """A configured 256-bit symmetric algorithm (aes-256-gcm)."""
    HYBRID = "hybrid"
    """A hybrid classical + post-quantum algorithm; classical-only refused."""
    CLASSICAL_ALLOWED = "classical-allowed"
    """Hybrid preferred (and generated); classical-only still accepted."""


@dataclass(frozen=True)
class Reason:
    """One rule that shaped a plan: which rule, what it did, and its source."""

    rule: str
    message: str
    source: str
    level: Literal["info", "warn", "refuse"] = "info"

    def __str__(self) -> str:
        """Render as ``[rule] message (source)``, prefixed by the level if not info."""
        prefix = "" if self.level == "info" else f"{self.level.upper()}: "
        return f"{prefix}[{self.rule}] {self.message} ({self.source})"


@dataclass(frozen=True)
class KeyTypeRule:
    """A key type's family, algorithms and SP 800-57 cryptoperiod ceiling."""

    name: str
    family: KeyFamily
    nist_max_days: float
    algorithms: tuple[str, ...] = ()
    hybrid_algorithms: tuple[str, ...] = ()
    classical_algorithms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SensitivityClass:
    """A data sensitivity class: Mosca's shelf life x and a lifetime factor."""

    name: str
    shelf_life_years: float
    lifetime_factor: float


@dataclass(frozen=True)
class TierRule:
    """A tier's default sensitivity and its per-key-type lifetime caps (days)."""

    name: str
    default_sensitivity: str
    max_lifetime_days: Mapping[str, float]


@dataclass(frozen=True)
class QuantumRule:
    """The CRQC horizon z, migration time y and the NIST IR 8547 years."""

    crqc_horizon_year: int
    migration_years: float
    min_lifetime_days: float
    classical_deprecated_after: int
    classical_disallowed_after: int

    @property
    def horizon(self) -> datetime:
        """The instant the CRQC is assumed to exist: 1 January of z, UTC."""
        return datetime(self.crqc_horizon_year, 1, 1, tzinfo=UTC)

    @property
    def deprecated_from(self) -> datetime:
        """First instant classical-only asymmetric is deprecated (IR 8547)."""
        return datetime(self.classical_deprecated_after + 1, 1, 1, tzinfo=UTC)

    @property
    def disallowed_from(self) -> datetime:
        """First instant classical-only asymmetric is disallowed (IR 8547)."""
        return datetime(self.classical_disallowed_after + 1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RotationRule:
    """How long before expiry a key counts as due for rotation."""

    lead_fraction: float
    lead_max_days: float


@dataclass(frozen=True)
class LifetimePolicy:
    """The validated lifetime policy, as loaded from ``config/lifetimes.toml``."""

    quantum: QuantumRule
    rotation: RotationRule
    key_types: Mapping[str, KeyTypeRule]
    sensitivities: Mapping[str, SensitivityClass]
    tiers: Mapping[str, TierRule]
    source: str = CONFIG

    def with_horizon(self, crqc_horizon_year: int) -> LifetimePolicy:
        """Return a copy with another CRQC horizon year z (for what-if plans)."""
        return replace(self, quantum=replace(self.quantum, crqc_horizon_year=crqc_horizon_year))


@dataclass(frozen=True)
class KeyPlan:
    """What the policy allows for one new key, and why.

    ``max_lifetime`` applies to a key of the preferred (hybrid or AES-256)
    algorithm; ``classical_max_lifetime`` to a classical-only asymmetric key
    while that is still allowed (``None`` otherwise).
    """

    key_type: str
    tier: str
    sensitivity: str
    family: KeyFamily
    computed_at: datetime
    max_lifetime: timedelta
    classical_max_lifetime: timedelta | None
    rotation_lead: timedelta
    requirement: AlgorithmRequirement
    preferred_algorithm: str
    allowed_algorithms: tuple[str, ...]
    quantum_status: QuantumStatus
    years_to_crqc: float
    shelf_life_years: float
    migration_years: float
    crqc_horizon_year: int
    reasons: tuple[Reason, ...]

    @property
    def hybrid_required(self) -> bool:
        """True when classical-only asymmetric protection is refused."""
        return self.requirement is AlgorithmRequirement.HYBRID

    @property
    def warnings(self) -> tuple[Reason, ...]:
        """The reasons at level ``warn``."""
        return tuple(r for r in self.reasons if r.level == "warn")

    def rules(self) -> frozenset[str]:
        """The names of the rules that contributed a reason."""
        return frozenset(r.rule for r in self.reasons)


# ---------------------------------------------------------------------------
# Loading and validation


def load_lifetime_policy(path: Path) -> LifetimePolicy:
    """Read and validate the lifetime policy TOML file at ``path``.

    Raises :class:`ConfigError` with a one-line message naming the file and the
    offending key when the file is missing, unreadable, not TOML, or invalid.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: lifetime policy file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read lifetime policy: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: lifetime policy is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_lifetime_policy(data, source=str(path))


def parse_lifetime_policy(data: Mapping[str, Any], source: str = CONFIG) -> LifetimePolicy:
    """Validate an already-parsed policy document (the TOML as a mapping).

    ``source`` names the document in error messages. Raises
    :class:`ConfigError` naming the first bad key.
    """
    v = _Validator(source)
    v.only_keys(
        data, "", {"schema_version", "quantum", "rotation", "key_types", "sensitivity", "tiers"}
    )
    version = v.integer(data, "schema_version", minimum=1)
    if version != SCHEMA_VERSION:
        v.fail("schema_version", f"unsupported version {version} (expected {SCHEMA_VERSION})")

    quantum = _parse_quantum(v, v.table(data, "quantum"))
    rotation = _parse_rotation(v, v.table(data, "rotation"))
    key_types = _parse_key_types(v, v.table(data, "key_types"))
    sensitivities = _parse_sensitivities(v, v.table(data, "sensitivity"))
    tiers = _parse_tiers(v, v.table(data, "tiers"), key_types, sensitivities)
    return LifetimePolicy(
        quantum=quantum,
        rotation=rotation,
        key_types=MappingProxyType(key_types),
        sensitivities=MappingProxyType(sensitivities),
        tiers=MappingProxyType(tiers),
        source=source,
    )


def _parse_quantum(v: _Validator, t: Mapping[str, Any]) -> QuantumRule:
    v.only_keys(
        t,
        "quantum",
        {
            "crqc_horizon_year",
            "migration_years",
            "min_lifetime_days",
            "classical_deprecated_after",
            "classical_disallowed_after",
        },
    )
    rule = QuantumRule(
        crqc_horizon_year=v.integer(t, "quantum.crqc_horizon_year", minimum=2000, maximum=2200),
        migration_years=v.number(t, "quantum.migration_years", minimum=0.0, maximum=100.0),
        min_lifetime_days=v.number(t, "quantum.min_lifetime_days", minimum=0.0, positive=True),
        classical_deprecated_after=v.integer(
            t, "quantum.classical_deprecated_after", minimum=2000, maximum=2200
        ),
        classical_disallowed_after=v.integer(
            t, "quantum.classical_disallowed_after", minimum=2000, maximum=2200
        ),
    )
    if rule.classical_deprecated_after > rule.classical_disallowed_after:
        v.fail(
            "quantum.classical_deprecated_after",
            f"{rule.classical_deprecated_after} is after classical_disallowed_after "
            f"{rule.classical_disallowed_after}",
        )
    return rule


def _parse_rotation(v: _Validator, t: Mapping[str, Any]) -> RotationRule:
    v.only_keys(t, "rotation", {"lead_fraction", "lead_max_days"})
    fraction = v.number(t, "rotation.lead_fraction", minimum=0.0, maximum=1.0)
    if fraction >= 1.0:
        v.fail("rotation.lead_fraction", f"must be below 1, got {fraction}")
    return RotationRule(
        lead_fraction=fraction,
        lead_max_days=v.number(t, "rotation.lead_max_days", minimum=0.0),
    )


def _parse_key_types(v: _Validator, t: Mapping[str, Any]) -> dict[str, KeyTypeRule]:
    if not t:
        v.fail("key_types", "at least one key type is required")
    out: dict[str, KeyTypeRule] = {}
    for name in t:
        path = f"key_types.{name}"
        kt = v.table(t, name, path)
        family_raw = v.string(kt, f"{path}.family")
        try:
            family = KeyFamily(family_raw)
        except ValueError:
            v.fail(f"{path}.family", f"must be 'symmetric' or 'asymmetric', got {family_raw!r}")
        nist_max = v.number(kt, f"{path}.nist_max_days", minimum=0.0, positive=True)
        if family is KeyFamily.SYMMETRIC:
            v.only_keys(kt, path, {"family", "nist_max_days", "algorithms"})
            algorithms = v.algorithms(kt, f"{path}.algorithms")
            for alg in algorithms:
                if alg not in GROVER_SAFE_SYMMETRIC:
                    v.fail(
                        f"{path}.algorithms",
                        f"{alg!r} is not a 256-bit (Grover-safe) symmetric algorithm",
                    )
            out[name] = KeyTypeRule(name, family, nist_max, algorithms=algorithms)
        else:
            v.only_keys(
                kt, path, {"family", "nist_max_days", "hybrid_algorithms", "classical_algorithms"}
            )
            hybrid = v.algorithms(kt, f"{path}.hybrid_algorithms")
            for alg in hybrid:
                if not _is_hybrid(alg):
                    v.fail(
                        f"{path}.hybrid_algorithms",
                        f"{alg!r} is not classical + post-quantum (e.g. 'ed25519+ml-dsa-65')",
                    )
            classical = v.algorithms(kt, f"{path}.classical_algorithms", allow_empty=True)
            for alg in classical:
                if not _is_classical_only(alg):
                    v.fail(
                        f"{path}.classical_algorithms",
                        f"{alg!r} is not a classical asymmetric algorithm",
                    )
            out[name] = KeyTypeRule(
                name, family, nist_max, hybrid_algorithms=hybrid, classical_algorithms=classical
            )
    return out


def _parse_sensitivities(v: _Validator, t: Mapping[str, Any]) -> dict[str, SensitivityClass]:
    if not t:
        v.fail("sensitivity", "at least one sensitivity class is required")
    out: dict[str, SensitivityClass] = {}
    for name in t:
        path = f"sensitivity.{name}"
        s = v.table(t, name, path)
        v.only_keys(s, path, {"shelf_life_years", "lifetime_factor"})
        factor = v.number(s, f"{path}.lifetime_factor", minimum=0.0, maximum=1.0, positive=True)
        out[name] = SensitivityClass(
            name=name,
            shelf_life_years=v.number(s, f"{path}.shelf_life_years", minimum=0.0, maximum=1000.0),
            lifetime_factor=factor,
        )
    return out


def _parse_tiers(
    v: _Validator,
    t: Mapping[str, Any],
    key_types: Mapping[str, KeyTypeRule],
    sensitivities: Mapping[str, SensitivityClass],
) -> dict[str, TierRule]:
    if not t:
        v.fail("tiers", "at least one tier is required")
    out: dict[str, TierRule] = {}
    for name in t:
        path = f"tiers.{name}"
        tier = v.table(t, name, path)
        v.only_keys(tier, path, {"default_sensitivity", "max_lifetime_days"})
        default = v.string(tier, f"{path}.default_sensitivity")
        if default not in sensitivities:
            v.fail(
                f"{path}.default_sensitivity",
                f"unknown sensitivity class {default!r} (known: {', '.join(sensitivities)})",
            )
        lt_path = f"{path}.max_lifetime_days"
        lifetimes = v.table(tier, "max_lifetime_days", lt_path)
        v.only_keys(lifetimes, lt_path, set(key_types))
        caps: dict[str, float] = {}
        for kt_name, rule in key_types.items():
            key = f"{lt_path}.{kt_name}"
            days = v.number(lifetimes, key, minimum=0.0, positive=True)
            if days > rule.nist_max_days:
                v.fail(
                    key,
                    f"{days:g} days exceeds the {SP800_57} ceiling key_types.{kt_name}."
                    f"nist_max_days = {rule.nist_max_days:g}",
                )
            caps[kt_name] = days
        out[name] = TierRule(name, default, MappingProxyType(caps))
    return out


class _Validator:
    """Typed accessors that raise ConfigError naming the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {key}: {problem}")

    def only_keys(self, table: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                dotted = f"{path}.{key}" if path else key
                self.fail(dotted, "unknown key")

    def _get(self, table: Mapping[str, Any], dotted: str) -> Any:
        leaf = dotted.rsplit(".", 1)[-1]
        if leaf not in table:
            self.fail(dotted, "missing")
        return table[leaf]

    def table(
        self, parent: Mapping[str, Any], key: str, dotted: str | None = None
    ) -> Mapping[str, Any]:
        dotted = dotted or key
        if key not in parent:
            self.fail(dotted, "missing table")
        value = parent[key]
        if not isinstance(value, Mapping):
            self.fail(dotted, f"must be a table, got {type(value).__name__}")
        return value

    def integer(
        self, table: Mapping[str, Any], dotted: str, *, minimum: int, maximum: int | None = None
    ) -> int:
        value = self._get(table, dotted)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(dotted, f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.fail(dotted, f"must be {bound}, got {value}")
        return int(value)

    def number(
        self,
        table: Mapping[str, Any],
        dotted: str,
        *,
        minimum: float,
        maximum: float | None = None,
        positive: bool = False,
    ) -> float:
        value = self._get(table, dotted)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(dotted, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            self.fail(dotted, f"must be finite, got {value!r}")
        if positive and number <= 0:
            self.fail(dotted, f"must be positive, got {value!r}")
        if number < minimum or (maximum is not None and number > maximum):
            bound = (
                f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
            )
            self.fail(dotted, f"must be {bound}, got {value!r}")
        return number

    def string(self, table: Mapping[str, Any], dotted: str) -> str:
        value = self._get(table, dotted)
        if not isinstance(value, str) or not value:
            self.fail(dotted, f"must be a non-empty string, got {value!r}")
        return str(value)

    def algorithms(
        self, table: Mapping[str, Any], dotted: str, *, allow_empty: bool = False
    ) -> tuple[str, ...]:
        value = self._get(table, dotted)
        if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
            self.fail(dotted, f"must be a list of algorithm names, got {value!r}")
        if not value and not allow_empty:
            self.fail(dotted, "must name at least one algorithm")
        return tuple(normalize_algorithm(a) for a in value)


# ---------------------------------------------------------------------------
# Algorithms


def normalize_algorithm(name: str) -> str:
    """Canonical spelling: lower case, ``-`` not ``_``, hybrid parts sorted by ``+``.

    ``"ML-DSA-65+Ed25519"`` and ``"ed25519 + ml_dsa_65"`` both become
    ``"ed25519+ml-dsa-65"``.
    """
    parts = []
    for raw in name.split("+"):
        part = raw.strip().lower().replace("_", "-")
        parts.append(_ALIASES.get(part, part))
    return "+".join(sorted(p for p in parts if p))


def _components(name: str) -> list[str]:
    return normalize_algorithm(name).split("+")


def _is_hybrid(name: str) -> bool:
    parts = _components(name)
    return any(_PQ_COMPONENT.match(p) for p in parts) and any(
        _CLASSICAL_ASYMMETRIC.match(p) for p in parts
    )


def _is_classical_only(name: str) -> bool:
    parts = _components(name)
    return all(_CLASSICAL_ASYMMETRIC.match(p) for p in parts)


def is_algorithm_allowed(plan: KeyPlan, algorithm: str) -> bool:
    """True when ``algorithm`` is acceptable for a key planned by ``plan``."""
    return normalize_algorithm(algorithm) in plan.allowed_algorithms


def check_algorithm(plan: KeyPlan, algorithm: str) -> None:
    """Raise :class:`PolicyError` unless ``algorithm`` is allowed by ``plan``.

    Classical-only asymmetric algorithms (``ed25519``, ``x25519``, RSA, ECDSA,
    ...) are refused when the plan requires hybrid post-quantum protection
    (Mosca's inequality holds, or the NIST IR 8547 disallow date has passed).
    Anything not configured for the key type is refused too.
    """
    canonical = normalize_algorithm(algorithm)
    if canonical in plan.allowed_algorithms:
        return
    if plan.family is KeyFamily.ASYMMETRIC and _is_classical_only(canonical):
        if plan.quantum_status is QuantumStatus.CLASSICAL_DISALLOWED:
            why = f"{IR_8547} disallows classical quantum-vulnerable algorithms by now"
        elif plan.hybrid_required:
            why = (
                f"{MOSCA}: shelf life x={plan.shelf_life_years:g} + migration "
                f"y={plan.migration_years:g} > {plan.years_to_crqc:.2f} years to CRQC "
                f"({plan.crqc_horizon_year})"
            )
        else:
            why = "it is not configured for this key type"
        raise PolicyError(
            f"classical-only algorithm {canonical!r} refused for {plan.key_type} keys in tier "
            f"{plan.tier} ({plan.sensitivity}): hybrid post-quantum required, use "
            f"{plan.preferred_algorithm!r}; {why}"
        )
    raise PolicyError(
        f"algorithm {canonical!r} is not allowed for {plan.key_type} keys in tier {plan.tier} "
        f"(allowed: {', '.join(plan.allowed_algorithms)})"
    )


# ---------------------------------------------------------------------------
# Planning


def plan_key(
    policy: LifetimePolicy,
    key_type: str,
    tier: str,
    sensitivity: str | None = None,
    now: datetime | None = None,
) -> KeyPlan:
    """Plan a new key of ``key_type`` for ``tier``: lifetime, algorithms, reasons.

    ``sensitivity`` defaults to the tier's default class; ``now`` (timezone
    aware) defaults to the current time. Unknown key types, tiers or classes
    raise :class:`UsageError`. See the module docstring for the rules.
    """
    return _plan(policy, key_type, tier, sensitivity, datetime.now(UTC) if now is None else now)


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400.0


def _fmt_days(days: float) -> str:
    return f"{days:.1f}".rstrip("0").rstrip(".") + (" day" if days == 1 else " days")


def _aware(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"{name} must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(UTC)


def _lookup(table: Mapping[str, _T], name: str, what: str) -> _T:
    if name not in table:
        raise UsageError(f"unknown {what} {name!r} (configured: {', '.join(table)})")
    return table[name]


@dataclass(frozen=True)
class _Decision:
    days: float
    status: QuantumStatus
    requirement: AlgorithmRequirement
    preferred: str
    allowed: tuple[str, ...]
    classical_days: float | None = None


def _symmetric(kt: KeyTypeRule, days: float, reasons: list[Reason]) -> _Decision:
    """Symmetric keys: AES-256 is Grover-safe, the quantum rule leaves them alone."""
    preferred = kt.algorithms[0]
    reasons.append(
        Reason(
            "grover",
            f"{preferred} is a 256-bit symmetric key: Grover leaves ~128-bit strength, "
            "so the quantum rule does not shorten it",
            f"{IR_8547} (AES-256 remains approved); {CNSA_2} (AES-256)",
        )
    )
    return _Decision(
        days, QuantumStatus.GROVER_SAFE, AlgorithmRequirement.SYMMETRIC, preferred, kt.algorithms
    )


def _asymmetric(
    policy: LifetimePolicy,
    kt: KeyTypeRule,
    sens: SensitivityClass,
    *,
    days: float,
    days_to_crqc: float,
    now: datetime,
    reasons: list[Reason],
) -> _Decision:
    """Asymmetric keys: quantum cap (rule 3), Mosca (rule 4), IR 8547 dates (rule 5)."""
    q = policy.quantum
    src = policy.source
    x, y = sens.shelf_life_years, q.migration_years
    years_to_crqc = days_to_crqc / DAYS_PER_YEAR
    preferred = kt.hybrid_algorithms[0]

    cap = max(q.min_lifetime_days, days_to_crqc - y * DAYS_PER_YEAR)
    if cap < days:
        days = cap
        reasons.append(
            Reason(
                "quantum-cap",
                f"asymmetric key capped at max(floor {_fmt_days(q.min_lifetime_days)}, "
                f"{years_to_crqc:.2f} years to CRQC {q.crqc_horizon_year} - migration "
                f"y={y:g} years) = {_fmt_days(cap)}",
                f"{src} quantum.crqc_horizon_year, quantum.migration_years, "
                "quantum.min_lifetime_days",
            )
        )

    mosca = x + y > years_to_crqc
    disallowed = now >= q.disallowed_from
    comparison = (
        f"shelf life x={x:g} + migration y={y:g} = {x + y:g} years "
        f"{'>' if mosca else '<='} {years_to_crqc:.2f} years to CRQC ({q.crqc_horizon_year})"
    )
    mosca_source = f"{MOSCA}; {src} sensitivity.{sens.name}.shelf_life_years"
    if disallowed:
        reasons.append(
            Reason(
                "ir8547-disallowed",
                "classical quantum-vulnerable asymmetric algorithms are disallowed after "
                f"{q.classical_disallowed_after}: hybrid required",
                f"{IR_8547}; {src} quantum.classical_disallowed_after",
                "refuse",
            )
        )
    if mosca:
        reasons.append(
            Reason(
                "mosca",
                f"{comparison}: hybrid post-quantum required, classical-only refused",
                mosca_source,
                "refuse",
            )
        )
    elif not disallowed:
        reasons.append(
            Reason(
                "mosca",
                f"{comparison}: classical-only still accepted, hybrid {preferred} preferred",
                mosca_source,
            )
        )
    if now >= q.deprecated_from and not disallowed:
        # A warning while classical-only keys are still accepted; once Mosca
        # already refuses them it is background information.
        reasons.append(
            Reason(
                "ir8547-deprecated",
                "classical quantum-vulnerable asymmetric algorithms are deprecated after "
                f"{q.classical_deprecated_after}; migrate any classical-only key",
                f"{IR_8547}; {src} quantum.classical_deprecated_after",
                "info" if mosca else "warn",
            )
        )
    reasons.append(
        Reason(
            "cnsa2",
            f"hybrid {preferred} uses NIST category-3 parameters; CNSA 2.0 systems need "
            "ML-KEM-1024 / ML-DSA-87 (exclusive use 2030-2033)",
            CNSA_2,
        )
    )

    if disallowed or mosca:
        status = QuantumStatus.CLASSICAL_DISALLOWED if disallowed else QuantumStatus.HYBRID_REQUIRED
        return _Decision(days, status, AlgorithmRequirement.HYBRID, preferred, kt.hybrid_algorithms)

    classical_days: float | None = None
    if kt.classical_algorithms:
        # The data a classical-only key protects last must still satisfy Mosca:
        # created + L + x + y <= horizon, and the key must expire before the
        # IR 8547 disallow date.
        slack = days_to_crqc - (x + y) * DAYS_PER_YEAR
        until_disallowed = _days(q.disallowed_from - now)
        classical_days = max(0.0, min(days, slack, until_disallowed))
        if classical_days < days:
            reasons.append(
                Reason(
                    "classical-cap",
                    f"a classical-only key must expire within the Mosca slack "
                    f"(years to CRQC - x - y) and before {q.disallowed_from.date().isoformat()}: "
                    f"{_fmt_days(classical_days)}",
                    f"{MOSCA}; {IR_8547}",
                )
            )
    return _Decision(
        days,
        QuantumStatus.CLASSICAL_ALLOWED,
        AlgorithmRequirement.CLASSICAL_ALLOWED,
        preferred,
        kt.hybrid_algorithms + kt.classical_algorithms,
        classical_days,
    )


def _plan(
    policy: LifetimePolicy,
    key_type: str,
    tier: str,
    sensitivity: str | None,
    now: datetime,
) -> KeyPlan:
    now = _aware(now, "now")
    kt = _lookup(policy.key_types, key_type, "key type")
    tier_rule = _lookup(policy.tiers, tier, "tier")
    sens_name = tier_rule.default_sensitivity if sensitivity is None else sensitivity
    sens = _lookup(policy.sensitivities, sens_name, "sensitivity class")
    q = policy.quantum
    reasons: list[Reason] = []

    # 1. Tier cap, bounded by SP 800-57 at load time.
    tier_days = tier_rule.max_lifetime_days[key_type]
    reasons.append(
        Reason(
            "tier-cap",
            f"{tier} tier caps {key_type} keys at {_fmt_days(tier_days)} "
            f"(SP 800-57 ceiling {_fmt_days(kt.nist_max_days)})",
            f"{policy.source} tiers.{tier}.max_lifetime_days.{key_type}; {SP800_57}",
        )
    )
    days = tier_days

    # 2. Sensitivity factor.
    if sens.lifetime_factor < 1.0:
        days *= sens.lifetime_factor
        reasons.append(
            Reason(
                "sensitivity",
                f"{sens.name} data: lifetime x{sens.lifetime_factor:g} -> {_fmt_days(days)}",
                f"{policy.source} sensitivity.{sens.name}.lifetime_factor",
            )
        )

    days_to_crqc = _days(q.horizon - now)
    if kt.family is KeyFamily.SYMMETRIC:
        decision = _symmetric(kt, days, reasons)
    else:
        decision = _asymmetric(
            policy, kt, sens, days=days, days_to_crqc=days_to_crqc, now=now, reasons=reasons
        )
    days = decision.days

    max_lifetime = timedelta(days=days)
    lead = timedelta(days=min(policy.rotation.lead_fraction * days, policy.rotation.lead_max_days))
    reasons.append(
        Reason(
            "rotation-lead",
            f"due for rotation {_fmt_days(_days(lead))} before expiry "
            f"(min({policy.rotation.lead_fraction:g} x lifetime, "
            f"{_fmt_days(policy.rotation.lead_max_days)}))",
            f"{policy.source} rotation",
        )
    )
    return KeyPlan(
        key_type=key_type,
        tier=tier,
        sensitivity=sens.name,
        family=kt.family,
        computed_at=now,
        max_lifetime=max_lifetime,
        classical_max_lifetime=(
            None if decision.classical_days is None else timedelta(days=decision.classical_days)
        ),
        rotation_lead=lead,
        requirement=decision.requirement,
        preferred_algorithm=decision.preferred,
        allowed_algorithms=decision.allowed,
        quantum_status=decision.status,
        years_to_crqc=days_to_crqc / DAYS_PER_YEAR,
        shelf_life_years=sens.shelf_life_years,
        migration_years=q.migration_years,
        crqc_horizon_year=q.crqc_horizon_year,
        reasons=tuple(reasons),
    )


def _lifetime_for(plan: KeyPlan, algorithm: str | None) -> timedelta:
    if algorithm is None:
        return plan.max_lifetime
    check_algorithm(plan, algorithm)
    canonical = normalize_algorithm(algorithm)
    if plan.classical_max_lifetime is not None and _is_classical_only(canonical):
        return plan.classical_max_lifetime
    return plan.max_lifetime


def expires_at(
    policy: LifetimePolicy,
    key_type: str,
    tier: str,
    created: datetime,
    sensitivity: str | None = None,
    *,
    algorithm: str | None = None,
) -> datetime:
    """When a key created at ``created`` expires (UTC), planned as of its creation.

    With ``algorithm``, the algorithm is checked (:class:`PolicyError` if the
    policy refused it at creation) and a classical-only key gets the shorter
    classical lifetime.
    """
    plan = _plan(policy, key_type, tier, sensitivity, created)
    return plan.computed_at + _lifetime_for(plan, algorithm)


def is_due(
    policy: LifetimePolicy,
    key_type: str,
    tier: str,
    created: datetime,
    now: datetime,
    *,
    sensitivity: str | None = None,
    algorithm: str | None = None,
) -> bool:
    """True when a key created at ``created`` must be rotated at ``now``.

    Due means past its expiry or within the rotation lead of it. With
    ``algorithm``, a key whose algorithm the policy refuses *now* (e.g. a
    classical-only key once Mosca's inequality holds or after the NIST IR 8547
    disallow date) is due at once, and so is one refused at creation.
    """
    now = _aware(now, "now")
    plan = _plan(policy, key_type, tier, sensitivity, created)
    if algorithm is not None:
        if not is_algorithm_allowed(plan, algorithm):
            return True
        if not is_algorithm_allowed(_plan(policy, key_type, tier, sensitivity, now), algorithm):
            return True
    expiry = plan.computed_at + _lifetime_for(plan, algorithm)
    return now >= expiry - plan.rotation_lead


def explain_plan(plan: KeyPlan) -> str:
    """Multi-line, human-readable rendering of a plan (``weightvault keys plan``)."""
    if plan.requirement is AlgorithmRequirement.SYMMETRIC:
        algorithms = f"{', '.join(plan.allowed_algorithms)} (symmetric, 256-bit)"
    elif plan.requirement is AlgorithmRequirement.HYBRID:
        algorithms = f"hybrid required: {', '.join(plan.allowed_algorithms)}"
    else:
        classical = [a for a in plan.allowed_algorithms if _is_classical_only(a)]
        algorithms = f"hybrid {plan.preferred_algorithm} preferred; classical allowed: " + (
            ", ".join(classical) or "none configured"
        )
    lines = [
        f"key plan: {plan.key_type} in tier {plan.tier}, sensitivity {plan.sensitivity}, "
        f"as of {plan.computed_at.isoformat().replace('+00:00', 'Z')}",
        f"  family:          {plan.family}",
        f"  max lifetime:    {_fmt_days(_days(plan.max_lifetime))}",
    ]
    if plan.classical_max_lifetime is not None:
        lines.append(f"  classical-only:  {_fmt_days(_days(plan.classical_max_lifetime))}")
    lines += [
        f"  rotation lead:   {_fmt_days(_days(plan.rotation_lead))}",
        f"  algorithms:      {algorithms}",
        f"  quantum status:  {plan.quantum_status} "
        f"(x={plan.shelf_life_years:g}, y={plan.migration_years:g}, "
        f"{plan.years_to_crqc:.2f} years to CRQC {plan.crqc_horizon_year})",
        "  reasons:",
    ]
    lines += [f"    - {reason}" for reason in plan.reasons]
    return "\n".join(lines)


def plan_matrix(
    policy: LifetimePolicy,
    now: datetime,
    key_types: Iterable[str] | None = None,
    tiers: Iterable[str] | None = None,
) -> list[KeyPlan]:
    """Plans for every (key type, tier) pair at ``now``, each at its tier's default class."""
    return [
        _plan(policy, kt, tier, None, now)
        for tier in (policy.tiers if tiers is None else tiers)
        for kt in (policy.key_types if key_types is None else key_types)
    ]


def policy_lifetime(
    path: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Callable[[str, str], timedelta | None]:
    """A keystore ``lifetime``: each new key's maximum lifetime under the policy at ``path``.

    Tiers other than hot/warm/cold (the quarantine KEK, keys without a tier)
    are planned as cold; purposes the policy does not know get no lifetime.
    Without a policy file no key gets one.
    """
    if not path.is_file():
        return lambda _purpose, _tier: None
    policy = load_lifetime_policy(path)

    def lifetime(purpose: str, tier: str) -> timedelta | None:
        if tier not in {"hot", "warm", "cold"}:
            tier = "cold"
        try:
            return plan_key(policy, purpose, tier, now=clock()).max_lifetime
        except UsageError:
            return None

    return lifetime
