"""`weightvault dr drill`: the rehearsal runs on a scratch vault and never touches live data.

One live vault on the session SeaweedFS server with a hot and a warm artifact;
the drill runs through the real CLI. Its report says how each artifact came back
from each loss, and the live vault's objects and log are as before but for the
drill's own logged reads and run (``audit verify`` clean).
"""

from __future__ import annotations

from pathlib import Path

from support.durable_store import cli_json
from support.tiers import stored_in

from tests.conftest import make_tree
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.lifecycle.audit import verify_audit
from weightvault.store import bucket_roles


def _objects(vault: Vault) -> dict[str, set[tuple[str, str | None, str]]]:
    """Every object version of every live bucket: (key, version, etag)."""
    return {
        role: {
            (o.key, o.version_id, o.etag)
            for o in vault.store.list(vault.bucket(role), versions=True)
        }
        for role in bucket_roles()
    }


def test_drill_end_to_end_touches_no_live_data(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    hot = stored_in(vault, make_tree(tmp_path / "a", {"w.bin": b"alpha" * 300}), "model-a", "hot")
    warm = stored_in(
        vault,
        make_tree(tmp_path / "b", {"w.bin": b"beta" * 400, "c.json": b"{}"}),
        "model-b",
        "warm",
    )
    digests = {a: vault.resolve(a).content_digest for a in (hot, warm)}
    before = _objects(vault)

    report = cli_json("dr", "drill", "--sample", "2")

    prefix = vault_settings.store.bucket_prefix
    assert report["scratch_prefix"].startswith(f"{prefix}-drill-")
    rows = {r["artifact_id"]: r for r in report["artifacts"]}
    assert set(rows) == {hot, warm}
    assert rows[warm]["tier"] == "warm"
    for artifact_id, row in rows.items():
        assert row["content_digest"] == digests[artifact_id]
        assert row["scratch_id"]
        assert row["scratch_id"] != artifact_id
        # The catalog lost: rebuilt from the scratch store and log, every artifact verified.
        assert row["catalog_loss"]["how"] == "store", row
        assert row["catalog_loss"]["seconds"] > 0
        # The tier's ciphertext lost: no rebuild kit, so it is reported lost, with why.
        loss = row["object_loss"]
        assert loss["destroyed_objects"] >= 1
        assert loss["how"] == "lost"
        assert "not rebuildable" in loss["reason"]
        assert "no rebuild kit" in loss["reason"]
    summary = report["summary"]
    assert summary["rehearsed"] == 2
    assert summary["catalog_loss_recovered"] == 2
    assert summary["lost"] == 2
    assert summary["seconds_per_artifact"] > 0
    assert report["rebuild"]["artifacts"] == 2
    assert f"| {hot} (model-a) | hot | store |" in report["markdown"]

    # The scratch vault is gone: no bucket of its prefix is left, nor its home.
    assert report["cleanup"]["left"] == {}
    assert report["cleanup"]["home_removed"] is True
    scratch = report["scratch_prefix"]
    assert not [b.name for b in vault.store.client.list_buckets() if b.name.startswith(scratch)]

    # Live data untouched: every object version of every bucket but the log's as before.
    after = _objects(vault)
    for role in bucket_roles():
        if role != "audit":
            assert after[role] == before[role], role
    assert before["audit"] <= after["audit"]  # the log only grew

    # The live log records the drill: its run and a read of each sampled artifact.
    kinds = [e.event.kind for e in vault.history(hot)] + [e.event.kind for e in vault.history(warm)]
    assert kinds.count("artifact.read") == 2
    log_report, _counts = verify_audit(Vault.open(vault_settings))
    assert log_report.ok, [p.__dict__ for p in log_report.problems]
    runs = vault.catalog.log_search(kind="dr.drill_run")
    assert sorted((r["phase"], r["outcome"]) for r in runs) == [
        ("intent", None),
        ("outcome", "ok"),
    ]
    # The drill leaves the live catalog as it was: still the two artifacts.
    assert {a.id for a in vault.catalog.list_artifacts()} == {hot, warm}


def test_the_drill_flow_publishes_its_report_under_prefect(
    vault: Vault, tmp_path: Path, prefect_api: None
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.drill import DrillParams, dr_drill

    artifact_id = stored_in(
        vault, make_tree(tmp_path / "c", {"w.bin": b"gamma" * 200}), "model-c", "hot"
    )
    state = dr_drill(DrillParams(sample=1), return_state=True)
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
