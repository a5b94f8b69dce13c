"""The detect flow: the detection rules over the signed log's new entries, incidents opened.

The steps of ``weightvault detect`` (:func:`weightvault.lifecycle.incidents.detect`):
resume from the last completed run's cursor, evaluate ``config/policies/detect.rego``
on the new entries a batch at a time, open an incident per finding, record the new
cursor; then the incidents opened are published as a markdown artifact. Served as
``detect/detect`` every five minutes (:data:`DEFAULT_CRON`), the backstop of
anything that runs it sooner.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks import detect_tasks

DEFAULT_CRON = "*/5 * * * *"
"""Every five minutes."""


@flow(
    name="detect",
    description="Run the detection rules on the log's new entries and open incidents.",
    persist_result=False,
    validate_parameters=True,
)
def detect() -> dict[str, Any]:
    """One detect run; returns the same report as ``weightvault detect --json``."""
    report = detect_tasks.run_detect()
    detect_tasks.publish(report)
    return report
