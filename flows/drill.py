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
from pydantic import BaseModel, Field

from tasks import drill_tasks
from weightvault.lifecycle.drill import DEFAULT_SAMPLE, MAX_SAMPLE

DEFAULT_CRON = "0 3 * * 0"
"""Sundays 03:00 UTC."""


class DrillParams(BaseModel):
    """What to rehearse; the Prefect UI renders this as the run form."""

    sample: int = Field(
        default=DEFAULT_SAMPLE,
        ge=1,
        le=MAX_SAMPLE,
        description="How many of the newest hot, warm and cold artifacts to rehearse",
    )
    artifact_ids: list[str] = Field(
        default_factory=list, description="Rehearse these artifacts instead of a sample"
    )


@flow(
    name="dr-drill",
    description="Rehearse DR on a scratch vault: copy, destroy, restore, verify, report.",
    persist_result=False,
    validate_parameters=True,
)
def dr_drill(params: DrillParams | None = None) -> dict[str, Any]:
    """One drill; returns the same report as ``weightvault dr drill --json``."""
    params = params or DrillParams()
    report = drill_tasks.run_drill(params.sample, tuple(params.artifact_ids))
    drill_tasks.publish(report)
    return report
