"""`weightvault dr drill`: the rehearsal runs on a scratch vault and never touches live data.

One live vault on the session SeaweedFS server with four artifacts: the
reference model (hot, with its rebuild kit, its datasets in the live DVC
bucket), a tiny deterministic model with its kit promoted to warm, a cold one
and a hot one ingested without a repository. The drill runs through the real
CLI. Its report says how each came back from each loss (hot and warm: rebuilt
from the kit; cold: escrow; no kit: lost, with why), and the live vault's
objects and log are as before but for the drill's own logged reads and run
(``audit verify`` clean).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.durable_store import cli_json
from support.tiers import promote_into, stored_in

from tests.conftest import make_tree
from tests.support.model_repos import reference_copy, tiny_model_repo
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.provenance import capture_provenance
from weightvault.store import DvcRemote, bucket_roles

REPO = Path(__file__).resolve().parents[2]


def _objects(vault: Vault) -> dict[str, set[tuple[str, str | None, str]]]:
    """Every object version of every live bucket: (key, version, etag)."""
    return {
        role: {
            (o.key, o.version_id, o.etag)
            for o in vault.store.list(vault.bucket(role), versions=True)
        }
        for role in bucket_roles()
    }


def _live_remote(settings: Settings) -> DvcRemote:
    """The live DVC bucket, reached by the test with the session server's credential."""
    scheme = "https" if settings.store.secure else "http"
    return DvcRemote(
        f"s3://{settings.store.bucket('dvc')}/",
        f"{scheme}://{settings.store.endpoint}",
        settings.store.access_key,
        settings.store.secret_key,
    )


def _with_kit(vault: Vault, repo: Path, name: str) -> str:
    provenance = capture_provenance(
        repo,
        run_id=f"run-{name}",
        creator="alice",
        lock_file=None,
        parent=None,
        allow_incomplete=False,
    )
    return ingest.put(
        vault, repo / "model", name, provenance=provenance, model_repo=repo
    ).artifact_id


def test_drill_end_to_end_touches_no_live_data(
    vault: Vault,
    vault_settings: Settings,
    model_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uv on PATH, as for any recover (an isolated environment if the lock needs one).
    monkeypatch.setenv("PATH", f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    remote = _live_remote(vault_settings)
    digits = _with_kit(vault, reference_copy(model_repo, tmp_path / "digits", remote), "digits")
    tiny = tiny_model_repo(tmp_path / "tiny", remote, "x,y\n1,2\n3,5\n")
    warm = _with_kit(vault, tiny, "tiny")
    promote_into(vault, warm, "warm")
    cold = stored_in(vault, make_tree(tmp_path / "c", {"w.bin": b"gamma" * 300}), "model-c", "cold")
    bare = stored_in(vault, make_tree(tmp_path / "a", {"w.bin": b"alpha" * 300}), "model-a", "hot")
    ids = (digits, warm, cold, bare)
    digests = {a: vault.resolve(a).content_digest for a in ids}
    before = _objects(vault)

    report = cli_json("dr", "drill", "--sample", "4")

    prefix = vault_settings.store.bucket_prefix
    assert report["scratch_prefix"].startswith(f"{prefix}-drill-")
    rows = {r["artifact_id"]: r for r in report["artifacts"]}
    assert set(rows) == set(ids)
    for artifact_id, row in rows.items():
        assert row["content_digest"] == digests[artifact_id]
        assert row["scratch_id"]
        assert row["scratch_id"] != artifact_id
        # Each copy in its own tier.
        assert row["scratch_tier"] == row["tier"] == vault.resolve(artifact_id).tier, row
        # The catalog lost: rebuilt from the scratch store and log, every artifact verified.
        assert row["catalog_loss"]["how"] == "store", row
        assert row["catalog_loss"]["verify"].startswith("ok: "), row
        assert row["catalog_loss"]["seconds"] > 0

    # Hot and warm with a kit: every version of the model files' ciphertext destroyed, rebuilt from
    # the kit (datasets from the scratch DVC remote), restored and verified.
    for artifact_id in (digits, warm):
        row = rows[artifact_id]
        assert row["kit"] is True
        assert row["tier_loss"]["destroyed"] == "model objects"
        assert row["tier_loss"]["destroyed_objects"] >= 1
        assert row["came_back"] == "rebuild", row["reason"]
        assert row["verify"].startswith("ok: "), row
        assert row["seconds"] > 0
        assert row["reason"] is None
    # Cold: the scratch keystore and master key lost; back from k escrow shares alone.
    row = rows[cold]
    assert row["tier_loss"]["destroyed"] == "keystore, master key and catalog"
    assert row["came_back"] == "escrow", row
    assert "escrow shares" in row["verify"]
    # No kit: reported lost, with why.
    row = rows[bare]
    assert row["kit"] is False
    assert row["came_back"] == "lost"
    assert row["verify"] == "not run"
    assert "not rebuildable" in row["reason"]
    assert "no rebuild kit" in row["reason"]

    summary = report["summary"]
    assert summary["rehearsed"] == 4
    assert summary["catalog_loss_recovered"] == 4
    assert summary["recovered"] == {"rebuild": 2, "escrow": 1}
    assert summary["lost"] == 1
    assert set(summary["seconds_to_recover"]) == {"rebuild", "escrow"}
    assert report["rebuild"]["artifacts"] == 4
    md = report["markdown"]
    assert f"| {digits} (digits) | hot | store |" in md
    assert "| escrow |" in md
    assert "no rebuild kit" in md

    # The scratch vault is gone: no bucket of its prefix is left (its cold bucket kept
    # no retention), nor its home.
    assert report["cleanup"]["left"] == {}
    assert report["cleanup"]["home_removed"] is True
    scratch = report["scratch_prefix"]
    assert not [b.name for b in vault.store.client.list_buckets() if b.name.startswith(scratch)]

    # Live data untouched: every object version of every bucket but the log's as before
    # (the DVC bucket only read).
    after = _objects(vault)
    for role in bucket_roles():
        if role != "audit":
            assert after[role] == before[role], role
    assert before["audit"] <= after["audit"]  # the log only grew

    # The live log records the drill: its run and a read of each sampled artifact.
    kinds = [e.event.kind for a in ids for e in vault.history(a)]
    assert kinds.count("artifact.read") == 4
    log_report, _counts = verify_audit(Vault.open(vault_settings))
    assert log_report.ok, [p.__dict__ for p in log_report.problems]
    runs = vault.catalog.log_search(kind="dr.drill_run")
    assert sorted((r["phase"], r["outcome"]) for r in runs) == [
        ("intent", None),
        ("outcome", "ok"),
    ]
    # The drill leaves the live catalog as it was.
    assert {a.id for a in vault.catalog.list_artifacts()} == set(ids)


def test_the_drill_flow_publishes_its_report_under_prefect(
    vault: Vault, tmp_path: Path, prefect_api: None
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.drill import dr_drill

    artifact_id = stored_in(
        vault, make_tree(tmp_path / "c", {"w.bin": b"gamma" * 200}), "model-c", "hot"
    )
    state = dr_drill(sample=1, return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    assert [r["artifact_id"] for r in report["artifacts"]] == [artifact_id]
    assert report["artifacts"][0]["catalog_loss"]["how"] == "store"
    run_id = state.state_details.flow_run_id

    async def reports() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts()
        return [
            str(a.data) for a in found if a.key == "dr-drill-report" and a.flow_run_id == run_id
        ]

    published = asyncio.run(reports())
    assert len(published) == 1
    assert f"| {artifact_id} (model-c) | hot | store |" in published[0]
    # The drill run is recorded in the live log, and succeeded.
    runs = [r for r in vault.catalog.log_search(kind="dr.drill_run") if r["phase"] == "outcome"]
    assert [r["outcome"] for r in runs] == ["ok"]
