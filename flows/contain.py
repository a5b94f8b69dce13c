"""The contain flow: the incident playbook as a DAG, one task per step.

Triggered by the automations of :mod:`flows.automations` (their parameters name the
trigger and the resource of the event that fired) or run by hand with an explicit
incident. A Prefect event is not trusted evidence: the trigger's parameters are only a
HINT, and the incidents to contain come from the signed log through
:func:`weightvault.lifecycle.contain.find_incidents` (the seam the detector plugs into).
An explicit ``incident`` (the detector's JSON, or a ContainmentPlan's fields) is contained
as given: authorization still decides every step it logs.

Steps (:func:`weightvault.lifecycle.contain.steps_for`): revoke grants -> quarantine
artifacts or isolate tiers -> compromise keys -> rekey (the served ``rekey/rekey``
deployment when there is one, else inline) -> recover from the rebuild kit -> bundle the
evidence, log ``incident.contained`` and write the report -> publish the report as an
artifact. A failed
step stops the playbook; the run then fails with the core's ContainmentError after the
report says where.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._operator import field, refusals_fail, run_name
from tasks import contain_tasks
from weightvault.lifecycle import contain as core

REKEY_DEPLOYMENT = "rekey/rekey"
#: how long the contain run waits for the rekey deployment's run
REKEY_TIMEOUT_S = 3600.0

_STEP_TASKS = {
    "revoke_grants": contain_tasks.revoke_grants,
    "quarantine_artifacts": contain_tasks.quarantine_artifacts,
    "isolate_tiers": contain_tasks.isolate_tiers,
    "compromise_keys": contain_tasks.compromise_keys,
    "rekey_keys": contain_tasks.rekey_keys,
    "recover_artifacts": contain_tasks.recover_artifacts,
}


def _rekey_served() -> bool:
    """Whether a runner serves the rekey deployment (it then runs the response)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(REKEY_DEPLOYMENT)
        except ObjectNotFound:
            return False
    return found.status == DeploymentStatus.READY


def _rekey_by_deployment(plan: core.ContainmentPlan) -> core.StepResult:
    """Run the rekey deployment once per key and wait; a run that fails fails the step."""
    from datetime import UTC, datetime

    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    states = []
    for ref in plan.keys:
        run = run_deployment(REKEY_DEPLOYMENT, parameters={"key": ref}, timeout=REKEY_TIMEOUT_S)
        # Prefect's async_dispatch types the call as FlowRun | Coroutine; a sync flow gets the run.
        if not isinstance(run, FlowRun):
            raise TypeError("run_deployment returned a coroutine in a sync flow")
        states.append((ref, run.state.type.value if run.state else "UNKNOWN", run.id))
    failed = [f"{ref} ({state})" for ref, state, _ in states if state != "COMPLETED"]
    detail = "; ".join(f"{ref}: rekey flow run {run_id} {state}" for ref, state, run_id in states)
    return core.StepResult(
        "rekey_keys",
        "failed" if failed else "done",
        detail,
        (),
        datetime.now(UTC).isoformat(timespec="microseconds"),
    )


@flow(
    name="contain",
    description="Contain an incident: revoke, quarantine or isolate, compromise, bundle, report.",
    flow_run_name=run_name("contain-{trigger}-{time}", trigger="manual"),
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def contain(
    trigger: str = field("Trigger", "What raised the alarm (an automation fills it in)", ""),
    resource: str = field("Resource", "The resource the trigger names, as a hint", ""),
    event: str = field("Event", "The event the trigger names, as a hint", ""),
    incident: dict[str, Any] = field(
        "Incident",
        "A signed incident document to contain (leave empty: find them)",
        default={},
    ),
    out: str = field(
        "Bundle directory", "Where to write the incident bundle (leave empty: the vault home)", ""
    ),
    detect_first: bool = field("Detect first", "Run the detection rules before containing", True),
) -> dict[str, Any]:
    """Contain the incidents the signed log supports for the hint, or the given one.

    ``detect_first=False``: the caller (the detect flow) has just run the detector."""
    hint = {"trigger": trigger[:200], "resource": resource[:300], "event": event[:200]}
    if incident:
        plans = [core.ContainmentPlan.from_incident(incident)]
    else:
        plans = contain_tasks.find_incidents(hint, detect_first)
    if not plans:
        contain_tasks.publish_report(
            "none",
            "# No incident to contain\n\n"
            f"Trigger `{hint['trigger'] or '-'}` on `{hint['resource'] or '-'}`: the signed "
            "log supports no open incident for it (a Prefect event is a hint, not evidence).\n",
        )
        return {"hint": hint, "incidents": []}
    results = []
    for plan in plans:
        steps: list[core.StepResult] = []
        for name in core.steps_for(plan):
            if name == "rekey_keys" and plan.keys and _rekey_served():
                step = _rekey_by_deployment(plan)
            else:
                step = _STEP_TASKS[name](plan)
            steps.append(step)
            if step.status == "failed":
                break
        result = contain_tasks.finish(plan, steps, out or None)
        contain_tasks.publish_report(plan.incident_id, result.report)
        results.append(result)
    for result in results:
        core.raise_if_failed(result)
    return {"hint": hint, "incidents": [r.to_dict() for r in results]}
