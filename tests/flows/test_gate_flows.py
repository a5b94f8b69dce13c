"""The validate and promote flows under real Prefect, and the policy CLI."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from flows.promote import PromoteParams, promote
from flows.validate import ValidateParams, validate
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
    state = validate(
        ValidateParams(artifact_id=artifact_id, model_repo=str(model_repo)), return_state=True
    )
    assert state.is_completed(), state.message
    assert state.result()["status"] == "passed"
    state = promote(
        PromoteParams(artifact_id=artifact_id, target_tier="warm", justification="staging"),
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
        PromoteParams(artifact_id=artifact_id, target_tier="warm", justification="x"),
        return_state=True,
    )
    assert state.is_failed()
    assert "PolicyError" in (state.message or "")
    assert "validation" in (state.message or "")
    assert flow_vault.catalog.artifact(artifact_id).tier == "hot"
    async with get_client() as client:
        artifacts = await client.read_artifacts()
    run_id = state.state_details.flow_run_id
    report = next(a for a in artifacts if a.key == "promotion-report" and a.flow_run_id == run_id)
    assert "refused" in report.data
    assert "validation" in report.data


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
    state = validate(ValidateParams(artifact_id=artifact_id), return_state=True)
    assert state.is_failed()
    assert "quarantined" in (state.message or "")
    assert len(flow_vault.history(artifact_id, {"artifact.quarantined"})) == 1
    assert not marker.exists()
