"""The Prefect automations `weightvault up` installs, declared in code beside the deployments.

Each is an event trigger on the events the vault emits for its logged outcomes (ok outcome
of kind K -> ``weightvault.K``; refusals -> ``weightvault.<domain>.denied``; integrity
failures -> ``weightvault.<domain>.integrity_failed``; grant receipts ->
``weightvault.grant.used``; the primary resource ``weightvault.artifact.<id>``), and each
runs the served ``contain/contain`` deployment with parameters naming the trigger and the
resource. Those parameters are hints only: the contain flow decides from the signed log
(``docs/containment.md``).

Thresholds come from the ``[automations]`` table of ``weightvault.toml``.
:func:`install_automations` creates or updates them by name (idempotent); `weightvault
down` leaves them in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from prefect.automations import Automation, EventTrigger, Posture, RunDeployment

from weightvault.config import Settings
from weightvault.gates import authz_table

CONTAIN_DEPLOYMENT = "contain/contain"
PREFIX = "weightvault-"
TAGS = ["weightvault", "containment"]


def _action(deployment_id: Any, trigger: str) -> RunDeployment:
    return RunDeployment(
        source="selected",
        deployment_id=deployment_id,
        parameters={
            "trigger": trigger,
            "resource": "{{ event.resource.id }}",
            "event": "{{ event.event }}",
        },
        job_variables=None,
    )


def _domains(settings: Settings) -> list[str]:
    """The domains of the logged operation kinds (``artifact``, ``grant``, ``key``, ...)."""
    return sorted({kind.split(".", 1)[0] for kind in authz_table(settings.policy_dir)})


def declared(settings: Settings, deployment_id: Any) -> list[Automation]:
    """Every automation, as it should be installed, running ``deployment_id`` (contain)."""
    a = settings.automations
    artifacts: dict[str, str | list[str]] = {"prefect.resource.id": "weightvault.artifact.*"}
    specs: list[tuple[str, str, EventTrigger]] = [
        (
            "read-spike",
            f"More than {a.read_spike_threshold} reads of one artifact within "
            f"{a.read_spike_within_seconds} s",
            EventTrigger(
                expect={"weightvault.artifact.read"},
                match=artifacts,
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=a.read_spike_threshold,
                within=timedelta(seconds=a.read_spike_within_seconds),
            ),
        ),
        (
            "integrity-failed",
            "Any integrity failure on an artifact (a tampered object, a forged entry)",
            EventTrigger(
                expect={"weightvault.artifact.integrity_failed"},
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=1,
            ),
        ),
        (
            "grant-used-after-revoke",
            "A grant receipt for an artifact after one of its grants was revoked",
            EventTrigger(
                after={"weightvault.grant.revoked"},
                expect={"weightvault.grant.used"},
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(days=7),
            ),
        ),
        (
            "grant-denied",
            "Any refused grant operation",
            EventTrigger(
                expect={"weightvault.grant.denied"},
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=1,
            ),
        ),
        (
            "denied-burst",
            f"More than {a.denied_threshold} refusals within {a.denied_within_seconds} s",
            EventTrigger(
                expect={f"weightvault.{d}.denied" for d in _domains(settings)},
                posture=Posture.Reactive,
                threshold=a.denied_threshold,
                within=timedelta(seconds=a.denied_within_seconds),
            ),
        ),
    ]
    return [
        Automation(
            name=f"{PREFIX}{name}",
            description=f"{description}: run the contain playbook (hint: {name})",
            enabled=a.enabled,
            tags=TAGS,
            trigger=trigger,
            actions=[_action(deployment_id, name)],
        )
        for name, description, trigger in specs
    ]


def install_automations(settings: Settings) -> list[str]:
    """Create or update every automation by name against the API the environment names;
    returns their names. The contain deployment must be registered already."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(CONTAIN_DEPLOYMENT)
        names = []
        for wanted in declared(settings, deployment.id):
            found = client.read_automations_by_name(wanted.name)
            core = _core(wanted)
            if found:
                client.update_automation(found[0].id, core)
                for extra in found[1:]:
                    client.delete_automation(extra.id)
            else:
                client.create_automation(core)
            names.append(wanted.name)
    return names


def _core(automation: Automation) -> Any:
    from prefect.events.schemas.automations import AutomationCore

    return AutomationCore(**automation.model_dump(exclude={"id", "owner_resource"}))


def installed_names(found: Iterable[Any]) -> list[str]:
    """The names of the weightvault automations among ``found`` (API objects or dicts)."""
    names = [f["name"] if isinstance(f, dict) else f.name for f in found]
    return sorted(n for n in names if n.startswith(PREFIX))
