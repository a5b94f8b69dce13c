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
from pydantic import BaseModel, Field

from tasks import witness_tasks
from weightvault.lifecycle.witness import render_report

DEFAULT_CRON = "*/10 * * * *"
"""Every ten minutes: how often the served deployment runs a round."""


class WitnessParams(BaseModel):
    """Where the witness and the vault's settings live; the Prefect UI renders this."""

    home: str | None = Field(
        default=None, description="Witness home (default: WEIGHTVAULT_WITNESS_HOME)"
    )
    vault_home: str | None = Field(
        default=None, description="Vault home whose settings name the store (default: as usual)"
    )


@flow(
    name="witness",
    description="Cosign the vault's transparency log if it extends what the witness saw.",
    persist_result=False,
    validate_parameters=True,
)
def witness(params: WitnessParams | None = None) -> dict[str, Any]:
    """One witness round; returns the same summary as ``witness run --json``."""
    params = params or WitnessParams()
    home = witness_tasks.resolve_home(params.home)
    result = witness_tasks.cosign(home, params.vault_home)
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
