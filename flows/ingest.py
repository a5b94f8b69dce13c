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

from flows._operator import field, refusals_fail
from tasks import reports, vault_tasks


@flow(
    name="ingest",
    description="Capture provenance, encrypt and upload, sign, commit.",
    flow_run_name="ingest-{name}",
    result_serializer="json",
    # Prefect's typing is wrong here: flow() wants TaskRunner[PrefectFuture[Any]] and
    # TaskRunner is invariant in its future type, so its own ThreadPoolTaskRunner fails.
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
    persist_result=False,
    validate_parameters=True,
)
@refusals_fail
def ingest(
    path: str = field("Path", "File or directory to ingest, on the worker's machine"),
    name: str = field("Name", "Artifact name, e.g. digits-classifier"),
    version: str = field("Version", "Version label (leave empty for none)", ""),
    model_repo: str = field(
        "Model repository",
        "Git + DVC repository the model was built from (leave empty for none)",
        "",
    ),
    run_id: str = field("Training run", "Training run id (leave empty for none)", ""),
    labels: dict[str, str] = field("Labels", "Free-form labels, name to value", default={}),
    tier: Literal["hot", "warm", "cold"] = field(
        "Tier", "hot (warm and cold are reached by validate and promote, never at ingest)", "hot"
    ),
    parent: str = field("Parent", "Parent artifact id, for a fine-tune (leave empty for none)", ""),
    creator: str = field("Creator", "Who made the model (leave empty: the acting identity)", ""),
    allow_incomplete: bool = field(
        "Allow incomplete provenance", "Record missing provenance fields instead of refusing", False
    ),
) -> reports.IngestSummary:
    """Ingest one artifact; returns a summary without any key material."""
    provenance = vault_tasks.capture(
        model_repo or None, run_id or None, creator or None, parent or None, allow_incomplete
    )
    labels = dict(labels)
    if version:
        labels["version"] = version
    plan = vault_tasks.plan(path, name, tier, labels)
    try:
        if provenance.git_commit is not None:
            plan = vault_tasks.rebuild_kit(plan, model_repo or None, provenance, path)
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
