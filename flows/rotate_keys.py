"""The rotate-keys flow: scheduled rotation of due keys, never rewriting ciphertext.

find due keys -> per tier: start (or resume) rotation -> rewrap batches in
parallel -> verify a sample -> retire drained versions; then the signing key
(when due) and the trust root; escrow repair; audit event; markdown report.

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
from pydantic import BaseModel, Field

from tasks import key_tasks
from weightvault.config import find_config_dir
from weightvault.lifecycle.rotation import RotationSchedule, load_schedule


def schedule(config_dir: Path | None = None) -> RotationSchedule:
    """The rotation schedule from ``config/rotation.toml``."""
    return load_schedule(config_dir or find_config_dir(Path(__file__).resolve().parent))


class RotationParams(BaseModel):
    """Rotation run settings; the Prefect UI renders this as a form."""

    force_tiers: list[Literal["hot", "warm", "cold", "quarantine"]] = Field(
        default_factory=list, description="Rotate these tiers' KEKs even if not due"
    )
    force_signing: bool = Field(default=False, description="Rotate the signing key even if not due")
    batch_size: int = Field(default=500, ge=1, le=100_000, description="Envelopes per batch")
    workers: int = Field(default=8, ge=1, le=64, description="Threads per batch")
    verify_sample: int = Field(
        default=3, ge=0, le=1000, description="Artifacts to verify end to end per tier"
    )


@flow(
    name="rotate-keys",
    description="Rotate keys whose lifetime is up: rewrap envelopes, retire old versions.",
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    persist_result=False,
    validate_parameters=True,
)
def rotate_keys(params: RotationParams | None = None) -> dict[str, Any]:
    """One rotation run; returns a summary without any key material."""
    params = params or RotationParams()
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat()
    due = key_tasks.find_due(list(params.force_tiers), params.force_signing)
    tiers: list[dict[str, Any]] = []
    for item in due:
        if item["purpose"] != "kek" or not item["tier"]:
            continue
        rot = key_tasks.start_tier(item["tier"])
        chunks = key_tasks.plan_batches(rot, params.batch_size)
        futures = [key_tasks.rewrap.submit(rot, ids, params.workers) for ids in chunks]
        stats = {"rewrapped": 0, "already": 0, "missing": 0, "skipped": 0}
        for future in futures:
            for name, count in future.result().items():
                stats[name] += count
        verified = key_tasks.verify_sample([a for ids in chunks for a in ids], params.verify_sample)
        retired = key_tasks.retire(rot, params.workers)
        tiers.append(
            {
                **rot,
                "target": f"{rot['kek_id']}@v{rot['target_version']}",
                **stats,
                **retired,
                "verified": verified,
            }
        )
    signing = None
    if any(item["purpose"] == "signing" for item in due):
        signing = key_tasks.rotate_signing()
    root = key_tasks.publish_trust_root()
    escrow = key_tasks.ensure_escrow()
    summary: dict[str, Any] = {
        "started_at": started_at,
        "duration_s": round(time.perf_counter() - started, 3),
        "due": due,
        "tiers": tiers,
        "signing": signing,
        "trust_root": root,
        "escrow": escrow,
        "rewrapped": sum(t["rewrapped"] for t in tiers),
    }
    key_tasks.record_run(summary)
    key_tasks.publish_rotation_report(summary)
    return summary
