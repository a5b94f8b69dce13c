"""The served deployments. `weightvault up` runs this module in the background."""

from __future__ import annotations

import os
from collections.abc import Coroutine
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from flows.contain import contain
from flows.detect import detect
from flows.drill import DEFAULT_CRON as DRILL_CRON
from flows.drill import dr_drill
from flows.ingest import ingest
from flows.promote import promote
from flows.recover import recover
from flows.rekey import rekey
from flows.rotate_keys import rotate_keys, schedule
from flows.validate import validate
from flows.witness import DEFAULT_CRON, witness
from weightvault.config import environment, load_settings

#: seconds between the runner's polls for runs to start (an automation's run waits for one)
RUNNER_POLL_SECONDS = 2.0
#: contain runs at a time (the deployment's concurrency limit, ENQUEUE on collision)
CONTAIN_CONCURRENCY = 1


def _built(
    deployment: RunnerDeployment | Coroutine[Any, Any, RunnerDeployment],
) -> RunnerDeployment:
    """``to_deployment``'s result: Prefect's async_dispatch types it as a union with a
    coroutine, which it returns only inside an event loop (never here)."""
    if not isinstance(deployment, RunnerDeployment):
        raise TypeError("to_deployment returned a coroutine outside an event loop")
    return deployment


def deployments() -> list[RunnerDeployment]:
    """Every deployment with its schedule."""
    from prefect.schedules import Cron

    rotation = schedule()  # config/rotation.toml
    backstop = load_settings().automations.backstop_minutes
    built = [
        ingest.to_deployment(
            name="ingest",
            description="Ingest a model artifact with provenance; fill the form and run.",
            tags=["weightvault"],
        ),
        validate.to_deployment(
            name="validate",
            description="Run format, Great Expectations and provenance checks on an artifact.",
            tags=["weightvault"],
        ),
        promote.to_deployment(
            name="promote",
            description="Promote an artifact hot->warm or warm->cold: fill the form and run.",
            tags=["weightvault"],
        ),
        rotate_keys.to_deployment(
            name="rotate-keys",
            description="Rotate keys whose lifetime is up (schedule: config/rotation.toml).",
            tags=["weightvault", "keys"],
            schedule=Cron(rotation.cron, timezone=rotation.timezone),
            parameters={
                "batch_size": rotation.batch_size,
                "workers": rotation.workers,
                "verify_sample": rotation.verify_sample,
            },
        ),
        recover.to_deployment(
            name="recover",
            description="Rebuild an artifact from its rebuild kit, certify it; --restore.",
            tags=["weightvault"],
        ),
        rekey.to_deployment(
            name="rekey",
            description="Compromise response: re-encrypt exposed artifacts, rewrap the rest.",
            tags=["weightvault", "keys"],
        ),
        contain.to_deployment(
            name="contain",
            description="Contain an incident (the automations run it with their trigger's hint).",
            tags=["weightvault", "containment"],
            # Several firings at once queue (AwaitingConcurrencySlot), never race: each run
            # then finds what the one before it contained in the log (docs/containment.md).
            concurrency_limit=CONTAIN_CONCURRENCY,
        ),
        dr_drill.to_deployment(
            name="dr-drill",
            description="Weekly DR drill on a scratch vault: copy, destroy, restore, report.",
            tags=["weightvault", "dr"],
            schedule=Cron(DRILL_CRON, timezone="UTC"),
        ),
        detect.to_deployment(
            name="detect",
            description="Detection over the signed log's new entries, then containment "
            "of what is open (the backstop behind the automations).",
            tags=["weightvault", "incidents"],
            schedule=Cron(f"*/{backstop} * * * *", timezone="UTC"),
        ),
    ]
    witness_home = environment().witness_home
    if witness_home is not None:  # this host runs a witness (docs/witness.md)
        built.append(
            witness.to_deployment(
                name="witness",
                description="Cosign the transparency log after checking its consistency.",
                tags=["weightvault", "witness"],
                schedule=Cron(DEFAULT_CRON, timezone="UTC"),
                parameters={"home": str(witness_home)},
            )
        )
    return [_built(d) for d in built]


def poll_seconds() -> float:
    """How often the runner asks for runs to start: PREFECT_RUNNER_POLL_FREQUENCY when set,
    else :data:`RUNNER_POLL_SECONDS` (Prefect's 10 s default would be most of the time an
    automation takes to contain: bench/RESULTS.md "Containment")."""
    raw = os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", "")
    try:
        return float(raw) if raw else RUNNER_POLL_SECONDS
    except ValueError:
        return RUNNER_POLL_SECONDS


def main() -> None:
    """Serve every deployment until interrupted."""
    from prefect import serve

    serve(*deployments(), print_starting_message=True, query_seconds=poll_seconds())


if __name__ == "__main__":
    main()
