"""The ingest flow under real Prefect, against the real store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import urllib3
from prefect.client.orchestration import get_client
from prefect.utilities.callables import parameter_schema

from flows.ingest import ingest
from pipeline.workspace import configure_remote, run
from tests.support.durable_store import wait_for
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.store import DvcRemote
from weightvault.telemetry import flush_events


@pytest.fixture
def flow_vault(vault_settings: Settings, prefect_api: None) -> Settings:
    return vault_settings


def test_ingest_flow_end_to_end(flow_vault: Settings, model_repo: Path) -> None:
    state = ingest(
        path=str(model_repo / "model"),
        name="digits",
        model_repo=str(model_repo),
        run_id="run-42",
        labels={"team": "ml"},
        return_state=True,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["git_commit"] == run(model_repo, "git", "rev-parse", "HEAD").strip()
    assert summary["git_dirty"] is False
    vault = Vault.open(flow_vault)
    row = vault.catalog.artifact(summary["artifact_id"])
    assert row.signed_by == "vault-signing@v1"
    paths = {f["path"] for f in vault.catalog.files_of(row.id)}
    assert {"model.safetensors", "config.json"} <= paths
    # The flow stores the rebuild kit beside the model files (docs/disaster-recovery.md).
    assert {".weightvault/rebuild-kit/source.bundle", ".weightvault/rebuild-kit/kit.json"} <= paths
    report = vault.verify(row.id)
    assert report.files == row.file_count
    statement = vault.verify_statement(row.id, "hot", vault.load_manifest(row.id, "hot")[0])
    external = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert external["trainingRunId"] == "run-42"
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert any(d["name"] == "data/prepared" for d in deps)
    # The training environment is the model repo's own lock file, never the vault's uv.lock.
    recorded = external["extra"]["provenance"]
    lock = (model_repo / "requirements.txt").read_bytes()
    assert recorded["environment"]["lock_file"] == "requirements.txt"
    assert recorded["environment"]["lock_file_sha256"] == hashlib.sha256(lock).hexdigest()
    assert {s["name"] for s in recorded["dvc_stages"]} == {"prepare", "train", "evaluate"}
    # The log's entries of this ingest name the flow run they ran in, and only those.
    entries = [json.loads(raw) for _, raw in vault.tlog.iter_entries()]
    ingested = [e for e in entries if e["kind"] == "artifact.ingested" and e["artifact_id"]]
    assert ingested
    assert all(e["client"]["flow_run"] == str(state.state_details.flow_run_id) for e in ingested)
    assert vault.record("store.gc").client["flow_run"] is None
    # No key material in the summary the flow returns.
    text = json.dumps(summary)
    for rec in vault.keys.records():
        assert rec.material.hex() not in text


@pytest.mark.anyio
async def test_flow_run_publishes_report_and_events(
    flow_vault: Settings, model_repo: Path, prefect_api: str
) -> None:
    state = ingest(
        path=str(model_repo / "model" / "config.json"),
        name="cfg",
        model_repo=str(model_repo),
        run_id="r1",
        return_state=True,
    )
    assert state.is_completed()
    async with get_client() as client:
        artifacts = await client.read_artifacts()
    run_id = state.state_details.flow_run_id
    artifact = (await state.aresult())["artifact_id"]
    key = f"ingest-{artifact.lower()}"
    reports = [a for a in artifacts if a.key == key and a.flow_run_id == run_id]
    assert reports
    assert "content digest" in reports[0].data
    # The put's outcome reached the server once, on the flow run and the training run.
    flush_events()
    body = {
        "filter": {
            "event": {"name": ["weightvault.artifact.ingested"]},
            "resource": {"id": [f"weightvault.artifact.{artifact}"]},
        }
    }

    def ingested() -> list[dict[str, Any]]:
        reply = urllib3.request("POST", f"{prefect_api}/events/filter", json=body, timeout=10)
        found: list[dict[str, Any]] = reply.json()["events"]
        return found

    (event,) = wait_for("the flow's ingest event", ingested, timeout=60)
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in event["related"]}
    assert roles["flow-run"] == f"prefect.flow-run.{run_id}"
    assert roles["training-run"] == "weightvault.training-run.r1"


def test_dirty_tree_is_recorded(flow_vault: Settings, model_repo: Path, tmp_path: Path) -> None:
    (model_repo / "untracked.txt").write_text("x")
    try:
        state = ingest(
            path=str(model_repo / "metrics.json"),
            name="m",
            model_repo=str(model_repo),
            run_id="r2",
            return_state=True,
        )
    finally:
        (model_repo / "untracked.txt").unlink()
    assert state.is_completed()
    assert state.result()["git_dirty"] is True


def test_missing_provenance_fails_unless_allowed(flow_vault: Settings, tmp_path: Path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"weights")
    state = ingest(path=str(src), name="nop", model_repo=str(tmp_path), return_state=True)
    assert state.is_failed()
    vault = Vault.open(flow_vault)
    assert vault.catalog.list_artifacts() == []
    state = ingest(
        path=str(src),
        name="nop",
        model_repo=str(tmp_path),
        allow_incomplete=True,
        return_state=True,
    )
    assert state.is_completed()


def test_deployment_parameter_schema() -> None:
    deployment = ingest.to_deployment(name="ingest")
    assert deployment.name == "ingest"
    schema = parameter_schema(ingest).model_dump()
    params = schema["properties"]
    for field in ("path", "name", "version", "model_repo", "run_id", "labels", "tier"):
        assert field in params
        assert params[field].get("description")


def test_dvc_push_and_pull_against_the_vault(
    flow_vault: Settings, model_repo: Path, s3_server
) -> None:
    # The session server has no role identities: its admin key stands in for the DVC
    # credential here (tests/security/test_store_roles.py pushes with the real one).
    creds = s3_server.credentials()
    remote = DvcRemote(
        f"s3://{flow_vault.store.bucket('dvc')}/",
        f"http://{s3_server.endpoint()}",
        creds.access_key,
        creds.secret_key,
    )
    configure_remote(model_repo, remote)
    run(model_repo, "dvc", "push", "-q")
    cache = model_repo / ".dvc" / "cache"
    import shutil

    shutil.rmtree(cache)
    (model_repo / "model" / "model.safetensors").unlink()
    run(model_repo, "dvc", "pull", "-q")
    assert (model_repo / "model" / "model.safetensors").is_file()
    vault = Vault.open(flow_vault)
    assert any(True for _ in vault.store.list(flow_vault.store.bucket("dvc"), ""))
