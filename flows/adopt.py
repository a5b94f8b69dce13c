"""The adopt flow: take stock of existing model artifacts, then bring them in.

open the source -> inventory (formats by content, recovered provenance, what the
gates would say) -> one ingest task per candidate (unless a dry run), each an
ordinary put with provenance marked backfilled -> report. Content already in the
vault is recognised and skipped, so a re-run after a crash continues.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows._operator import field, refusals_fail
from tasks import adopt_tasks, reports
from tasks.vault_tasks import vault
from weightvault.lifecycle import adopt as steps


@flow(
    name="adopt",
    description="Inventory existing model artifacts, then adopt them with backfilled provenance.",
    flow_run_name="adopt-{kind}",
    result_serializer="json",
    persist_result=False,
    validate_parameters=True,
)
@refusals_fail
def adopt(
    source: str = field(
        "Source",
        "A directory, a Hugging Face cache or an MLflow root on the worker's machine, "
        "or s3://BUCKET/PREFIX on the vault's store",
    ),
    kind: Literal["auto", "dir", "hf", "mlflow", "s3"] = field(
        "Kind", "What the source is (auto: recognised by its layout)", "auto"
    ),
    dry_run: bool = field("Dry run", "Inventory only: store nothing", True),
) -> reports.AdoptSummary:
    """Adopt every candidate of ``source`` (or only list them); returns counts, no secrets."""
    with steps.open_source(vault(), source, kind) as opened:
        found = adopt_tasks.take_stock(opened)
        results = [] if dry_run else [adopt_tasks.adopt_one(opened, c) for c in found.candidates]
    return reports.publish_adopt_report(steps.AdoptReport(found, tuple(results), dry_run))
