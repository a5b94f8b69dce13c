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
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows._operator import field, refusals_fail, run_name
from tasks import key_tasks
from weightvault.errors import InvalidInputError
from weightvault.lifecycle import rekey as core_rekey


def _since(text: str) -> datetime | None:
    """The exposure window's start from the form (empty: none); InvalidInputError if bad."""
    if not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"exposed since: not an ISO 8601 time: {text[:60]!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@flow(
    name="rekey",
    description="Re-encrypt or rewrap everything a compromised key protects.",
    # Prefect's typing is wrong here: flow() wants TaskRunner[PrefectFuture[Any]] and
    # TaskRunner is invariant in its future type, so its own ThreadPoolTaskRunner fails.
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    flow_run_name=run_name("rekey-{key}"),
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def rekey(
    key: str = field("Key", "Compromised key version, KEY_ID@vN (e.g. kek-hot@v3)"),
    since: str = field(
        "Exposed since",
        "Start of the exposure window, an ISO 8601 time (e.g. 2026-01-31T12:00Z): artifacts "
        "read since then are re-encrypted; leave empty for none",
        "",
    ),
    exposed: list[str] = field(
        "Exposed artifacts", "Artifact ids whose data key may have leaked", default=[]
    ),
    all_exposed: bool = field(
        "Everything exposed", "The envelopes leaked too: re-encrypt every artifact", False
    ),
    batch_size: int = field("Batch size", "Envelopes per batch", 500, ge=1, le=100_000),
    workers: int = field("Workers", "Threads per rewrap batch", 8, ge=1, le=64),
) -> dict[str, Any]:
    """One compromise response; returns the same summary as ``keys compromise --rekey``."""
    started = time.perf_counter()
    resumed = key_tasks.resume_journals()
    window = _since(since)
    listing = key_tasks.compromise(key, window, tuple(exposed), all_exposed)
    plan = core_rekey.plan_rekey(listing, batch_size)
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
        key_tasks.rewrap_compromised.submit(plan.key, ids, workers) for ids in plan.rewrap_batches
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
