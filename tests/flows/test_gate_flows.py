"""The validate and promote flows under real Prefect, and the policy CLI."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from flows.promote import promote
from flows.validate import validate
from tests.conftest import make_tree
from tests.support.artifacts import ingest_model
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.lifecycle import ingest


@pytest.fixture
def flow_vault(vault_settings: Settings, prefect_api: None) -> Vault:
    return Vault.open(vault_settings, identity="alice")


class _Marker:
    """Unpickling this would create a file: the test checks it never happens."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def test_validate_then_promote_flows(flow_vault: Vault, model_repo: Path) -> None:
    artifact_id = ingest_model(flow_vault, model_repo)
    state = validate(artifact_id=artifact_id, model_repo=str(model_repo), return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["status"] == "passed"
    state = promote(
        artifact_id=artifact_id,
        target_tier="warm",
        justification="staging",
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert flow_vault.catalog.artifact(artifact_id).tier == "warm"


@pytest.mark.anyio
async def test_refused_promotion_fails_the_run_with_reasons(
    flow_vault: Vault, model_repo: Path
) -> None:
    artifact_id = ingest_model(flow_vault, model_repo)
    state = promote(
        artifact_id=artifact_id,
        target_tier="warm",
        justification="x",
        return_state=True,
    )
    assert state.is_failed()
    assert "validation" in (state.message or "")
    assert "Traceback" not in (state.message or "")
    assert flow_vault.catalog.artifact(artifact_id).tier == "hot"
    run_id = state.state_details.flow_run_id
    await APILogHandler.aflush()
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
        )
        artifacts = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    # The run is named after what it does; the gate that refused is the failed task.
    assert run.name == f"promote-{artifact_id}-to-warm"
    states = {t.name.split(" ")[0].rsplit("-", 1)[0]: t.state_type.value for t in tasks}
    assert states["gate-policy"] == "FAILED", states
    assert states["gate-integrity-signature"] == "COMPLETED", states
    assert "commit-promotion" not in states  # nothing moved
    # One warning with the reasons, no traceback anywhere in the run's log.
    warnings = [log.message for log in logs if log.level == logging.WARNING]
    assert len([w for w in warnings if "refused" in w]) == 1, warnings
    assert "validation" in next(w for w in warnings if "refused" in w)
    assert not [log.message for log in logs if "Traceback" in log.message]
    # The report is keyed per artifact; no (pickled) "result" artifact is stored.
    assert {a.type for a in artifacts} == {"markdown"}, [(a.key, a.type) for a in artifacts]
    (report,) = [a for a in artifacts if a.key == f"promotion-{artifact_id.lower()}"]
    assert "refused" in str(report.data)
    assert "validation" in str(report.data)


def test_pickle_is_never_executed_and_is_quarantined(flow_vault: Vault, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    src = make_tree(
        tmp_path / "evil",
        {
            "model.safetensors": pickle.dumps(_Marker(str(marker))),
            "config.json": b"{}",
        },
    )
    # The put's own format scan quarantines it at commit (tests/security/test_ingest_scan.py).
    result = ingest.put(flow_vault, src, "evil")
    assert result.quarantined is not None
    assert "model.safetensors is pickle" in result.quarantined
    artifact_id = result.artifact_id
    assert flow_vault.catalog.artifact(artifact_id).tier == "quarantine"
    # The validate flow cannot read it, and does not quarantine it a second time.
    state = validate(artifact_id=artifact_id, return_state=True)
    assert state.is_failed()
    assert "quarantined" in (state.message or "")
    assert len(flow_vault.history(artifact_id, {"artifact.quarantined"})) == 1
    assert not marker.exists()
