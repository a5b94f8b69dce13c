"""The rotate-keys flow: scheduled rotation of due keys, never rewriting ciphertext.

The steps of :func:`weightvault.lifecycle.rotation.rotate` (what ``weightvault
keys rotate`` runs), each as a task: find due keys -> per tier: start (or
resume) rotation -> rewrap batches in parallel -> verify a sample -> retire
drained versions; then the signing key (when due) and the trust root; escrow
repair; audit event. The flow adds only the task runs and a markdown report;
its summary is the core's :class:`~weightvault.lifecycle.rotation.RotationReport`.

`weightvault up` serves it on the cron schedule of ``config/rotation.toml``
(default daily at 03:00 UTC). A run killed anywhere is finished by the next
one: the new KEK version is created once and reused, envelopes already on it
are skipped, and old versions are retired only once nothing references them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows._operator import field, refusals_fail, run_name
from tasks import key_tasks
from weightvault.config import find_config_dir
from weightvault.lifecycle import rotation
from weightvault.lifecycle.rotation import RotationSchedule, load_schedule


def schedule(config_dir: Path | None = None) -> RotationSchedule:
    """The rotation schedule from ``config/rotation.toml``."""
    return load_schedule(config_dir or find_config_dir(Path(__file__).resolve().parent))


@flow(
    name="rotate-keys",
    description="Rotate keys whose lifetime is up: rewrap envelopes, retire old versions.",
    # Prefect's typing is wrong here: flow() wants TaskRunner[PrefectFuture[Any]] and
    # TaskRunner is invariant in its future type, so its own ThreadPoolTaskRunner fails.
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    flow_run_name=run_name("rotate-keys-{time}"),
    persist_result=False,
    result_serializer="json",
    validate_parameters=True,
)
@refusals_fail
def rotate_keys(
    force_tiers: list[Literal["hot", "warm", "cold", "quarantine"]] = field(
        "Force tiers",
        "Rotate these tiers' key-encryption keys even if not due",
        default=[],
    ),
    force_signing: bool = field(
        "Force signing key", "Rotate the signing key even if not due", False
    ),
    batch_size: int = field("Batch size", "Envelopes per batch", 500, ge=1, le=100_000),
    workers: int = field("Workers", "Threads per batch", 8, ge=1, le=64),
    verify_sample: int = field(
        "Verify sample", "Artifacts to verify end to end per tier", 3, ge=0, le=1000
    ),
) -> dict[str, Any]:
    """One rotation run; returns the same summary as ``keys rotate --json``."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    due = key_tasks.find_due(now, tuple(force_tiers), force_signing)
    tiers: list[rotation.TierOutcome] = []
    for tier in rotation.tiers_due(due):
        rot = key_tasks.start_tier(tier)
        plan = key_tasks.plan_batches(rot, batch_size)
        futures = [key_tasks.rewrap.submit(rot, ids, workers) for ids in plan.batches]
        stats = rotation.RewrapStats.sum(f.result() for f in futures)
        retired = key_tasks.retire(rot, workers)
        verified = key_tasks.verify_sample(plan.artifact_ids, verify_sample)
        tiers.append(rotation.TierOutcome(rot, stats, retired, verified))
    replaces = rotation.signing_due(due)
    signing = key_tasks.rotate_signing(replaces) if replaces is not None else None
    root = key_tasks.publish_trust_root()
    escrow = key_tasks.repair_escrow()
    report = rotation.RotationReport(
        now.isoformat(), time.perf_counter() - started, list(due), tiers, signing, root, escrow
    )
    key_tasks.record_run(report.run_record())
    summary = report.to_dict()
    key_tasks.publish_rotation_report(rotation.render_report(summary))
    return summary
