"""`weightvault demo`: the lifecycle end to end on embedded defaults.

The demo's flows report to the Prefect server `weightvault up` runs (never an
ephemeral one): to the running one, or to one it starts the same way and records,
so the runs it prints are in that server's UI and `weightvault down` stops what
it left running.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flows.ingest import ingest
from flows.promote import promote
from flows.services import NO_TELEMETRY, drain_prefect_workers, ensure_server, read_state
from flows.validate import validate
from pipeline.workspace import build_model_repo, configure_remote, run
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.store import dvc_remote


@contextlib.contextmanager
def reporting_to(api_url: str) -> Iterator[None]:
    """Flows run in this block report to the Prefect API at ``api_url``.

    Prefect reads its settings when it is imported, so setting PREFECT_API_URL in
    the environment now would not reach this process' client (it would start an
    ephemeral server): the setting is applied with ``temporary_settings``, with
    ephemeral servers disabled. The environment is set too, for any process
    started from here. Logs and events still queued are sent before the block ends.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        temporary_settings,
    )

    os.environ["PREFECT_API_URL"] = api_url
    # Without an API URL a client would fail rather than start an ephemeral server.
    updates = {PREFECT_API_URL: api_url, PREFECT_SERVER_EPHEMERAL_ENABLED: False}
    with temporary_settings(updates=updates):
        try:
            yield
        finally:
            drain_prefect_workers()


def run_demo(settings: Settings) -> dict[str, Any]:
    """Start the store, reproduce the pipeline, ingest through the flow, get and verify."""
    os.environ.update(NO_TELEMETRY)
    # The store and the Prefect server of `weightvault up`: running, or started and
    # recorded now (so `weightvault down` stops them).
    services = ensure_server(settings)
    # Idempotent: the vault exists and its store runs by now; this reports its address.
    store = init_vault(settings, start_store=True)["store"]
    with reporting_to(services["api_url"]):
        summary = _lifecycle(settings)
    services = read_state(settings) or services
    flow_runs = summary["flow_runs"]
    ui_url = services["ui_url"]
    left_running = [f"Prefect server at {ui_url} (API {services['api_url']})"]
    if settings.store.embedded:
        left_running.insert(0, f"store (SeaweedFS S3) at {store}")
    if services.get("runner"):
        left_running.append("deployment runner (started by `weightvault up`)")
    summary.update(
        store=store,
        prefect_api=services["api_url"],
        prefect_ui=ui_url,
        flow_run_urls={name: f"{ui_url}/runs/flow-run/{id_}" for name, id_ in flow_runs.items()},
        left_running=left_running,
    )
    return summary


def _lifecycle(settings: Settings) -> dict[str, Any]:
    """Reproduce the pipeline, ingest, validate and promote through the flows; get and verify."""
    source = settings.config_dir.parent
    repo = build_model_repo(source, settings.home / "demo-model-repo")
    # The DVC remote gets the dvc role's credential, which reaches the DVC bucket only.
    configure_remote(repo, dvc_remote(settings))
    run(repo, "dvc", "push", "-q")
    commit = run(repo, "git", "rev-parse", "HEAD").strip()
    state = ingest(
        path=str(repo / "model"),
        name="digits-classifier",
        model_repo=str(repo),
        run_id=f"demo-{commit[:12]}",
        labels={"pipeline": "reference"},
        return_state=True,
    )
    summary: dict[str, Any] = dict(state.result())  # raises the flow's error if it failed
    flow_runs = {"ingest": str(state.state_details.flow_run_id)}
    artifact_id = summary["artifact_id"]
    checked_state = validate(artifact_id=artifact_id, model_repo=str(repo), return_state=True)
    checked: dict[str, Any] = checked_state.result()
    flow_runs["validate"] = str(checked_state.state_details.flow_run_id)
    vault = Vault.open(settings)
    if checked["status"] == "passed" and vault.catalog.artifact(artifact_id).tier == "hot":
        promoted = promote(
            artifact_id=artifact_id,
            target_tier="warm",
            justification="weightvault demo: validated reference model to staging",
            return_state=True,
        )
        promoted.result()
        flow_runs["promote"] = str(promoted.state_details.flow_run_id)
    with tempfile.TemporaryDirectory() as tmp:
        vault.get(summary["artifact_id"], Path(tmp) / "model")
    report = vault.verify(summary["artifact_id"])
    summary.update(
        validation=checked["status"],
        tier=vault.catalog.artifact(artifact_id).tier,
        verified_files=report.files,
        verified_bytes=report.bytes,
        flow_run=flow_runs["ingest"],
        flow_runs=flow_runs,
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
    ]
    for i, (name, id_) in enumerate(summary["flow_runs"].items()):
        lines.append(f"  {'prefect runs' if i == 0 else '':<15} {name:<9}{id_}")
    if summary.get("duplicate_of"):
        lines.append(
            "  note            same content as an earlier run: recognised, not stored twice"
        )
    lines.append(f"  Prefect UI      {summary['prefect_ui']} (a run: /runs/flow-run/<id>)")
    lines.append("left running:")
    lines.extend(f"  {what}" for what in summary["left_running"])
    lines.append("stop it with `weightvault down` (or `make down`)")
    return "\n".join(lines)
