"""The rotate-keys and rekey flows under real Prefect, against the real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.utilities.callables import parameter_schema

from flows.rekey import rekey
from flows.rotate_keys import rotate_keys
from tests.conftest import REPO, make_tree
from tests.support.artifacts import envelope_versions, put_many, stored_objects
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import ConfigError, KeyStateError
from weightvault.keys import KeyState
from weightvault.lifecycle import rotation
from weightvault.lifecycle.escrow import escrow_decrypt, split_escrow_key
from weightvault.lifecycle.rotation import load_schedule, rotating_keys

CLI = [sys.executable, "-m", "weightvault.cli"]


@pytest.fixture
def flow_vault(vault_settings: Settings, prefect_api: None) -> Vault:
    return Vault.open(vault_settings)


async def artifact_data(key: str, flow_run_id: object) -> list[str]:
    """The data of the artifacts under ``key`` that one flow run published.

    The session's Prefect server holds every earlier test's artifacts too (the parity
    tests publish rotation reports), in no set order.
    """
    async with get_client() as client:
        found = await client.read_artifacts()
    return [str(a.data) for a in found if a.key == key and a.flow_run_id == flow_run_id]


def test_rotation_flow_end_to_end(flow_vault: Vault, tmp_path: Path) -> None:
    vault = flow_vault
    ids = put_many(vault, tmp_path, 12)
    before = stored_objects(vault, "hot", ids)
    state = rotate_keys(
        force_tiers=["hot"],
        force_signing=True,
        batch_size=5,
        workers=4,
        return_state=True,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["rewrapped"] == 12
    assert summary["signing"] == "vault-signing@v2"
    (hot,) = summary["tiers"]
    assert hot["target"] == "kek-hot@v2"
    assert hot["retired"] == ["kek-hot@v1"]
    assert len(hot["verified"]) == 3
    assert envelope_versions(vault, ids) == {2}
    assert stored_objects(vault, "hot", ids) == before
    for artifact_id in ids:
        vault.verify(artifact_id)
    text = json.dumps(summary)
    for rec in rotating_keys(vault).records():
        assert rec.material.hex() not in text
    import anyio

    reports = anyio.run(artifact_data, "rotation-report", state.state_details.flow_run_id)
    assert reports
    assert "kek-hot@v2" in reports[0]
    assert "rewrapped" in reports[0]


def test_rotation_flow_failed_mid_way_converges_on_the_next_run(
    flow_vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = flow_vault
    ids = put_many(vault, tmp_path, 9)
    real = rotation.rewrap_batch
    calls: list[int] = []

    def flaky(*args: object, **kwargs: object) -> rotation.RewrapStats:
        calls.append(1)
        if len(calls) == 2:
            raise KeyStateError("simulated crash in the middle of a rotation")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rotation, "rewrap_batch", flaky)
    state = rotate_keys(force_tiers=["hot"], batch_size=3, return_state=True)
    assert state.is_failed()
    keys = rotating_keys(vault)
    assert [r.state for r in keys.versions("kek-hot")] == [KeyState.DECRYPT_ONLY, KeyState.ACTIVE]
    monkeypatch.setattr(rotation, "rewrap_batch", real)
    state = rotate_keys(return_state=True)  # the next scheduled run
    assert state.is_completed(), state.message
    (hot,) = state.result()["tiers"]
    assert hot["created"] is False
    assert [r.version for r in keys.versions("kek-hot")] == [1, 2]
    assert envelope_versions(vault, ids) == {2}
    assert keys.get("kek-hot", 1).state == KeyState.RETIRED


def test_served_deployment_has_the_configured_schedule() -> None:
    from flows.deployments import deployments

    served = {d.name: d for d in deployments()}
    deployment = served["rotate-keys"]
    configured = load_schedule(REPO / "config")
    assert configured.cron == "0 3 * * *"
    assert [s.schedule.cron for s in deployment.schedules] == [configured.cron]
    assert deployment.parameters["batch_size"] == configured.batch_size
    assert "rekey" in served
    schema = parameter_schema(rekey).model_dump()
    fields = schema["properties"]
    for name in ("key", "since", "exposed", "all_exposed"):
        assert fields[name].get("description")


@pytest.mark.parametrize(
    "body",
    [
        '[rotation]\ncron = "every day"\n',
        '[rotation]\ncron = "0 3 * *"\n',
        "[rotation]\nbatch_size = 0\n",
        "[rotation]\nfrequency = 1\n",
        "[rotation\n",
    ],
)
def test_bad_rotation_config_is_refused(tmp_path: Path, body: str) -> None:
    (tmp_path / "rotation.toml").write_text(body)
    with pytest.raises(ConfigError):
        load_schedule(tmp_path)


def test_missing_rotation_config_means_daily(tmp_path: Path) -> None:
    assert load_schedule(tmp_path).cron == "0 3 * * *"


def test_compromise_end_to_end_with_the_rekey_flow(flow_vault: Vault, tmp_path: Path) -> None:
    vault = flow_vault
    ids = put_many(vault, tmp_path, 5)
    since = datetime.now(UTC)
    vault.get(ids[1], tmp_path / "read-out")  # read inside the exposure window
    deks = {a: vault.dek(a, "hot") for a in ids}
    old_files = {a: [f["object_key"] for f in vault.catalog.files_of(a)] for a in ids}
    # The CLI marks the key and lists what it protects.
    proc = subprocess.run(
        [*CLI, "keys", "compromise", "kek-hot@v1", "--since", since.isoformat(), "--json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert listing["replacement"] == "kek-hot@v2"
    assert {p["artifact_id"] for p in listing["protected"]} == set(ids)
    assert listing["re_encrypt"] == 1
    keys = rotating_keys(vault)
    with pytest.raises(KeyStateError):
        keys.wrap_with(keys.get("kek-hot", 1), "hot", ids[0], os.urandom(32))
    # The response flow: ids[1] (read) and ids[3] (named) are re-encrypted, the rest rewrapped.
    state = rekey(
        key="kek-hot@v1",
        since=since.isoformat(),
        exposed=[ids[3]],
        batch_size=2,
        return_state=True,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert sorted(r["artifact_id"] for r in summary["reencrypted"]) == sorted([ids[1], ids[3]])
    assert summary["rewrapped"]["rewrapped"] == 3
    assert summary["remaining"] == 0
    assert vault.catalog.envelopes_on("kek-hot", 1) == []
    assert envelope_versions(vault, ids) == {2}
    bucket = vault.bucket("hot")
    for artifact_id in ids:
        vault.verify(artifact_id)
        new_files = [f["object_key"] for f in vault.catalog.files_of(artifact_id)]
        if artifact_id in (ids[1], ids[3]):
            assert vault.dek(artifact_id, "hot") != deks[artifact_id]
            assert not set(new_files) & set(old_files[artifact_id])
            for key in old_files[artifact_id]:
                assert not vault.store.exists(bucket, key)
        else:
            assert vault.dek(artifact_id, "hot") == deks[artifact_id]
            assert new_files == old_files[artifact_id]
    assert keys.get("kek-hot", 1).state == KeyState.COMPROMISED
    import anyio

    progress = anyio.run(artifact_data, "rekey-progress", state.state_details.flow_run_id)
    assert progress
    assert float(progress[0]) == 100.0
    reports = anyio.run(artifact_data, "rekey-report", state.state_details.flow_run_id)
    assert "kek-hot@v1" in reports[0]
    text = json.dumps(summary)
    for rec in keys.records():
        assert rec.material.hex() not in text
    # Running the response again converges: nothing left to do.
    again = rekey(key="kek-hot@v1", return_state=True)
    assert again.is_completed(), again.message
    assert again.result()["protected"] == []


def test_cold_artifact_re_encrypted_under_object_lock_stays_escrowed(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    from weightvault.lifecycle.rekey import respond

    split = split_escrow_key(vault.keys)
    src = make_tree(tmp_path / "c", {"w.bin": weights(50_000), "cfg.json": b"{}"})
    artifact_id = stored_in(vault, src, "release", "cold")
    old_files = [f["object_key"] for f in vault.catalog.files_of(artifact_id)]
    report = respond(vault, "kek-cold", all_exposed=True)
    assert [r.artifact_id for r in report.reencrypted] == [artifact_id]
    assert report.remaining == 0
    vault.verify(artifact_id)
    new_files = [f["object_key"] for f in vault.catalog.files_of(artifact_id)]
    assert not set(new_files) & set(old_files)
    # The escrow envelope follows the new DEK: shares alone still decrypt.
    vault_settings.keystore_path.unlink()
    out = tmp_path / "escrowed"
    escrow_decrypt(vault_settings, artifact_id, list(split.shares[:3]), out)
    assert (out / "w.bin").read_bytes() == (src / "w.bin").read_bytes()
