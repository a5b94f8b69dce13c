"""The deployments, served or deployed to a work pool.

`weightvault up` runs ``python -m flows.deployments`` in the background, which serves
every deployment from one process (``serve()``, for one machine); `weightvault up
--workers N` runs ``python -m flows.deployments --pool weightvault`` once instead,
which declares the same deployments for the process work pool ``weightvault``
(creating it if needed) and exits, and then starts N ``prefect worker start``
processes that run them. A worker on another host needs only this checkout on its
``PYTHONPATH`` and the vault's settings (docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Coroutine
from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.types.entrypoint import EntrypointType

from flows.adopt import adopt
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
#: the process work pool `weightvault up --workers N` deploys to and starts workers for
POOL = "weightvault"


def _built(
    deployment: RunnerDeployment | Coroutine[Any, Any, RunnerDeployment],
) -> RunnerDeployment:
    """``to_deployment``'s result: Prefect's async_dispatch types it as a union with a
    coroutine, which it returns only inside an event loop (never here)."""
    if not isinstance(deployment, RunnerDeployment):
        raise TypeError("to_deployment returned a coroutine outside an event loop")
    return deployment


def deployments(*, for_pool: bool = False) -> list[RunnerDeployment]:
    """Every deployment with its schedule.

    ``for_pool`` names each flow by module path (``flows.promote.promote``) rather
    than by file, so a worker anywhere imports it from its own ``PYTHONPATH``.
    """
    from prefect.schedules import Cron

    entry = EntrypointType.MODULE_PATH if for_pool else EntrypointType.FILE_PATH

    rotation = schedule()  # config/rotation.toml
    backstop = load_settings().automations.backstop_minutes
    built = [
        ingest.to_deployment(
            entrypoint_type=entry,
            name="ingest",
            description="Ingest a model artifact with provenance; fill the form and run.",
            tags=["weightvault"],
        ),
        adopt.to_deployment(
            entrypoint_type=entry,
            name="adopt",
            description="Inventory existing model artifacts (dry run), then adopt them.",
            tags=["weightvault"],
        ),
        validate.to_deployment(
            entrypoint_type=entry,
            name="validate",
            description="Run format, Great Expectations and provenance checks on an artifact.",
            tags=["weightvault"],
        ),
        promote.to_deployment(
            entrypoint_type=entry,
            name="promote",
            description="Promote an artifact hot->warm or warm->cold: fill the form and run.",
            tags=["weightvault"],
        ),
        rotate_keys.to_deployment(
            entrypoint_type=entry,
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
            entrypoint_type=entry,
            name="recover",
            description="Rebuild an artifact from its rebuild kit, certify it; --restore.",
            tags=["weightvault"],
        ),
        rekey.to_deployment(
            entrypoint_type=entry,
            name="rekey",
            description="Compromise response: re-encrypt exposed artifacts, rewrap the rest.",
            tags=["weightvault", "keys"],
        ),
        contain.to_deployment(
            entrypoint_type=entry,
            name="contain",
            description="Contain an incident (the automations run it with their trigger's hint).",
            tags=["weightvault", "containment"],
            # Several firings at once queue (AwaitingConcurrencySlot), never race: each run
            # then finds what the one before it contained in the log (docs/containment.md).
            concurrency_limit=CONTAIN_CONCURRENCY,
        ),
        dr_drill.to_deployment(
            entrypoint_type=entry,
            name="dr-drill",
            description="Weekly DR drill on a scratch vault: copy, destroy, restore, report.",
            tags=["weightvault", "dr"],
            schedule=Cron(DRILL_CRON, timezone="UTC"),
        ),
        detect.to_deployment(
            entrypoint_type=entry,
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
                entrypoint_type=entry,
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


def ensure_pool(pool: str = POOL) -> None:
    """Create the process work pool ``pool`` on the current Prefect API unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.workers.process import ProcessWorker

    async def create() -> None:
        async with get_client() as client:
            with contextlib.suppress(ObjectNotFound):
                await client.read_work_pool(pool)
                return
            request = WorkPoolCreate(
                name=pool,
                type="process",
                description="weightvault: every lifecycle flow, run by `prefect worker start`.",
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
            with contextlib.suppress(ObjectAlreadyExists):  # another `up` created it first
                await client.create_work_pool(request)

    run_coro_as_sync(create())


def deploy_to_pool(pool: str = POOL) -> list[str]:
    """Declare every deployment for the process work pool ``pool``; their ids."""
    from prefect import deploy

    ensure_pool(pool)
    ids = deploy(  # a list, not a coroutine, outside an event loop
        *deployments(for_pool=True),
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    if not isinstance(ids, list):
        raise TypeError("deploy returned a coroutine outside an event loop")
    return [str(i) for i in ids]


def main(argv: list[str] | None = None) -> None:
    """Serve every deployment until interrupted, or (``--pool NAME``) deploy them to a pool."""
    parser = argparse.ArgumentParser(prog="python -m flows.deployments")
    parser.add_argument("--pool", help="deploy to this process work pool and exit")
    args = parser.parse_args(argv)
    if args.pool:
        ids = deploy_to_pool(args.pool)
        print(f"deployed {len(ids)} deployments to the work pool {args.pool!r}")
        return
    from prefect import serve

    serve(*deployments(), print_starting_message=True, query_seconds=poll_seconds())


if __name__ == "__main__":
    main()
