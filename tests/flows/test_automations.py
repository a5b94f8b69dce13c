"""The automations against a real Prefect server: installed by name (idempotent) with their
triggers and actions pointing at the contain deployment, and a real event burst over the
threshold, posted to the events API, makes the server create a contain flow run."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.automations import CONTAIN_DEPLOYMENT, install_automations
from flows.contain import contain
from tests.conftest import REPO
from weightvault.config import AutomationSettings, load_settings

EXPECTED = {
    "weightvault-read-spike",
    "weightvault-integrity-failed",
    "weightvault-grant-used-after-revoke",
    "weightvault-grant-denied",
    "weightvault-denied-burst",
}


def _api(path: str, body: Any) -> Any:
    from prefect.settings import PREFECT_API_URL

    request = urllib.request.Request(  # noqa: S310 - the local test API
        f"{PREFECT_API_URL.value()}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local API
        data = response.read()
    return json.loads(data) if data else None


def _flow_runs(deployment_id: str) -> list[dict[str, Any]]:
    found = _api("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})
    return list(found)


def test_automations_are_installed_and_an_event_burst_runs_contain(
    prefect_api: None, tmp_path: Path
) -> None:
    settings = replace(
        load_settings(REPO / "config", home=tmp_path / "home"),
        automations=AutomationSettings(read_spike_threshold=3, read_spike_within_seconds=60),
    )
    built = contain.to_deployment(name="contain")
    deployment_id = str(built.apply())  # type: ignore[union-attr]
    assert sorted(install_automations(settings)) == sorted(EXPECTED)
    assert sorted(install_automations(settings)) == sorted(EXPECTED)  # by name: no duplicates
    listed = [a for a in _api("/automations/filter", {}) if a["name"].startswith("weightvault-")]
    assert sorted(a["name"] for a in listed) == sorted(EXPECTED)
    spike = next(a for a in listed if a["name"] == "weightvault-read-spike")
    assert spike["trigger"]["expect"] == ["weightvault.artifact.read"]
    assert spike["trigger"]["threshold"] == 3
    assert spike["trigger"]["for_each"] == ["prefect.resource.id"]
    (action,) = spike["actions"]
    assert action["type"] == "run-deployment"
    assert action["deployment_id"] == deployment_id
    assert action["parameters"]["trigger"] == "read-spike"
    assert action["parameters"]["resource"] == "{{ event.resource.id }}"
    assert CONTAIN_DEPLOYMENT == "contain/contain"

    # A real burst: four reads of one artifact within the window.
    artifact = f"weightvault.artifact.wv-20261202-{uuid.uuid4().hex[:16]}"
    events = [
        {
            "id": str(uuid.uuid4()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": "weightvault.artifact.read",
            "resource": {"prefect.resource.id": artifact},
            "related": [],
            "payload": {},
        }
        for _ in range(4)
    ]
    _api("/events", events)
    deadline = time.monotonic() + 120
    runs: list[dict[str, Any]] = []
    # Only a run naming this burst's artifact counts: an earlier module's events on the
    # session server may start other runs of the same deployment.
    while time.monotonic() < deadline and not runs:
        runs = [r for r in _flow_runs(deployment_id) if r["parameters"].get("resource") == artifact]
        if not runs:
            time.sleep(1)  # polling the server for the run it creates, not synchronisation
    assert runs, "the read-spike automation created no contain flow run"
    assert len(runs) == 1, runs
    assert runs[0]["parameters"]["trigger"] == "read-spike"
    assert runs[0]["parameters"]["resource"] == artifact
