"""The promote deployment as an operator starts it: from the Prefect UI.

Both tests run the real services of `weightvault up` (`prefect server start` and
the runner serving the deployments) against the real store; nothing is mocked.
The first creates the flow run through the API exactly as the UI's Run button
does; the second fills the deployment's form in headless Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.support.artifacts import ingest_model
from tests.support.ui_helpers import (
    CHROMIUM,
    UI_TIMEOUT_MS,
    api,
    chromium_page,
    fill_form,
    flow_runs_of,
    open_custom_run,
    served,
    service_logs,
    submit_run,
    wait_for_flow_run,
)
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.lifecycle.validate import validate_artifact

RUN_TIMEOUT = 300.0


@pytest.fixture
def ready(vault: Vault, model_repo: Path) -> str:
    """An ingested, validated artifact in hot: ready for promotion to warm."""
    artifact_id = ingest_model(vault, model_repo)
    outcome = validate_artifact(vault, artifact_id, model_repo)
    assert outcome.status == "passed", outcome.failures
    assert vault.catalog.artifact(artifact_id).tier == "hot"
    return artifact_id


@pytest.fixture
def services(vault_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """`weightvault up` for this vault; the runner inherits the WEIGHTVAULT_* env."""
    monkeypatch.setenv("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    with served(vault_settings) as state:
        yield state


def tier_of(settings: Settings, artifact_id: str) -> str:
    """The tier in the catalog, read by a fresh vault."""
    return Vault.open(settings).catalog.artifact(artifact_id).tier


def test_promote_deployment_via_api(
    vault_settings: Settings, ready: str, services: dict[str, Any]
) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    params = {
        "artifact_id": ready,
        "target_tier": "warm",
        "justification": "staging, triggered through the API",
    }
    with temporary_settings(updates={PREFECT_API_URL: services["api_url"]}):
        flow_run = run_deployment(
            name="promote/promote",
            parameters={"params": params},
            timeout=RUN_TIMEOUT,
            poll_interval=1,
            as_subflow=False,
        )
    assert flow_run.deployment_id == UUID(services["deployment"]["id"])
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\n{service_logs(vault_settings)}"
    stored = api(services["api_url"], f"/flow_runs/{flow_run.id}")
    assert stored["parameters"] == {"params": params}
    assert tier_of(vault_settings, ready) == "warm"
    vault = Vault.open(vault_settings)
    assert vault.committed_ids("hot") == set()
    vault.verify(ready)


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is not installed (run .ci/install-browser)",
)
def test_promote_form_in_browser(
    vault_settings: Settings, ready: str, services: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    api_url = services["api_url"]
    deployment_id = services["deployment"]["id"]
    shots = tmp_path / "screenshots"
    with chromium_page(shots) as page:
        open_custom_run(page, services["ui_url"], "promote")
        fill_form(
            page,
            texts={
                "Artifact Id": ready,
                "Justification": "staging, from the UI form",
            },
            choices={"Target Tier": "warm"},
        )
        page.screenshot(path=str(shots / "form.png"), full_page=True)
        flow_run_id = submit_run(page, api_url, deployment_id)["id"]
        assert [r["id"] for r in flow_runs_of(api_url, deployment_id)] == [flow_run_id]
        run = wait_for_flow_run(api_url, flow_run_id, timeout=RUN_TIMEOUT)
        assert run["state_type"] == "COMPLETED", f"{run['state']}\n{service_logs(vault_settings)}"
        assert run["parameters"] == {
            "params": {
                "artifact_id": ready,
                "target_tier": "warm",
                "justification": "staging, from the UI form",
                "legal_hold": False,
            }
        }
        page.goto(f"{services['ui_url']}/runs/flow-run/{flow_run_id}")
        expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=str(shots / "completed.png"), full_page=True)
    assert tier_of(vault_settings, ready) == "warm"
    Vault.open(vault_settings).verify(ready)
