"""`weightvault demo`: the lifecycle end to end on embedded defaults."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flows.ingest import IngestParams, ingest
from flows.promote import PromoteParams, promote
from flows.services import read_state
from flows.validate import ValidateParams, validate
from pipeline.workspace import build_model_repo, configure_remote, run
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.store import EmbeddedStore


def run_demo(settings: Settings) -> dict[str, Any]:
    """Start the store, reproduce the pipeline, ingest through the flow, get and verify."""
    init_vault(settings, start_store=True)
    services = read_state(settings)
    if services:
        os.environ["PREFECT_API_URL"] = services["api_url"]
    source = settings.config_dir.parent
    repo = build_model_repo(source, settings.home / "demo-model-repo")
    if settings.store.embedded:
        server = EmbeddedStore(settings.store_dir)
        creds = server.credentials()
        endpoint, access, secret = server.endpoint(), creds.access_key, creds.secret_key
    else:
        endpoint = settings.store.endpoint
        access, secret = settings.store.access_key, settings.store.secret_key
    configure_remote(
        repo, settings.store.bucket("dvc"), endpoint, access, secret, secure=settings.store.secure
    )
    run(repo, "dvc", "push", "-q")
    commit = run(repo, "git", "rev-parse", "HEAD").strip()
    state = ingest(
        IngestParams(
            path=str(repo / "model"),
            name="digits-classifier",
            model_repo=str(repo),
            run_id=f"demo-{commit[:12]}",
            labels={"pipeline": "reference"},
        ),
        return_state=True,
    )
    summary: dict[str, Any] = state.result()  # raises the flow's error if it failed
    artifact_id = summary["artifact_id"]
    checked = validate(ValidateParams(artifact_id=artifact_id, model_repo=str(repo)))
    vault = Vault.open(settings)
    if checked["status"] == "passed" and vault.catalog.artifact(artifact_id).tier == "hot":
        promote(
            PromoteParams(
                artifact_id=artifact_id,
                target_tier="warm",
                approver="demo-approver",
                justification="weightvault demo: validated reference model to staging",
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        vault.get(summary["artifact_id"], Path(tmp) / "model")
    report = vault.verify(summary["artifact_id"])
    summary.update(
        validation=checked["status"],
        tier=vault.catalog.artifact(artifact_id).tier,
        verified_files=report.files,
        verified_bytes=report.bytes,
        flow_run=str(state.state_details.flow_run_id),
        prefect_ui=services["ui_url"] if services else None,
    )
    return summary


def render(summary: dict[str, Any]) -> str:
    """The demo's closing summary."""
    lines = [
        "weightvault demo: done",
        f"  artifact id     {summary['artifact_id']}",
        f"  content digest  {summary['content_digest']}",
        f"  files / bytes   {summary['files']} / {summary['bytes']}",
        f"  signed by       {summary['signed_by']} (Ed25519 + ML-DSA-65)",
        f"  provenance      git {summary['git_commit']} (dirty: {summary['git_dirty']}), "
        f"run {summary['run_id']}",
        f"  validation      {summary['validation']} (formats, Great Expectations, Rego policy)",
        f"  tier            {summary['tier']}",
        f"  verified        {summary['verified_files']} files, every sha256 and signature",
        f"  prefect run     {summary['flow_run']}",
    ]
    if summary.get("duplicate_of"):
        lines.append(
            "  note            same content as an earlier run: recognised, not stored twice"
        )
    if summary.get("prefect_ui"):
        lines.append(f"  Prefect UI      {summary['prefect_ui']}")
    else:
        lines.append("  Prefect UI      run `weightvault up` and open the address it prints")
    return "\n".join(lines)
