"""The detect flow: the detection rules over the signed log's new entries, incidents opened.

The steps of ``weightvault detect`` (:func:`weightvault.lifecycle.incidents.detect`):
resume from the last completed run's cursor, evaluate ``config/policies/detect.rego``
on the new entries a batch at a time, open an incident per finding, record the new
cursor; then the incidents opened are published as a markdown artifact, and the
contain flow runs as a subflow on every open incident the log shows not yet
contained. Served as ``detect/detect`` every ``[automations] backstop_minutes``
(default five, :data:`DEFAULT_CRON`): the one backstop behind the automations.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.contain import contain
from tasks import detect_tasks

DEFAULT_CRON = "*/5 * * * *"
"""Every five minutes."""


@flow(
    name="detect",
    description="Detection rules over the log's new entries; open and contain incidents.",
    persist_result=False,
    validate_parameters=True,
)
def detect() -> dict[str, Any]:
    """One detect run, then containment of what is open and not yet contained.

    Returns the report of ``weightvault detect --json`` with ``contained``: the
    contain subflow's incidents. A failed containment fails the run (fail closed)."""
    report = detect_tasks.run_detect()
    detect_tasks.publish(report)
    contained = contain(trigger="detect", detect_first=False)
    return {**report, "contained": contained["incidents"]}
