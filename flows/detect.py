"""The detect flow: the detection rules over the signed log's new entries, incidents opened.

First ``weightvault grants sync`` (receipts collaborators left become log entries), then
the steps of ``weightvault detect`` (:func:`weightvault.lifecycle.incidents.detect`):
resume from the last completed run's cursor, evaluate ``config/policies/detect.rego`` on
the new entries a batch at a time, open an incident per finding, record the new cursor;
then the incidents opened are published as a markdown artifact, and the contain flow runs
as a subflow on every open incident the log shows not yet contained. Served as
``detect/detect`` every ``[automations] backstop_minutes`` (default five,
:data:`DEFAULT_CRON`): the one backstop behind the automations.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._operator import refusals_fail, run_name
from flows.contain import contain
from tasks import detect_tasks

DEFAULT_CRON = "*/5 * * * *"
"""Every five minutes."""


@flow(
    name="detect",
    description="Detection rules over the log's new entries; open and contain incidents.",
    flow_run_name=run_name("detect-{time}"),
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def detect() -> dict[str, Any]:
    """One detect run, then containment of what is open and not yet contained.

    Grant receipts are synced first (a revoked grant's use is evidence only once
    logged). Returns the report of ``weightvault detect --json`` with
    ``grants_synced`` and ``contained``: the contain subflow's incidents. A failed
    sync or containment fails the run (fail closed)."""
    synced = detect_tasks.sync_grants()
    report = detect_tasks.run_detect()
    detect_tasks.publish(report)
    contained = contain(trigger="detect", detect_first=False)
    return {**report, "grants_synced": synced, "contained": contained["incidents"]}
