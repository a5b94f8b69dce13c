"""`weightvault up --workers N`: the deployments in a process work pool, run by real workers.

Real `prefect server start` and `prefect worker start` processes against the real
store: the deployments are declared for the pool by module path, two workers
(one flow run each at a time) come ONLINE, each of two runs started together is
taken by exactly one worker (by different ones when they ran at the same time), an
ingest run by a worker stores an artifact this process verifies, and `down` stops
the workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flows.deployments import POOL
from flows.services import SERVED, down, up
from tests.support.payloads import weights
from tests.support.services import service_timeout
from tests.support.ui_helpers import _kill_orphans, api, service_logs, wait_for_flow_run
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.processes import ProcessRef, is_running

RUN_TIMEOUT = 300.0


@pytest.fixture
def pool_services(
    vault_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """`weightvault up --workers 2` for this vault; the workers inherit the WEIGHTVAULT_* env."""
    monkeypatch.setenv("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    try:
        yield up(vault_settings, timeout=service_timeout(), workers=2)
    finally:
        down(vault_settings)
        _kill_orphans(vault_settings)


def _start(api_url: str, deployment: str, parameters: dict[str, Any]) -> str:
    found = api(api_url, f"/deployments/name/{deployment}")
    run = api(api_url, f"/deployments/{found['id']}/create_flow_run", {"parameters": parameters})
    return str(run["id"])


def _taken_by(api_url: str) -> dict[str, list[str]]:
    """Flow run id -> the workers that submitted it, from the workers' own events.

    A worker emits ``prefect.worker.submitted-flow-run`` only for a run whose Pending
    transition it won, so a run two workers raced for counts once (their logs would
    both name it).
    """
    found = api(
        api_url,
        "/events/filter",
        {"filter": {"event": {"name": ["prefect.worker.submitted-flow-run"]}}, "limit": 50},
    )
    taken: dict[str, list[str]] = {}
    for event in found["events"]:
        worker = event["resource"]["prefect.resource.name"]
        for related in event["related"]:
            if related.get("prefect.resource.role") == "flow-run":
                run_id = related["prefect.resource.id"].removeprefix("prefect.flow-run.")
                taken.setdefault(run_id, []).append(worker)
    return taken


def _when(run: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(run[field])


def test_workers_run_the_pool_deployments(
    vault_settings: Settings, pool_services: dict[str, Any], tmp_path: Path
) -> None:
    api_url = pool_services["api_url"]
    names = pool_services["worker_names"]
    assert len(set(names)) == 2
    assert pool_services["pool"] == POOL
    pool = api(api_url, f"/work_pools/{POOL}")
    assert pool["type"] == "process"
    online = {
        w["name"]
        for w in api(api_url, f"/work_pools/{POOL}/workers/filter", {})
        if w["status"] == "ONLINE"
    }
    assert set(names) <= online
    for name in SERVED:
        deployment = api(api_url, f"/deployments/name/{name}")
        assert deployment["work_pool_name"] == POOL, name
        # By module path: a worker anywhere imports it from its PYTHONPATH.
        assert deployment["entrypoint"].startswith("flows."), deployment["entrypoint"]
    assert pool_services["runner"] is None  # no serve() process in this mode

    # Two runs at once: each worker runs one at a time, so they go to different workers.
    first = _start(api_url, "detect/detect", {})
    second = _start(api_url, "detect/detect", {})
    runs = []
    for run_id in (first, second):
        run = wait_for_flow_run(api_url, run_id, timeout=RUN_TIMEOUT)
        assert run["state_type"] == "COMPLETED", f"{run['state']}\n{service_logs(vault_settings)}"
        assert run["work_pool_name"] == POOL
        runs.append(run)
    deadline = time.monotonic() + 60
    while True:
        by_run = _taken_by(api_url)
        taken = [by_run.get(r, []) for r in (first, second)]
        if all(taken) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(len(t) == 1 for t in taken), (taken, service_logs(vault_settings))
    assert set(taken[0]) | set(taken[1]) <= set(names), taken
    overlapped = max(_when(r, "start_time") for r in runs) < min(_when(r, "end_time") for r in runs)
    if overlapped:  # a worker with --limit 1 never runs two at once
        assert taken[0] != taken[1], taken
    assert taken[0] != taken[1], taken

    # A worker's ingest stores an artifact that verifies from here.
    src = tmp_path / "weights.bin"
    src.write_bytes(weights(256 * 1024))
    run_id = _start(
        api_url,
        "ingest/ingest",
        {"path": str(src), "name": "pooled", "allow_incomplete": True},
    )
    run = wait_for_flow_run(api_url, run_id, timeout=RUN_TIMEOUT)
    assert run["state_type"] == "COMPLETED", f"{run['state']}\n{service_logs(vault_settings)}"
    vault = Vault.open(vault_settings)
    [row] = [r for r in vault.catalog.list_artifacts() if r.name == "pooled"]
    vault.verify(row.id)

    workers = [ProcessRef.from_dict(w) for w in pool_services["workers"]]
    assert all(is_running(w) for w in workers)
    stopped = down(vault_settings)
    assert {f"worker {n}" for n in names} <= set(stopped)
    assert not any(is_running(w) for w in workers)
