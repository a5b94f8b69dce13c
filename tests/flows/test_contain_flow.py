"""The contain flow under real Prefect: an explicit incident runs one task per step and
publishes its report; a trigger's hint alone (a Prefect event is not evidence) contains
nothing until the detector backs it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from flows.contain import contain
from tests.conftest import make_tree
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import QuarantinedError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.trust import init_root


def _forget_rekey_deployment() -> None:
    """Delete the rekey deployment an earlier test's runner left on the session's server:
    Prefect keeps a stopped runner's deployment READY until its heartbeat goes stale."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.contain import REKEY_DEPLOYMENT

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_deployment(client.read_deployment_by_name(REKEY_DEPLOYMENT).id)


def test_the_contain_flow_runs_the_playbook_as_tasks(
    vault_settings: Settings, prefect_api: None, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    _forget_rekey_deployment()
    vault = Vault.open(vault_settings)
    src = make_tree(tmp_path / "m", {"model.bin": b"w" * 4096})
    artifact_id = ingest.put(vault, src, "flow-contained").artifact_id

    hinted = contain(trigger="read-spike", resource=f"weightvault.artifact.{artifact_id}")
    assert hinted["incidents"] == []
    assert vault.logged_quarantine(artifact_id) is None  # a hint is not evidence

    incident = {
        "id": "inc-flow",
        "rule": "integrity_failed",
        "severity": "high",
        "artifacts": [artifact_id],
        "actions": ["quarantine"],
    }
    # No trust root yet: the bundle cannot be verified offline, so the playbook fails closed
    # after the quarantine, and the report says where.
    failed = contain(incident=incident, out=str(tmp_path / "out"), return_state=True)
    assert failed.is_failed()
    assert "containment stopped at bundle_evidence" in str(failed.message)
    assert vault.logged_quarantine(artifact_id) is not None
    first = (tmp_path / "out" / "report-1.md").read_text()
    assert "**The playbook stopped at `bundle_evidence`**" in first
    init_root(vault)
    state = contain(incident=incident, out=str(tmp_path / "out"), return_state=True)
    assert state.is_completed(), state.message
    (done,) = state.result()["incidents"]
    assert [(s["name"], s["status"]) for s in done["steps"]] == [
        ("quarantine_artifacts", "skipped"),
        ("bundle_evidence", "done"),
    ]
    assert len(vault.history(artifact_id, {"artifact.quarantined"})) == 1
    with pytest.raises(QuarantinedError):
        vault.get(artifact_id, tmp_path / "got")
    assert (tmp_path / "out" / "report-2.md").read_text().startswith("# Containment of incident")
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
        names = {r.name for r in runs}
        artifacts = client.read_artifacts()
    assert {"quarantine-artifacts inc-flow", "finish inc-flow"} <= names
    # A rekey deployment registered but served by no runner is not waited for: the
    # playbook then runs the rekey inline instead of hanging on a run nobody picks up.
    from flows.contain import _rekey_served
    from flows.rekey import rekey

    assert _rekey_served() is False
    rekey.to_deployment(name="rekey").apply()  # type: ignore[union-attr]
    assert _rekey_served() is False
    assert any(n.startswith("publish-containment-report") for n in names)
    assert any(a.key == "contain-inc-flow" for a in artifacts)
