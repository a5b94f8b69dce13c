"""Quantum-aware key lifetime policy: table-driven plans, Mosca, IR 8547, config errors."""

from __future__ import annotations

import copy
import itertools
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from weightvault.errors import ConfigError, PolicyError, UsageError
from weightvault.keys import (
    LifetimePolicy,
    expires_at,
    explain_plan,
    is_due,
    load_lifetime_policy,
    plan_key,
    plan_matrix,
)
from weightvault.keys._lifetimes import (
    DAYS_PER_YEAR,
    AlgorithmRequirement,
    KeyFamily,
    QuantumStatus,
    check_algorithm,
    is_algorithm_allowed,
    normalize_algorithm,
    parse_lifetime_policy,
)

CONFIG = REPO / "config" / "lifetimes.toml"
KEY_TYPES = ("kek", "signing", "escrow_kem", "token")
TIERS = ("hot", "warm", "cold")
SENSITIVITIES = ("public", "internal", "confidential", "restricted")
CLASSICAL = {"signing": "ed25519", "escrow_kem": "x25519"}
HYBRID = {"signing": "ed25519+ml-dsa-65", "escrow_kem": "ml-kem-768+x25519"}


def at(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def days(d: float) -> timedelta:
    return timedelta(days=d)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return tomllib.loads(CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def policy() -> LifetimePolicy:
    return load_lifetime_policy(CONFIG)


# --------------------------------------------------------------------------- shipped config


def test_shipped_config_loads_with_expected_shape(policy: LifetimePolicy) -> None:
    assert set(policy.tiers) == set(TIERS)
    assert set(policy.key_types) == set(KEY_TYPES)
    assert set(policy.sensitivities) == set(SENSITIVITIES)
    q = policy.quantum
    assert (q.crqc_horizon_year, q.migration_years) == (2035, 5)
    assert (q.classical_deprecated_after, q.classical_disallowed_after) == (2030, 2035)
    assert policy.key_types["kek"].family is KeyFamily.SYMMETRIC
    assert policy.key_types["signing"].hybrid_algorithms == ("ed25519+ml-dsa-65",)
    assert policy.key_types["escrow_kem"].hybrid_algorithms == ("ml-kem-768+x25519",)
    # SP 800-57 Pt1 Rev5 Table 1 ceilings: wrapping key 2 y, signature key 3 y.
    assert policy.key_types["kek"].nist_max_days == 730
    assert policy.key_types["signing"].nist_max_days == 1095
    assert {t: policy.tiers[t].default_sensitivity for t in TIERS} == {
        "hot": "internal",
        "warm": "confidential",
        "cold": "restricted",
    }


def test_shipped_config_cites_its_sources() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    for source in ("SP 800-57 Part 1 Rev. 5", "Table 1", "IR 8547", "CNSA 2.0", "Mosca"):
        assert source in text
    for phrase in ("ML-KEM-1024", "ML-DSA-87", "ML-KEM-768", "ML-DSA-65", "Grover"):
        assert phrase in text


def test_tier_caps_shorten_from_cold_to_hot(policy: LifetimePolicy) -> None:
    for key_type in KEY_TYPES:
        hot, warm, cold = (policy.tiers[t].max_lifetime_days[key_type] for t in TIERS)
        assert hot <= warm <= cold <= policy.key_types[key_type].nist_max_days


# --------------------------------------------------------------------------- table-driven plans

# (key type, tier, sensitivity, now, horizon z, lifetime days, classical days, status, rules)
PLANS = [
    # Symmetric: tier cap x sensitivity factor, never the quantum rule.
    ("kek", "hot", None, at(2026), 2035, 30, None, QuantumStatus.GROVER_SAFE, {"grover"}),
    ("kek", "cold", None, at(2026), 2035, 182.5, None, QuantumStatus.GROVER_SAFE, {"sensitivity"}),
    ("kek", "cold", "restricted", at(2026), 2027, 182.5, None, QuantumStatus.GROVER_SAFE, set()),
    ("kek", "cold", "public", at(2034), 2030, 365, None, QuantumStatus.GROVER_SAFE, set()),
    ("kek", "warm", None, at(2026), 2035, 67.5, None, QuantumStatus.GROVER_SAFE, set()),
    ("token", "hot", None, at(2026), 2035, 1, None, QuantumStatus.GROVER_SAFE, set()),
    ("token", "cold", "restricted", at(2040), 2028, 15, None, QuantumStatus.GROVER_SAFE, set()),
    # Asymmetric, z far away: Mosca does not hold, classical-only still accepted.
    (
        "signing",
        "hot",
        "internal",
        at(2026),
        2035,
        90,
        90,
        QuantumStatus.CLASSICAL_ALLOWED,
        {"mosca"},
    ),
    ("signing", "hot", "public", at(2026), 2035, 90, 90, QuantumStatus.CLASSICAL_ALLOWED, set()),
    (
        "signing",
        "cold",
        "restricted",
        at(2026),
        2100,
        182.5,
        182.5,
        QuantumStatus.CLASSICAL_ALLOWED,
        {"sensitivity"},
    ),
    (
        "escrow_kem",
        "hot",
        "internal",
        at(2026),
        2035,
        30,
        30,
        QuantumStatus.CLASSICAL_ALLOWED,
        set(),
    ),
    # Asymmetric, Mosca holds (x + y > years to CRQC): hybrid required.
    (
        "signing",
        "hot",
        "confidential",
        at(2026),
        2035,
        67.5,
        None,
        QuantumStatus.HYBRID_REQUIRED,
        {"mosca", "sensitivity"},
    ),
    (
        "signing",
        "cold",
        "restricted",
        at(2026),
        2035,
        182.5,
        None,
        QuantumStatus.HYBRID_REQUIRED,
        {"mosca"},
    ),
    (
        "escrow_kem",
        "cold",
        None,
        at(2026),
        2035,
        365,
        None,
        QuantumStatus.HYBRID_REQUIRED,
        {"mosca", "sensitivity"},
    ),
    # z near: the quantum cap max(90 d, days to z - 5 y) bites.
    # 2026-01-01 -> 2032-01-01 is 2191 days; minus 5 y = 2191 - 1826.2125.
    (
        "escrow_kem",
        "cold",
        None,
        at(2026),
        2032,
        2191 - 5 * DAYS_PER_YEAR,
        None,
        QuantumStatus.HYBRID_REQUIRED,
        {"quantum-cap", "mosca"},
    ),
    # 2026-01-01 -> 2029-01-01 is 1096 days < 5 y: the 90-day floor.
    (
        "escrow_kem",
        "cold",
        None,
        at(2026),
        2029,
        90,
        None,
        QuantumStatus.HYBRID_REQUIRED,
        {"quantum-cap"},
    ),
    (
        "signing",
        "cold",
        "public",
        at(2040),
        2035,
        90,
        None,
        QuantumStatus.CLASSICAL_DISALLOWED,
        {"quantum-cap", "mosca", "ir8547-disallowed"},
    ),
    # Past 2030: IR 8547 deprecation warning while classical is still accepted.
    (
        "signing",
        "hot",
        "public",
        at(2031, 6),
        2060,
        90,
        90,
        QuantumStatus.CLASSICAL_ALLOWED,
        {"ir8547-deprecated"},
    ),
    # Late 2035: a classical-only key must expire before 2036-01-01 (92 days).
    (
        "signing",
        "cold",
        "public",
        at(2035, 10),
        2100,
        365,
        92,
        QuantumStatus.CLASSICAL_ALLOWED,
        {"ir8547-deprecated", "classical-cap"},
    ),
    # Past 2035: IR 8547 disallows classical whatever z says.
    (
        "signing",
        "hot",
        "public",
        at(2036, 2),
        2100,
        90,
        None,
        QuantumStatus.CLASSICAL_DISALLOWED,
        {"ir8547-disallowed"},
    ),
    (
        "escrow_kem",
        "warm",
        "public",
        at(2036),
        2100,
        180,
        None,
        QuantumStatus.CLASSICAL_DISALLOWED,
        {"ir8547-disallowed"},
    ),
]


@pytest.mark.parametrize(
    (
        "key_type",
        "tier",
        "sensitivity",
        "now",
        "horizon",
        "lifetime",
        "classical",
        "status",
        "rules",
    ),
    PLANS,
)
def test_plan_table(
    policy: LifetimePolicy,
    *,
    key_type: str,
    tier: str,
    sensitivity: str | None,
    now: datetime,
    horizon: int,
    lifetime: float,
    classical: float | None,
    status: QuantumStatus,
    rules: set[str],
) -> None:
    plan = plan_key(policy.with_horizon(horizon), key_type, tier, sensitivity, now=now)
    assert plan.max_lifetime == days(lifetime)
    assert plan.classical_max_lifetime == (None if classical is None else days(classical))
    assert plan.quantum_status is status
    assert rules <= plan.rules()
    assert "tier-cap" in plan.rules()
    assert plan.sensitivity == (sensitivity or policy.tiers[tier].default_sensitivity)
    assert plan.computed_at == now
    assert plan.crqc_horizon_year == horizon
    for reason in plan.reasons:
        assert reason.message
        assert reason.source
    if plan.family is KeyFamily.SYMMETRIC:
        assert plan.requirement is AlgorithmRequirement.SYMMETRIC
        assert plan.allowed_algorithms == ("aes-256-gcm",)
        assert not plan.hybrid_required
        assert "quantum-cap" not in plan.rules()
    else:
        hybrid = status is not QuantumStatus.CLASSICAL_ALLOWED
        assert plan.hybrid_required is hybrid
        assert plan.preferred_algorithm == HYBRID[key_type]
        assert is_algorithm_allowed(plan, HYBRID[key_type])
        assert is_algorithm_allowed(plan, CLASSICAL[key_type]) is not hybrid


def test_tier_cap_reason_cites_sp800_57(policy: LifetimePolicy) -> None:
    plan = plan_key(policy, "kek", "hot", now=at(2026))
    (reason,) = [r for r in plan.reasons if r.rule == "tier-cap"]
    assert "SP 800-57" in reason.source
    assert "tiers.hot.max_lifetime_days.kek" in reason.source


def test_mosca_reason_names_the_numbers(policy: LifetimePolicy) -> None:
    plan = plan_key(policy, "signing", "cold", "restricted", now=at(2026))
    (reason,) = [r for r in plan.reasons if r.rule == "mosca"]
    assert reason.level == "refuse"
    assert "x=15" in reason.message
    assert "y=5" in reason.message
    assert "Mosca" in reason.source
    assert "sensitivity.restricted.shelf_life_years" in reason.source


def test_deprecation_is_a_warning_only_while_classical_is_accepted(
    policy: LifetimePolicy,
) -> None:
    accepted = plan_key(policy.with_horizon(2060), "signing", "hot", "public", now=at(2032))
    assert [r.rule for r in accepted.warnings] == ["ir8547-deprecated"]
    assert "IR 8547" in accepted.warnings[0].source
    refused = plan_key(policy, "signing", "hot", "public", now=at(2032))
    assert refused.hybrid_required
    assert not refused.warnings
    assert "ir8547-deprecated" in refused.rules()
    before = plan_key(policy.with_horizon(2060), "signing", "hot", "public", now=at(2030, 12))
    assert "ir8547-deprecated" not in before.rules()


def test_years_to_crqc_is_fractional(policy: LifetimePolicy) -> None:
    assert plan_key(policy, "kek", "hot", now=at(2026)).years_to_crqc == pytest.approx(9, abs=0.01)
    mid = plan_key(policy, "kek", "hot", now=at(2026, 7, 2))
    assert mid.years_to_crqc == pytest.approx(8.5, abs=0.01)
    assert plan_key(policy, "kek", "hot", now=at(2037)).years_to_crqc < 0


def test_mosca_boundary_is_strict(raw: dict[str, Any]) -> None:
    # 2030-01-01 -> 2035-01-01 is 1826 days = 4.9994 years: x + y = 0 + 4.99 <= that.
    data = copy.deepcopy(raw)
    data["quantum"]["migration_years"] = 1826 / DAYS_PER_YEAR
    equal = parse_lifetime_policy(data)
    plan = plan_key(equal, "signing", "hot", "public", now=at(2030))
    assert plan.years_to_crqc == pytest.approx(plan.migration_years)
    assert not plan.hybrid_required
    later = plan_key(equal, "signing", "hot", "public", now=at(2030, 1, 2))
    assert later.hybrid_required


def test_rotation_lead(policy: LifetimePolicy) -> None:
    assert plan_key(policy, "kek", "hot", now=at(2026)).rotation_lead == days(3)
    assert plan_key(policy, "token", "hot", now=at(2026)).rotation_lead == days(0.1)
    assert plan_key(policy, "escrow_kem", "cold", now=at(2026)).rotation_lead == days(30)


def test_default_now_is_the_current_time(policy: LifetimePolicy) -> None:
    plan = plan_key(policy, "kek", "hot")
    assert abs(plan.computed_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_plan_matrix_covers_every_pair(policy: LifetimePolicy) -> None:
    plans = plan_matrix(policy, at(2026))
    assert {(p.key_type, p.tier) for p in plans} == {(k, t) for k in KEY_TYPES for t in TIERS}


# --------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize(
    ("key_type", "sensitivity", "algorithm"),
    [
        ("signing", "restricted", "ed25519"),
        ("signing", "restricted", "Ed25519"),
        ("signing", "confidential", "ecdsa-p256"),
        ("signing", "confidential", "rsa-3072"),
        ("escrow_kem", "restricted", "x25519"),
        ("escrow_kem", "confidential", "X25519"),
        ("escrow_kem", "confidential", "ecdh-p384"),
    ],
)
def test_classical_only_refused_when_mosca_holds(
    policy: LifetimePolicy, key_type: str, sensitivity: str, algorithm: str
) -> None:
    plan = plan_key(policy, key_type, "cold", sensitivity, now=at(2026))
    assert plan.shelf_life_years + plan.migration_years > plan.years_to_crqc
    with pytest.raises(PolicyError, match="classical-only") as info:
        check_algorithm(plan, algorithm)
    assert "hybrid" in info.value.message
    assert "Mosca" in info.value.message
    assert "\n" not in info.value.message
    assert not is_algorithm_allowed(plan, algorithm)


@pytest.mark.parametrize(
    "spelling",
    ["ed25519+ml-dsa-65", "ML-DSA-65+Ed25519", "ed25519 + ml_dsa_65", "Ed25519+MLDSA65"],
)
def test_hybrid_accepted_in_any_spelling(policy: LifetimePolicy, spelling: str) -> None:
    plan = plan_key(policy, "signing", "cold", "restricted", now=at(2026))
    check_algorithm(plan, spelling)
    assert normalize_algorithm(spelling) == "ed25519+ml-dsa-65"


def test_classical_accepted_when_mosca_does_not_hold(policy: LifetimePolicy) -> None:
    plan = plan_key(policy, "escrow_kem", "hot", "public", now=at(2026))
    check_algorithm(plan, "x25519")
    check_algorithm(plan, "X25519+ML-KEM-768")


def test_classical_refused_after_ir8547_even_with_far_horizon(policy: LifetimePolicy) -> None:
    plan = plan_key(policy.with_horizon(2200), "signing", "hot", "public", now=at(2036, 1, 2))
    assert not plan.shelf_life_years + plan.migration_years > plan.years_to_crqc
    with pytest.raises(PolicyError, match="IR 8547"):
        check_algorithm(plan, "ed25519")


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [
        ("kek", "aes-128-gcm"),
        ("kek", "chacha20-poly1305"),
        ("kek", "ed25519+ml-dsa-65"),
        ("signing", "ml-dsa-65"),
        ("signing", "ml-kem-768+x25519"),
        ("escrow_kem", "ed25519+ml-dsa-65"),
    ],
)
def test_unconfigured_algorithms_refused(
    policy: LifetimePolicy, key_type: str, algorithm: str
) -> None:
    plan = plan_key(policy, key_type, "hot", "public", now=at(2026))
    with pytest.raises(PolicyError, match="not allowed") as info:
        check_algorithm(plan, algorithm)
    assert "allowed:" in info.value.message


def test_symmetric_accepts_aes_256_gcm(policy: LifetimePolicy) -> None:
    for now in (at(2026), at(2040)):
        plan = plan_key(policy.with_horizon(2027), "kek", "cold", now=now)
        check_algorithm(plan, "AES-256-GCM")


# --------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sensitivity", SENSITIVITIES)
def test_lifetime_shortens_monotonically_as_horizon_approaches(
    policy: LifetimePolicy, key_type: str, tier: str, sensitivity: str
) -> None:
    now = at(2026, 3, 15)
    lifetimes = [
        plan_key(policy.with_horizon(z), key_type, tier, sensitivity, now=now).max_lifetime
        for z in range(2080, 2019, -1)
    ]
    assert all(a >= b for a, b in itertools.pairwise(lifetimes))
    if policy.key_types[key_type].family is KeyFamily.SYMMETRIC:
        assert len(set(lifetimes)) == 1
    else:
        assert lifetimes[-1] == days(min(90, lifetimes[0].total_seconds() / 86400))


def test_cold_escrow_lifetime_actually_shrinks(policy: LifetimePolicy) -> None:
    lifetimes = {
        z: plan_key(policy.with_horizon(z), "escrow_kem", "cold", now=at(2026)).max_lifetime
        for z in (2040, 2032, 2031, 2029)
    }
    assert lifetimes[2040] == days(365)
    assert days(90) < lifetimes[2032] < lifetimes[2040]
    assert lifetimes[2031] < lifetimes[2032]
    assert lifetimes[2029] == days(90)


_sensitivity = st.sampled_from(SENSITIVITIES)
_moment = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2045, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    key_type=st.sampled_from(KEY_TYPES),
    tier=st.sampled_from(TIERS),
    sensitivity=_sensitivity,
    now=_moment,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
    z1=st.integers(2020, 2080),
    z2=st.integers(2020, 2080),
)
def test_policy_properties(
    policy: LifetimePolicy,
    *,
    key_type: str,
    tier: str,
    sensitivity: str,
    now: datetime,
    later: timedelta,
    z1: int,
    z2: int,
) -> None:
    near, far = sorted((z1, z2))
    p_near = plan_key(policy.with_horizon(near), key_type, tier, sensitivity, now=now)
    p_far = plan_key(policy.with_horizon(far), key_type, tier, sensitivity, now=now)
    p_later = plan_key(policy.with_horizon(far), key_type, tier, sensitivity, now=now + later)
    # A closer horizon, or a later moment, never lengthens a lifetime.
    assert p_near.max_lifetime <= p_far.max_lifetime
    assert p_later.max_lifetime <= p_far.max_lifetime
    # Never above the tier cap (hence never above SP 800-57), never zero.
    cap = policy.tiers[tier].max_lifetime_days[key_type]
    assert timedelta(0) < p_far.max_lifetime <= days(cap)
    assert timedelta(0) <= p_far.rotation_lead < p_far.max_lifetime
    if p_far.family is KeyFamily.SYMMETRIC:
        assert p_near.max_lifetime == p_far.max_lifetime
        assert p_far.quantum_status is QuantumStatus.GROVER_SAFE
        return
    # Mosca / IR 8547 decide hybrid; classical-only is refused exactly then.
    for plan in (p_near, p_far):
        mosca = plan.shelf_life_years + plan.migration_years > plan.years_to_crqc
        assert plan.hybrid_required == (mosca or plan.computed_at >= at(2036))
        assert is_algorithm_allowed(plan, CLASSICAL[key_type]) != plan.hybrid_required
        check_algorithm(plan, HYBRID[key_type])
        if plan.classical_max_lifetime is not None:
            assert plan.classical_max_lifetime <= plan.max_lifetime
            expiry = plan.computed_at + plan.classical_max_lifetime
            assert expiry <= at(2036)
            assert expiry <= at(plan.crqc_horizon_year)


# --------------------------------------------------------------------------- expiry and due


def test_expires_at_and_is_due(policy: LifetimePolicy) -> None:
    created = at(2026)
    assert expires_at(policy, "kek", "hot", created) == at(2026, 1, 31)
    # Lead = min(0.1 x 30 days, 30 days) = 3 days.
    assert not is_due(
        policy,
        "kek",
        "hot",
        created,
        at(
            2026,
            1,
            27,
        )
        + timedelta(hours=23),
    )
    assert is_due(policy, "kek", "hot", created, at(2026, 1, 28))
    assert is_due(policy, "kek", "hot", created, at(2026, 3, 1))
    assert expires_at(policy, "kek", "hot", created, "restricted") == at(2026, 1, 16)
    assert not is_due(policy, "kek", "hot", created, at(2026, 1, 10), sensitivity="restricted")
    # Restricted: 30 x 0.5 = 15 days, lead 1.5 days -> due from 2026-01-14T12:00.
    assert not is_due(policy, "kek", "hot", created, at(2026, 1, 14), sensitivity="restricted")
    assert is_due(
        policy,
        "kek",
        "hot",
        created,
        at(2026, 1, 14) + timedelta(hours=12),
        sensitivity="restricted",
    )


def test_expires_at_uses_creation_time_in_utc(policy: LifetimePolicy) -> None:
    created = datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert expires_at(policy, "kek", "hot", created) == at(2026, 1, 31)
    assert expires_at(policy, "kek", "hot", created).tzinfo is UTC


def test_classical_key_gets_the_shorter_lifetime(policy: LifetimePolicy) -> None:
    # Internal data (x = 2), cold tier, created mid-2027: 7.5 years to z, so Mosca
    # (x + y = 7) does not hold yet, but a classical-only key must expire while the
    # data it protects last still satisfies it: after years_to_crqc - x - y.
    created = at(2027, 7, 2)
    slack = (at(2035) - created) - days(7 * DAYS_PER_YEAR)
    assert days(150) < slack < days(365)
    classical = expires_at(policy, "signing", "cold", created, "internal", algorithm="ed25519")
    hybrid = expires_at(
        policy, "signing", "cold", created, "internal", algorithm="ed25519+ml-dsa-65"
    )
    assert abs(classical - (created + slack)) < timedelta(seconds=1)
    assert (
        hybrid == created + days(365) == expires_at(policy, "signing", "cold", created, "internal")
    )
    probe = created + slack - timedelta(days=1)
    kwargs: dict[str, Any] = {"sensitivity": "internal"}
    assert is_due(policy, "signing", "cold", created, probe, algorithm="ed25519", **kwargs)
    assert not is_due(
        policy, "signing", "cold", created, probe, algorithm="ed25519+ml-dsa-65", **kwargs
    )
    assert not is_due(policy, "signing", "cold", created, probe, **kwargs)


def test_refused_algorithm_is_due_and_has_no_expiry(policy: LifetimePolicy) -> None:
    # The operator moved z closer: a classical key made under the old view is now refused.
    nearer = policy.with_horizon(2031)
    created = at(2026)
    assert not is_due(policy, "signing", "hot", created, at(2026, 1, 2), algorithm="ed25519")
    assert is_due(nearer, "signing", "hot", created, at(2026, 1, 2), algorithm="ed25519")
    with pytest.raises(PolicyError, match="classical-only"):
        expires_at(nearer, "signing", "hot", created, algorithm="ed25519")


# --------------------------------------------------------------------------- explain


def test_explain_plan(policy: LifetimePolicy) -> None:
    text = explain_plan(plan_key(policy, "signing", "cold", now=at(2026)))
    lines = text.splitlines()
    assert lines[0].startswith("key plan: signing in tier cold, sensitivity restricted")
    assert "2026-01-01T00:00:00Z" in lines[0]
    assert "max lifetime:    182.5 days" in text
    assert "hybrid required: ed25519+ml-dsa-65" in text
    assert "hybrid-required" in text
    assert "[mosca]" in text
    assert "NIST SP 800-57" in text
    assert "CNSA 2.0" in text

    allowed = explain_plan(plan_key(policy, "escrow_kem", "hot", "public", now=at(2026)))
    assert "classical allowed: x25519" in allowed
    assert "classical-only:" in allowed

    sym = explain_plan(plan_key(policy, "kek", "hot", now=at(2026)))
    assert "aes-256-gcm (symmetric, 256-bit)" in sym
    assert "[grover]" in sym


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"key_type": "master"}, "unknown key type 'master'"),
        ({"tier": "quarantine"}, "unknown tier 'quarantine'"),
        ({"sensitivity": "secret"}, "unknown sensitivity class 'secret'"),
        ({"now": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_plan_arguments(policy: LifetimePolicy, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"key_type": "kek", "tier": "hot", "now": at(2026)} | kwargs
    with pytest.raises(UsageError, match=match):
        plan_key(policy, **args)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data[part]
    if value is _DELETE:
        del data[leaf]
    else:
        data[leaf] = value


_DELETE = object()

BAD_CONFIGS = [
    ("schema_version", 2, "schema_version"),
    ("quantum", _DELETE, "quantum"),
    ("quantum.crqc_horizon_year", "2035", "quantum.crqc_horizon_year"),
    ("quantum.crqc_horizon_year", 2035.5, "quantum.crqc_horizon_year"),
    ("quantum.migration_years", True, "quantum.migration_years"),
    ("quantum.migration_years", -1, "quantum.migration_years"),
    ("quantum.min_lifetime_days", 0, "quantum.min_lifetime_days"),
    ("quantum.classical_deprecated_after", 2040, "quantum.classical_deprecated_after"),
    ("quantum.horizon", 2035, "quantum.horizon"),
    ("rotation.lead_fraction", 1.0, "rotation.lead_fraction"),
    ("rotation.lead_max_days", _DELETE, "rotation.lead_max_days"),
    ("key_types.kek.family", "quantum", "key_types.kek.family"),
    ("key_types.kek.algorithms", ["aes-128-gcm"], "key_types.kek.algorithms"),
    ("key_types.kek.algorithms", [], "key_types.kek.algorithms"),
    ("key_types.kek.hybrid_algorithms", ["x"], "key_types.kek.hybrid_algorithms"),
    ("key_types.signing.hybrid_algorithms", ["ed25519"], "key_types.signing.hybrid_algorithms"),
    (
        "key_types.signing.classical_algorithms",
        ["ml-dsa-65"],
        "key_types.signing.classical_algorithms",
    ),
    ("key_types.signing.nist_max_days", "3y", "key_types.signing.nist_max_days"),
    ("sensitivity.restricted.lifetime_factor", 1.5, "sensitivity.restricted.lifetime_factor"),
    ("sensitivity.restricted.lifetime_factor", 0, "sensitivity.restricted.lifetime_factor"),
    ("sensitivity.public.shelf_life_years", -1, "sensitivity.public.shelf_life_years"),
    ("sensitivity.internal", 2, "sensitivity.internal"),
    ("tiers.cold.default_sensitivity", "secret", "tiers.cold.default_sensitivity"),
    ("tiers.hot.max_lifetime_days.kek", 1000, "tiers.hot.max_lifetime_days.kek"),
    ("tiers.hot.max_lifetime_days.kek", -1, "tiers.hot.max_lifetime_days.kek"),
    ("tiers.hot.max_lifetime_days.kek", "30d", "tiers.hot.max_lifetime_days.kek"),
    ("tiers.warm.max_lifetime_days.signing", _DELETE, "tiers.warm.max_lifetime_days.signing"),
    ("tiers.hot.max_lifetime_days.bogus", 5, "tiers.hot.max_lifetime_days.bogus"),
    ("tiers.cold.max_lifetime_days.escrow_kem", 731, "tiers.cold.max_lifetime_days.escrow_kem"),
    ("tiers", {}, "tiers"),
]


@pytest.mark.parametrize(("key", "value", "named"), BAD_CONFIGS)
def test_invalid_config_names_the_key(
    raw: dict[str, Any], key: str, value: Any, named: str
) -> None:
    data = copy.deepcopy(raw)
    _set(data, key, value)
    with pytest.raises(ConfigError) as info:
        parse_lifetime_policy(data, source="lifetimes.toml")
    message = info.value.message
    assert message.startswith(f"lifetimes.toml: {named}:"), message
    assert "\n" not in message
    assert info.value.exit_code == 3


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_lifetime_policy(tmp_path / "nope.toml")


def test_load_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "lifetimes.toml"
    bad.write_text("[quantum\ncrqc_horizon_year = 2035\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_lifetime_policy(bad)
    assert str(bad) in info.value.message


def test_load_bad_value_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "lifetimes.toml"
    path.write_text(
        CONFIG.read_text(encoding="utf-8").replace(
            "crqc_horizon_year = 2035", "crqc_horizon_year = 1900"
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"quantum\.crqc_horizon_year: must be between"):
        load_lifetime_policy(path)


def test_custom_config_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lifetimes.toml"
    path.write_text(
        """
schema_version = 1
[quantum]
crqc_horizon_year = 2030
migration_years = 2
min_lifetime_days = 14
classical_deprecated_after = 2030
classical_disallowed_after = 2035
[rotation]
lead_fraction = 0.25
lead_max_days = 7
[key_types.signing]
family = "asymmetric"
hybrid_algorithms = ["ML-DSA-65+Ed25519"]
classical_algorithms = []
nist_max_days = 365
[sensitivity.only]
shelf_life_years = 2
lifetime_factor = 1
[tiers.one]
default_sensitivity = "only"
[tiers.one.max_lifetime_days]
signing = 365
""",
        encoding="utf-8",
    )
    small = load_lifetime_policy(path)
    plan = plan_key(small, "signing", "one", now=at(2027))
    # 1096 days to z (2028 is a leap year) - 2 years = 365.5 days, above the 365-day tier cap;
    # x + y = 4 > 3 years to CRQC, so hybrid is required.
    assert plan.max_lifetime == days(365)
    assert plan.allowed_algorithms == ("ed25519+ml-dsa-65",)
    assert plan.hybrid_required
    assert plan.rotation_lead == days(7)
    late = plan_key(small, "signing", "one", now=at(2029))
    assert late.max_lifetime == days(14)
