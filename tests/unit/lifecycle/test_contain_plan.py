"""ContainmentPlan from the detector's Incident (any object with its attributes), its
validation, and the steps each severity and set of actions calls for."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from weightvault.errors import InvalidInputError
from weightvault.lifecycle.contain import ContainmentPlan, steps_for


@dataclass
class Incident:
    """The detector's contract (lifecycle.incidents.Incident), as the lead will pass it."""

    id: str
    rule: str
    severity: str
    opened_at: str = "2026-12-02T00:00:00Z"
    summary: str = ""
    evidence: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    actions: frozenset[str] = field(default_factory=frozenset)
    status: str = "open"


def test_a_plan_is_read_from_any_incident_object() -> None:
    plan = ContainmentPlan.from_incident(
        Incident(
            "inc-1",
            "read_spike",
            "HIGH",
            evidence=("e1", "e2"),
            artifacts=("wv-1",),
            principals=("mallory",),
            actions=frozenset({"quarantine"}),
        )
    )
    assert plan.incident_id == "inc-1"
    assert plan.severity == "high"
    assert plan.evidence == ("e1", "e2")
    assert plan.to_dict()["artifacts"] == ["wv-1"]
    assert ContainmentPlan.from_incident(plan.to_dict()) == plan


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"actions": ["shutdown"]}, "unknown containment action"),
        ({"tiers": ["quarantine"]}, "cannot isolate"),
        ({"id": ""}, "needs an id"),
        ({"artifacts": "wv-1"}, "list of strings"),
    ],
)
def test_a_bad_incident_is_refused(fields: dict[str, object], message: str) -> None:
    doc: dict[str, object] = {"id": "inc", "rule": "r", "severity": "low", **fields}
    with pytest.raises(InvalidInputError, match=message):
        ContainmentPlan.from_incident(doc)


def test_the_steps_follow_actions_and_severity() -> None:
    def plan(severity: str, *actions: str) -> ContainmentPlan:
        return ContainmentPlan("i", "r", severity, tiers=("hot",), actions=actions)

    assert steps_for(plan("medium", "quarantine", "revoke_grants")) == [
        "revoke_grants",
        "quarantine_artifacts",
    ]
    # Tier-wide below high: its artifacts are quarantined, the tier isolation is deferred.
    assert steps_for(plan("medium", "isolate_tier")) == ["quarantine_artifacts", "isolate_tiers"]
    assert steps_for(plan("critical", "isolate_tier")) == ["isolate_tiers"]
    assert steps_for(plan("high", "compromise_keys")) == ["compromise_keys", "rekey_keys"]
    # Recovery (the integrity-failure rule) runs after the quarantine, at any severity.
    assert steps_for(plan("low", "recover")) == ["recover_artifacts"]
    assert steps_for(plan("high", "quarantine", "recover")) == [
        "quarantine_artifacts",
        "recover_artifacts",
    ]


def test_the_detectors_incident_is_read_as_is() -> None:
    from weightvault.lifecycle.incidents import Incident as Detected

    found = Detected(
        id="inc-9",
        rule="read_spike_artifact",
        severity="high",
        opened_at="2026-12-02T00:00:00Z",
        summary="reads far above the baseline",
        evidence=("e1",),
        evidence_indexes=(4,),
        artifacts=("wv-1",),
        principals=("mallory",),
        keys=(),
        tiers=(),
        actions=("quarantine", "revoke_grants"),
    )
    plan = ContainmentPlan.from_incident(found)
    assert (plan.incident_id, plan.evidence, plan.actions) == (
        "inc-9",
        ("e1",),
        ("quarantine", "revoke_grants"),
    )
    assert steps_for(plan) == ["revoke_grants", "quarantine_artifacts"]
