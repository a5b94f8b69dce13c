"""The rekey flow: respond to a compromised key version.

resume interrupted re-encryptions -> mark the key compromised (once) and list
what it protects -> re-encrypt, one task run per artifact, the artifacts
whose DEK may have been exposed (with a Prefect progress artifact) -> rewrap
the others under the tier's fresh KEK version, in parallel batches -> report.

Run it again after a failure: what is done is no longer on the compromised
version, and a re-encryption that passed its commit point is rolled forward.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from tasks import key_tasks


class IncompleteRekeyError(RuntimeError):
    """Some artifacts are still on the compromised key after the run."""


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
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    persist_result=False,
    validate_parameters=True,
)
def rekey(params: RekeyParams) -> dict[str, Any]:
    """One compromise response; the summary carries no key material."""
    started = time.perf_counter()
    resumed = key_tasks.resume_journals()
    listing = key_tasks.compromise(params.key, params.since, params.exposed, params.all_exposed)
    heavy = [p["artifact_id"] for p in listing["protected"] if p["action"] == "re-encrypt"]
    light = [p["artifact_id"] for p in listing["protected"] if p["action"] == "rewrap"]
    progress = create_progress_artifact(
        progress=0.0 if heavy else 100.0,
        key="rekey-progress",
        description=f"re-encryption of {len(heavy)} artifact(s) after {listing['key']}",
    )
    futures = [key_tasks.reencrypt.submit(a) for a in heavy]
    done: list[dict[str, Any]] = []
    for n, future in enumerate(futures, start=1):
        done.append(future.result())
        update_progress_artifact(progress, progress=100.0 * n / len(futures))
    stats = {"rewrapped": 0, "already": 0, "missing": 0, "skipped": 0}
    if light and listing["key"].startswith("kek-"):
        chunks = [light[i : i + params.batch_size] for i in range(0, len(light), params.batch_size)]
        batches = [
            key_tasks.rewrap_compromised.submit(listing["key"], ids, params.workers)
            for ids in chunks
        ]
        for future in batches:
            for name, count in future.result().items():
                stats[name] += count
    left = key_tasks.remaining(listing["key"]) if listing["key"].startswith("kek-") else 0
    summary = {
        **listing,
        "resumed": resumed,
        "reencrypted": [d for d in done if "busy" not in d],
        "busy": [d["artifact_id"] for d in done if "busy" in d],
        "rewrapped": stats,
        "remaining": left,
        "duration_s": round(time.perf_counter() - started, 3),
    }
    key_tasks.publish_rekey_report(summary)
    if left:
        raise IncompleteRekeyError(
            f"{left} envelope(s) are still on {listing['key']}: run the rekey flow again"
        )
    return summary
