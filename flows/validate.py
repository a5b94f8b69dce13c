"""The validate flow: formats, Great Expectations and evidence, as a DAG.

Each suite runs as a GX Checkpoint; its Data Docs are stored with the signed
report. A failed or partial validation still keeps its evidence (the report
is stored and its hash indexed); it blocks promotion through the policy's
validation and validation_complete rules.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import BaseModel, Field

from tasks import gate_tasks, reports


class ValidateParams(BaseModel):
    """What to validate; rendered as a form in the Prefect UI."""

    artifact_id: str = Field(description="Artifact id (or unique prefix)")
    model_repo: str | None = Field(
        default=None,
        description="git+DVC model repo; its weightvault.toml (or pyproject "
        "[tool.weightvault.validation]) names the datasets, suites and metric thresholds",
    )


@flow(name="validate", description="Format, GX and provenance checks.", persist_result=False)
def validate(params: ValidateParams) -> dict[str, Any]:
    """Validate an artifact; returns the verdict (no plaintext, no keys)."""
    root = gate_tasks.decrypt(params.artifact_id)
    try:
        scans = gate_tasks.scan(root)
        record = gate_tasks.gx_record(params.artifact_id, root)
        model = gate_tasks.gx_model(params.model_repo, root)
        outcome = gate_tasks.record(params.artifact_id, scans, [record], model, root)
    finally:
        gate_tasks.cleanup(root)
    reports.publish_validation_report(outcome)
    return dict(outcome.__dict__)
