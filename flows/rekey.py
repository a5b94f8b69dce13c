"""The rekey flow: respond to a compromised key version.

The steps of :func:`weightvault.lifecycle.rekey.respond` (what ``weightvault
keys compromise --rekey`` runs), each as a task: resume interrupted
re-encryptions -> mark the key compromised (once) and list what it protects
-> re-encrypt, one task run per artifact, the artifacts whose DEK may have
been exposed (with a Prefect progress artifact) -> rewrap the others under the
tier's fresh KEK version, in parallel batches -> count what is left -> report.
While anything is left on the key the run fails with the core's
:class:`~weightvault.errors.IncompleteError`, as the CLI does.

Run it again after a failure: what is done is no longer on the compromised
version, and a re-encryption that passed its commit point is rolled forward.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from tasks import key_tasks
from weightvault.lifecycle import rekey as core_rekey


class RekeyParams(BaseModel):
    """The compromise form."""

    key: str = Field(description="Compromised key version, KEY_ID@vN (e.g. kek-hot@v3)")
    since: datetime | None = Field(
        default=None,
        description="Start of the exposure window: artifacts accessed since are re-encrypted",
    )
    exposed: list[str] = Field(
        default_factory=list, description="Artifact ids whose DEK may have been exposed"
    )
    all_exposed: bool = Field(
        default=False, description="The envelopes leaked too: re-encrypt every artifact"
    )
    batch_size: int = Field(default=500, ge=1, le=100_000, description="Envelopes per batch")
    workers: int = Field(default=8, ge=1, le=64, description="Threads per rewrap batch")


@flow(
    name="rekey",
    description="Re-encrypt or rewrap everything a compromised key protects.",
    # Prefect's typing is wrong here: flow() wants TaskRunner[PrefectFuture[Any]] and
    # TaskRunner is invariant in its future type, so its own ThreadPoolTaskRunner fails.
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    persist_result=False,
    validate_parameters=True,
)
def rekey(params: RekeyParams) -> dict[str, Any]:
    """One compromise response; returns the same summary as ``keys compromise --rekey``."""
    started = time.perf_counter()
    resumed = key_tasks.resume_journals()
    listing = key_tasks.compromise(
        params.key, params.since, tuple(params.exposed), params.all_exposed
    )
    plan = core_rekey.plan_rekey(listing, params.batch_size)
    progress = create_progress_artifact(
        progress=0.0 if plan.reencrypt else 100.0,
        key="rekey-progress",
        description=f"re-encryption of {len(plan.reencrypt)} artifact(s) after {plan.key}",
    )
    # Prefect's async_dispatch types the call as UUID | Coroutine; a sync flow gets the UUID.
    if not isinstance(progress, UUID):
        raise TypeError("create_progress_artifact returned a coroutine in a sync flow")
    futures = [key_tasks.reencrypt.submit(a) for a in plan.reencrypt]
    outcomes = []
    for n, future in enumerate(futures, start=1):
        outcomes.append(future.result())
        update_progress_artifact(progress, progress=100.0 * n / len(futures))
    batches = [
        key_tasks.rewrap_compromised.submit(plan.key, ids, params.workers)
        for ids in plan.rewrap_batches
    ]
    rewraps = [future.result() for future in batches]
    left = key_tasks.remaining(plan.key)
    report = core_rekey.rekey_report(
        listing, resumed, outcomes, rewraps, left, time.perf_counter() - started
    )
    summary = report.to_dict()
    key_tasks.publish_rekey_report(core_rekey.render_report(summary))
    core_rekey.require_complete(report)
    return summary
