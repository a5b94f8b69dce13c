"""The ingest flow: every artifact enters the vault through this DAG.

capture provenance -> plan -> format scan -> write envelope -> encrypt+upload
(one task per file, in parallel) -> sign manifest -> commit (manifest, event,
catalog; unsafe content is committed straight into quarantine) -> report. A
failure before the commit discards what was uploaded.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from tasks import reports, vault_tasks


class IngestParams(BaseModel):
    """What to ingest; the Prefect UI renders this as a form."""

    path: str = Field(description="File or directory to ingest (on the worker's machine)")
    name: str = Field(description="Artifact name, e.g. digits-classifier")
    version: str | None = Field(default=None, description="Optional version label")
    model_repo: str | None = Field(
        default=None, description="Git + DVC repository the model was built from"
    )
    run_id: str | None = Field(default=None, description="Training run id")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels")
    tier: Literal["hot", "warm", "cold"] = Field(
        default="hot",
        description="Target tier: hot (warm and cold are refused: reach them by promote)",
    )
    parent: str | None = Field(default=None, description="Parent artifact id, for fine-tunes")
    creator: str | None = Field(default=None, description="Who made the model")
    allow_incomplete: bool = Field(
        default=False, description="Record missing provenance fields instead of refusing"
    )


@flow(
    name="ingest",
    description="Capture provenance, encrypt and upload, sign, commit.",
    # Prefect's typing is wrong here: flow() wants TaskRunner[PrefectFuture[Any]] and
    # TaskRunner is invariant in its future type, so its own ThreadPoolTaskRunner fails.
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
    persist_result=False,
    validate_parameters=True,
)
def ingest(params: IngestParams) -> reports.IngestSummary:
    """Ingest one artifact; returns a summary without any key material."""
    provenance = vault_tasks.capture(
        params.model_repo, params.run_id, params.creator, params.parent, params.allow_incomplete
    )
    labels = dict(params.labels)
    if params.version:
        labels["version"] = params.version
    plan = vault_tasks.plan(params.path, params.name, params.tier, labels)
    try:
        if provenance.git_commit is not None:
            plan = vault_tasks.rebuild_kit(plan, params.model_repo, provenance, params.path)
    except BaseException:
        vault_tasks.discard(plan)
        raise
    try:
        screening = vault_tasks.screen(plan)
    except BaseException:
        vault_tasks.discard(plan)
        raise
    envelope = vault_tasks.write_envelope(plan)
    try:
        futures = [vault_tasks.upload.submit(plan, f, envelope) for f in plan.files]
        entries = [f.result() for f in futures]
        sealed = vault_tasks.sign(plan, entries, provenance, screening)
        result = vault_tasks.commit(sealed)
    except BaseException:
        vault_tasks.discard(plan)
        raise
    finally:
        vault_tasks.drop_kit(plan)
    return reports.publish_ingest_report(result, provenance)
