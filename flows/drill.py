"""The dr-drill flow: rehearse disaster recovery on a scratch vault, never on live data.

The steps of :mod:`weightvault.lifecycle.drill` (``weightvault dr drill``):
sample -> copy each artifact with its rebuild kit into the same tier of a
scratch vault -> lose and rebuild its catalog -> lose hot and warm model objects
and ``recover --restore`` them, lose the keys and decrypt cold from escrow ->
verify -> clean up, then the report is published as a markdown artifact. Served
as ``dr-drill/dr-drill`` on a weekly schedule (:data:`DEFAULT_CRON`).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._operator import field, refusals_fail, run_name
from tasks import drill_tasks
from weightvault.lifecycle.drill import DEFAULT_SAMPLE, MAX_SAMPLE

DEFAULT_CRON = "0 3 * * 0"
"""Sundays 03:00 UTC."""


@flow(
    name="dr-drill",
    description="Rehearse DR on a scratch vault: copy, destroy, restore, verify, report.",
    flow_run_name=run_name("dr-drill-{time}"),
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def dr_drill(
    sample: int = field(
        "Sample",
        "How many of the newest hot, warm and cold artifacts to rehearse",
        DEFAULT_SAMPLE,
        ge=1,
        le=MAX_SAMPLE,
    ),
    artifact_ids: list[str] = field(
        "Artifacts", "Rehearse these artifact ids instead of a sample", default=[]
    ),
) -> dict[str, Any]:
    """One drill; returns the same report as ``weightvault dr drill --json``."""
    report = drill_tasks.run_drill(sample, tuple(artifact_ids))
    drill_tasks.publish(report)
    return report
