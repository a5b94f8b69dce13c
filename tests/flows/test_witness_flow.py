"""The witness flow under real Prefect, against the real store, and its served deployment."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from prefect.client.orchestration import get_client

from flows.witness import DEFAULT_CRON, witness
from tests.support.tlog_writers import ORIGIN, log_keys, open_log
from tests.support.witness_logs import entries_of, fill, new_bucket, rewrite_log, server_args
from weightvault.errors import LogForkError
from weightvault.records import Witness, read_witnessed
from weightvault.store import EmbeddedStore


async def _reports(flow_run_id: object) -> list[str]:
    async with get_client() as client:
        found = await client.read_artifacts()
    return [
        str(a.data) for a in found if a.key == "witness-report" and a.flow_run_id == flow_run_id
    ]


@pytest.fixture
def witnessed(
    s3_server: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], str, tuple[bytes, bytes], Witness]:
    """A log in a fresh vault's audit bucket and a witness of it; the env names that store."""
    store_args = server_args(s3_server)
    prefix = f"f{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "vault-home"))
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", store_args["endpoint"])
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", store_args["access_key"])
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", store_args["secret_key"])
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", prefix)
    bucket = new_bucket(store_args, f"{prefix}-audit")
    seeds = os.urandom(32), os.urandom(32)
    signers, _ = log_keys(*seeds)
    w = Witness.create(tmp_path / "witness", "witness.test/flow")
    w.add_log(ORIGIN, [s.vkey for s in signers])  # type: ignore[attr-defined]
    return store_args, bucket, seeds, w


def test_the_witness_flow_runs_one_round(
    witnessed: tuple[dict[str, Any], str, tuple[bytes, bytes], Witness], prefect_api: None
) -> None:
    store_args, bucket, seeds, w = witnessed
    log = open_log(store_args, bucket, seeds)
    fill(log, entries_of("flow", 9))
    state = witness(home=str(w.home), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert (summary["old_size"], summary["size"]) == (0, 9)
    assert summary["published"] == "log/witness/witness.test/flow"
    assert read_witnessed(log, w.verifier()).checkpoint.size == 9
    reports = anyio.run(_reports, state.state_details.flow_run_id)
    assert reports
    assert "cosigned size 9" in reports[0]
    # A forked log fails the run (never retried) and the witness keeps its state.
    rewrite_log(store_args, bucket, seeds, entries_of("forged", 9))
    state = witness(home=str(w.home), return_state=True)
    assert state.is_failed()
    with pytest.raises(LogForkError):
        state.result()
    latest = w.latest(ORIGIN)
    assert latest is not None
    assert latest.size == 9
    assert len(w.forks()) == 1


def test_a_host_with_a_witness_serves_its_scheduled_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.deployments import deployments

    monkeypatch.delenv("WEIGHTVAULT_WITNESS_HOME", raising=False)
    assert "witness" not in {d.name for d in deployments()}
    monkeypatch.setenv("WEIGHTVAULT_WITNESS_HOME", str(tmp_path / "witness"))
    served = {d.name: d for d in deployments()}
    deployment = served["witness"]
    assert [s.schedule.cron for s in deployment.schedules] == [DEFAULT_CRON]
    assert deployment.parameters["home"] == str(tmp_path / "witness")
