"""`weightvault incident show` says who contained an incident: the flow run (and the trigger
Prefect knows for it) or the process that ran the playbook by hand, from the log's entry."""

from __future__ import annotations

from dataclasses import replace

from weightvault.cli._incidents import contained_line
from weightvault.lifecycle.incidents import Incident

OPEN = Incident(
    id="inc-0123456789abcdef01234567",
    rule="read_spike_artifact",
    severity="medium",
    opened_at="2026-12-02T06:00:00.000000Z",
    summary="reads",
    evidence=(),
    evidence_indexes=(),
    artifacts=("wv-20261202-0123456789abcdef",),
    principals=("alice",),
    keys=(),
    tiers=("hot",),
    actions=("quarantine",),
)


def test_an_incident_not_contained_says_so() -> None:
    assert "not contained" in contained_line(OPEN)
    assert OPEN.to_dict()["contained_by"] is None


def test_the_flow_run_and_its_trigger_are_named() -> None:
    by = {"log_index": 41, "principal": "alice", "process": "python", "flow_run": "0a1b-run"}
    done = replace(OPEN, contained_at="2026-12-02T06:00:17.5Z", contained_by=by)
    line = contained_line(done, "read-spike")
    assert "by flow run 0a1b-run (trigger read-spike)" in line
    assert "principal alice, log entry 41" in line
    assert "2026-12-02T06:00:17.5Z" in line
    assert "(trigger" not in contained_line(done)  # Prefect did not answer
    assert done.to_dict()["contained_by"] == by


def test_a_containment_by_hand_names_the_process() -> None:
    by = {"log_index": 9, "principal": "bob", "process": "weightvault", "flow_run": None}
    line = contained_line(replace(OPEN, contained_at="t", contained_by=by))
    assert "by hand (weightvault); principal bob, log entry 9" in line
