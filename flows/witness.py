"""The witness flow: one round of a witness over the vault's transparency log.

The steps of :mod:`weightvault.lifecycle.witness` (what ``weightvault witness
run`` does), each as a task: resolve the witness home -> cosign the store's
checkpoint (signatures and consistency checked, the cosigned note published at
``log/witness/<name>``) -> a markdown report. A forked or rolled-back log fails
the run with LogForkError and is never cosigned.

`weightvault up` serves it on a schedule when ``WEIGHTVAULT_WITNESS_HOME`` is
set on that host (see :func:`flows.deployments.deployments`); a witness on
another host serves it alone with ``python -m flows.witness``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._operator import field, refusals_fail, run_name
from tasks import witness_tasks
from weightvault.lifecycle.witness import render_report

DEFAULT_CRON = "*/10 * * * *"
"""Every ten minutes: how often the served deployment runs a round."""


@flow(
    name="witness",
    description="Cosign the vault's transparency log if it extends what the witness saw.",
    flow_run_name=run_name("witness-{time}"),
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def witness(
    home: str = field(
        "Witness home", "The witness's home (leave empty: WEIGHTVAULT_WITNESS_HOME)", ""
    ),
    vault_home: str = field(
        "Vault home", "Vault home whose settings name the store (leave empty: as usual)", ""
    ),
) -> dict[str, Any]:
    """One witness round; returns the same summary as ``witness run --json``."""
    resolved = witness_tasks.resolve_home(home or None)
    result = witness_tasks.cosign(resolved, vault_home or None)
    witness_tasks.publish_report(render_report(result))
    return result.to_dict()


def main() -> None:
    """Serve the witness deployment alone (a witness host), every ten minutes."""
    from prefect.schedules import Cron

    witness.serve(
        name="witness",
        schedule=Cron(DEFAULT_CRON, timezone="UTC"),
        tags=["weightvault", "witness"],
    )


if __name__ == "__main__":
    main()
