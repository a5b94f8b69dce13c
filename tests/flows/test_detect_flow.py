"""The detect flow: the same run as `weightvault detect`, with the incidents published, then
the contain playbook on what is open and not yet contained (the one backstop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_tree
from weightvault.artifacts import Vault
from weightvault.errors import AuthorizationError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.incidents import list_incidents
from weightvault.lifecycle.trust import init_root


def test_the_detect_flow_opens_incidents_and_publishes_them(
    vault: Vault, tmp_path: Path, prefect_api: None
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.detect import detect

    init_root(vault)  # the containment's incident bundle verifies against a signed root
    src = make_tree(tmp_path / "m", {"w.bin": b"f" * 512})
    for _ in range(5):  # the policy's default denied_burst
        with pytest.raises(AuthorizationError):
            ingest.put(vault, src, "m", tier="warm")
    state = detect(return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    assert report["grants_synced"] == 0  # the sync ran first; this vault issued no grant
    (opened,) = report["opened"]
    assert opened["rule"] == "denied_burst"
    assert [i.id for i in list_incidents(vault)] == [opened["id"]]
    # Contained by the same run (a subflow): the evidence bundled, incident.contained logged.
    (contained,) = report["contained"]
    assert contained["incident"]["incident_id"] == opened["id"]
    assert [s["name"] for s in contained["steps"]] == ["bundle_evidence"]
    assert contained["contained_index"] is not None
    (listed,) = list_incidents(vault)
    assert listed.contained_at is not None
    run_id = state.state_details.flow_run_id

    async def published() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts()
        return [
            str(a.data) for a in found if a.key == "detect-incidents" and a.flow_run_id == run_id
        ]

    (markdown,) = asyncio.run(published())
    assert f"| {opened['id']} | denied_burst | medium |" in markdown
