"""The recover flow: rebuild an artifact from its rebuild kit, certify it, restore it.

The steps of :mod:`weightvault.lifecycle.recover` (``weightvault recover ID``),
each a task: plan -> workspace -> unpack kit -> source -> environment ->
datasets -> dvc repro -> compare -> certify -> (restore) -> finish, the
workspace removed whatever happens. The deployment's form is the flow's parameters.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import flow

from flows._operator import field, refusals_fail
from tasks import recover_tasks


@flow(
    name="recover",
    description="Rebuild an artifact from its kit, compare bit for bit, certify, restore.",
    flow_run_name="recover-{artifact_id}",
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def recover(
    artifact_id: str = field("Artifact", "The artifact to rebuild (id or a unique prefix of it)"),
    restore: bool = field(
        "Restore",
        "After a bit-identical rebuild, put lost files back (fresh data key, new objects)",
        False,
    ),
    environment: Literal["auto", "current", "isolated"] = field(
        "Environment",
        "auto: this interpreter when it has every pin of the lock file, else a fresh venv",
        "auto",
    ),
) -> dict[str, Any]:
    """One recovery; returns the same summary as ``weightvault recover --json``."""
    from weightvault.lifecycle.recover import outcome_details

    p = recover_tasks.plan(artifact_id, restore)
    ws = recover_tasks.workspace()
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}
    try:
        t = time.monotonic()
        kit = recover_tasks.unpack_kit(p, ws)
        src, origin = recover_tasks.source(ws, kit)
        timings["source"] = time.monotonic() - t
        env = recover_tasks.environment(p, ws, src, environment)
        timings["environment"] = env.seconds
        t = time.monotonic()
        checked = recover_tasks.datasets(p, src)
        timings["datasets"] = time.monotonic() - t
        t = time.monotonic()
        stages = recover_tasks.reproduce(p, src, env)
        timings["reproduce"] = time.monotonic() - t
        t = time.monotonic()
        comparison = recover_tasks.compare(p, ws, src, kit)
        timings["compare"] = time.monotonic() - t
        details.update(outcome_details(origin, env, comparison))
        ref = recover_tasks.certify(p, kit, origin, env, checked, stages, comparison, timings)
        restored = recover_tasks.restore(p, ws, src, kit, comparison) if p.restore else 0
        details["restored"] = restored
    except BaseException as exc:
        recover_tasks.finish(p, details, exc)
        raise
    finally:
        recover_tasks.cleanup(ws)
    recover_tasks.finish(p, details)
    return {
        "artifact_id": p.artifact_id,
        "content_digest": p.content_digest,
        "matched": True,
        "restored": bool(restored),
        "certificate": ref.to_dict(),
        "source": origin,
        "environment": env.mode,
        "datasets": list(checked),
        "stages": list(stages),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
