"""Table tests of the authorization policy: every role x operation x tier.

The expectations are generated from the table below, written from the role
table of docs/identity.md independently of the policy: the policy
(config/policies/authz.rego) must agree with it case by case, and its own
JSON table (config/policies/tests/authz_cases.json, run by ``weightvault
policy test``) must pass.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from weightvault.errors import ConfigError
from weightvault.gates import authorize, authz_rules, authz_table, coverage_gaps, run_authz_tests
from weightvault.provenance import ROLES

POLICIES = Path(__file__).resolve().parents[3] / "config" / "policies"

STORED = {"hot", "warm", "cold", "quarantine"}
ANY = STORED | {None}

# kind -> (roles that may do it, tiers it may act on)
EXPECTED: dict[str, tuple[set[str], set[str | None]]] = {
    "artifact.read": ({"reader", "validator"}, ANY),
    "artifact.verified": ({"reader", "promoter", "key-admin"}, ANY),
    "artifact.exported": ({"reader"}, ANY),
    "artifact.ingested": ({"ingester"}, {"hot", None}),
    "artifact.deduplicated": ({"ingester"}, ANY),
    "artifact.named": ({"ingester"}, ANY),
    "artifact.labeled": ({"ingester", "promoter"}, ANY),
    "alias.set": ({"ingester", "promoter"}, ANY),
    "alias.removed": ({"ingester", "promoter"}, ANY),
    "artifact.validated": ({"validator"}, ANY),
    "artifact.promotion": ({"promoter"}, ANY),
    "artifact.promoted": ({"promoter"}, {"warm", "cold"}),
    "artifact.promotion_refused": ({"promoter"}, ANY),
    "artifact.claim_taken_over": ({"promoter", "key-admin", "incident-responder"}, ANY),
    "artifact.deleted": ({"promoter"}, ANY),
    "artifact.approved": ({"approver"}, ANY),
    "artifact.quarantined": ({"incident-responder", "ingester", "validator"}, ANY),
    "artifact.released": ({"incident-responder"}, ANY),
    "artifact.rekeyed": ({"incident-responder", "key-admin"}, ANY),
    "key.compromised": ({"incident-responder", "key-admin"}, ANY),
    "key.rotated": ({"key-admin"}, ANY),
    "key.retired": ({"key-admin"}, ANY),
    "keys.rotation_run": ({"key-admin"}, ANY),
    "envelopes.rewrapped": ({"key-admin"}, ANY),
    "key.escrow_split": ({"key-admin"}, {None}),
    "trust.root_published": ({"key-admin"}, {None}),
    "dr.master_split": ({"key-admin"}, {None}),
    "dr.home_restored": ({"key-admin"}, {None}),
    "dr.drill_run": ({"key-admin"}, {None}),
    "detect.run": ({"incident-responder", "auditor"}, {None}),
    "incident.opened": ({"incident-responder", "auditor"}, {None}),
    "incident.resolved": ({"incident-responder"}, {None}),
    "grant.issued": ({"key-admin"}, ANY),
    "artifact.break_glass_read": ({"incident-responder"}, ANY),
    "artifact.recovered": ({"key-admin"}, ANY),
    "grant.revoked": ({"key-admin", "incident-responder"}, ANY),
    "artifact.rekey_needed": ({"key-admin", "incident-responder"}, ANY),
    "grant.accessed": ({"key-admin", "auditor", "incident-responder"}, ANY),
    "grant.collected": ({"key-admin"}, {None}),
    "catalog.rebuilt": ({"key-admin"}, {None}),
    "store.gc": ({"key-admin"}, {None}),
    "tier.isolated": ({"incident-responder"}, {"hot", "warm", "cold"}),
    "tier.restored": ({"incident-responder"}, {"hot", "warm", "cold"}),
    "incident.bundled": ({"incident-responder"}, {None}),
    "incident.contained": ({"incident-responder"}, {None}),
    "incident.lifted": ({"incident-responder"}, {None}),
}
TIERS: tuple[str | None, ...] = ("hot", "warm", "cold", "quarantine", None)


def _decide(roles: list[str], kind: str, tier: str | None) -> tuple[bool, set[str]]:
    decision = authorize(
        {
            "principal": {"name": "pat", "keyid": "ab" * 32, "roles": roles},
            "operation": kind,
            "tier": tier,
            "artifact_id": "wv-20260101-0123456789abcdef",
        },
        POLICIES,
    )
    return decision.allow, {r.split(":", 1)[0] for r in decision.reasons}


def test_the_policy_lists_exactly_the_operations_of_the_table() -> None:
    assert set(authz_table(POLICIES)) == set(EXPECTED)


def test_every_role_operation_and_tier() -> None:
    assert set(ROLES) == {r for roles, _ in EXPECTED.values() for r in roles}
    wrong = []
    for role, kind, tier in itertools.product(sorted(ROLES), sorted(EXPECTED), TIERS):
        roles, tiers = EXPECTED[kind]
        allow, rules = _decide([role], kind, tier)
        expected = set()
        if role not in roles:
            expected.add("role")
        if tier not in tiers:
            expected.add("put_tier" if kind == "artifact.ingested" else "tier")
        if allow != (not expected) or rules != expected:
            wrong.append((role, kind, tier, allow, sorted(rules), sorted(expected)))
    assert wrong == []


def test_the_bootstrap_principal_with_every_role_may_do_every_operation_on_its_tiers() -> None:
    for kind, (_, tiers) in EXPECTED.items():
        for tier in tiers:
            assert _decide(sorted(ROLES), kind, tier) == (True, set()), (kind, tier)


def test_put_into_warm_or_cold_is_refused_whatever_the_roles() -> None:
    for tier in ("warm", "cold"):
        assert _decide(sorted(ROLES), "artifact.ingested", tier) == (False, {"put_tier"})


def test_an_unknown_operation_is_refused_even_with_every_role() -> None:
    assert _decide(sorted(ROLES), "grant.forged", None) == (False, {"unknown_operation"})


def test_the_auditor_may_log_only_grant_receipts_and_detection() -> None:
    # Audit reads (verify, show, search, prove) write nothing to the log; the auditor
    # logs the grant receipts it syncs and the detection runs over the log with the
    # incidents they open, never resolves one (docs/incidents.md).
    allowed = {k for k in EXPECTED for t in TIERS if _decide(["auditor"], k, t)[0]}
    assert allowed == {"grant.accessed", "detect.run", "incident.opened"}


def test_the_json_table_of_policy_test_passes_and_covers_every_rule() -> None:
    results = run_authz_tests(POLICIES)
    assert [r.describe() for r in results if not r.passed] == []
    assert len(results) > len(ROLES) * len(EXPECTED) * len(TIERS)
    assert coverage_gaps(results, authz_rules(POLICIES)) == []


def test_a_json_table_that_disagrees_fails(tmp_path: Path) -> None:
    import json

    document = json.loads((POLICIES / "tests" / "authz_cases.json").read_text())
    # One kind, with a role the policy does not give it; every other kind left out.
    read = document["matrix"]["artifact.read"]
    document["matrix"] = {"artifact.read": {**read, "roles": [*read["roles"], "ingester"]}}
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(document))
    failed = {r.name for r in run_authz_tests(POLICIES, cases) if not r.passed}
    assert "matrix: ingester artifact.read on hot" in failed
    assert "matrix: store.gc is in the policy, not the matrix" in failed
    assert "matrix: reader artifact.read on hot" not in failed


def test_a_missing_policy_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"authz\.rego does not exist"):
        authorize({"operation": "artifact.read"}, tmp_path)


def test_an_edited_policy_is_compiled_again(tmp_path: Path) -> None:
    policy = tmp_path / "authz.rego"
    source = (POLICIES / "authz.rego").read_text()
    policy.write_text(source)
    assert _decide_in(tmp_path, ["reader"], "store.gc") is False
    policy.write_text(
        source.replace('"store.gc": {"roles": ["key-admin"]', '"store.gc": {"roles": ["reader"]')
    )
    assert _decide_in(tmp_path, ["reader"], "store.gc") is True


def _decide_in(policy_dir: Path, roles: list[str], kind: str) -> bool:
    principal = {"name": "pat", "keyid": "00", "roles": roles}
    return authorize({"principal": principal, "operation": kind, "tier": None}, policy_dir).allow


def test_a_decision_costs_about_a_millisecond() -> None:
    _decide(["reader"], "artifact.read", "hot")  # compiled once per process
    start = time.perf_counter()
    for _ in range(50):
        _decide(["reader"], "artifact.read", "hot")
    per_decision = (time.perf_counter() - start) / 50
    # Generous for a loaded 2-core machine; measured about 1 ms (docs/authorization.md).
    assert per_decision < 0.05


def _decide_isolated(
    kind: str, tier: str | None, isolated: list[str], to: str | None = None
) -> set[str]:
    decision = authorize(
        {
            "principal": {"name": "pat", "keyid": "ab" * 32, "roles": sorted(ROLES)},
            "operation": kind,
            "tier": tier,
            "to": to,
            "artifact_id": "wv-20260101-0123456789abcdef",
            "isolated_tiers": isolated,
        },
        POLICIES,
    )
    return {r.split(":", 1)[0] for r in decision.reasons}


def test_an_isolated_tier_refuses_reads_and_writes_but_not_containment() -> None:
    refused = {"artifact.read", "artifact.exported", "artifact.ingested", "artifact.validated"}
    refused |= {"artifact.promotion", "artifact.deleted", "grant.issued"}
    for kind in refused:
        assert _decide_isolated(kind, "hot", ["hot"]) == {"tier_isolated"}, kind
        assert _decide_isolated(kind, "hot", ["cold"]) == set(), kind
    allowed = {"artifact.verified", "artifact.quarantined", "artifact.rekeyed", "tier.restored"}
    allowed |= {"grant.revoked", "key.compromised", "artifact.recovered"}
    for kind in allowed:
        assert _decide_isolated(kind, "hot", ["hot"]) == set(), kind
    # a promotion out of a healthy tier into an isolated one is a write into it
    assert _decide_isolated("artifact.promotion", "hot", ["warm"], to="warm") == {"tier_isolated"}
