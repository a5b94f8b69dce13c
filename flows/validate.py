"""The validate flow: formats, Great Expectations and evidence, as a DAG.

Each suite runs as a GX Checkpoint; its Data Docs are stored with the signed
report. A failed or partial validation still keeps its evidence (the report
is stored and its hash indexed); it blocks promotion through the policy's
validation and validation_complete rules.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._operator import field, refusals_fail
from tasks import gate_tasks, reports


@flow(
    name="validate",
    description="Format, GX and provenance checks.",
    flow_run_name="validate-{artifact_id}",
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def validate(
    artifact_id: str = field("Artifact", "Artifact id (or a unique prefix of it)"),
    model_repo: str = field(
        "Model repository",
        "Git + DVC model repository; its weightvault.toml (or pyproject.toml "
        "[tool.weightvault.validation]) names the datasets, suites and metric thresholds "
        "(leave empty for a partial validation)",
        "",
    ),
) -> dict[str, Any]:
    """Validate an artifact; returns the verdict (no plaintext, no keys)."""
    root = gate_tasks.decrypt(artifact_id)
    try:
        scans = gate_tasks.scan(root)
        record = gate_tasks.gx_record(artifact_id, root)
        model = gate_tasks.gx_model(model_repo or None, root)
        outcome = gate_tasks.record(artifact_id, scans, [record], model, root)
    finally:
        gate_tasks.cleanup(root)
    reports.publish_validation_report(outcome)
    return dict(outcome.__dict__)
