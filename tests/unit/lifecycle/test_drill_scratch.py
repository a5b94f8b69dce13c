"""The DR drill's scratch vault never shares a bucket, home or catalog with the live one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.config import load_settings
from weightvault.errors import DrillError
from weightvault.lifecycle.drill import check_scratch, dvc_object_key, markdown, scratch_settings
from weightvault.store import bucket_roles


def test_scratch_prefix_home_and_catalog_are_its_own(tmp_path: Path) -> None:
    live = load_settings(REPO / "config", home=tmp_path / "live")
    live = replace(live, store=replace(live.store, endpoint="127.0.0.1:9", bucket_prefix="live"))
    scratch = scratch_settings(live, "abc123", tmp_path / "scratch")
    assert scratch.store.bucket_prefix == "live-drill-abc123"
    assert scratch.store.endpoint == live.store.endpoint
    assert scratch.home == tmp_path / "scratch"
    assert str(tmp_path / "scratch") in scratch.catalog_url
    live_buckets = {live.store.bucket(r) for r in bucket_roles()}
    assert not live_buckets & {scratch.store.bucket(r) for r in bucket_roles()}
    # The scratch cold tier is locked like the live one but retains nothing (deletable).
    assert live.tiers["cold"].object_lock
    assert scratch.tiers["cold"].object_lock
    assert {t.retention_days for t in scratch.tiers.values()} == {0}
    assert live.tiers["cold"].retention_days > 0  # the live settings are not changed


@pytest.mark.parametrize("what", ["prefix", "home"])
def test_a_scratch_vault_reaching_live_data_is_refused(tmp_path: Path, what: str) -> None:
    live = load_settings(REPO / "config", home=tmp_path / "live")
    live = replace(live, store=replace(live.store, endpoint="127.0.0.1:9", bucket_prefix="live"))
    if what == "prefix":
        scratch = replace(live, home=tmp_path / "s", catalog_url="sqlite:///s.db")
    else:
        scratch = replace(live, store=replace(live.store, bucket_prefix="live-drill-x"))
    with pytest.raises(DrillError) as caught:
        check_scratch(live, scratch)
    assert caught.value.exit_code == 54
    assert "refusing to run" in caught.value.message


def test_report_markdown_names_each_outcome() -> None:
    report = {
        "drill_id": "d1",
        "started": "2026-12-02T00:00:00Z",
        "scratch_prefix": "live-drill-d1",
        "summary": {
            "rehearsed": 2,
            "seconds": 2.0,
            "seconds_per_artifact": 1.0,
            "recovered": {"rebuild": 0, "escrow": 1},
            "lost": 1,
        },
        "artifacts": [
            {
                "artifact_id": "wv-1",
                "name": "m",
                "tier": "hot",
                "catalog_loss": {"how": "store", "seconds": 1.0},
                "tier_loss": {"destroyed": "model objects", "how": "lost", "seconds": 0.1},
                "came_back": "lost",
                "verify": "not run",
                "reason": "not rebuildable: a|b",
            },
            {
                "artifact_id": "wv-3",
                "name": "c",
                "tier": "cold",
                "catalog_loss": {"how": "store", "seconds": 1.0},
                "tier_loss": {"destroyed": "keystore", "how": "escrow", "seconds": 0.2},
                "came_back": "escrow",
                "verify": "ok: 1 file(s)",
                "reason": None,
            },
        ],
        "not_rehearsed": [{"artifact_id": "wv-2", "tier": "quarantine", "reason": "no reads"}],
        "cleanup": {"objects_removed": 3, "left": {"live-drill-d1-cold": "kept"}},
    }
    text = markdown(report)
    assert (
        "| wv-1 (m) | hot | store | 1.0 | model objects | lost | 0.1 | not run | "
        "not rebuildable: a/b |" in text
    )
    assert "| wv-3 (c) | cold | store | 1.0 | keystore | escrow | 0.2 | ok: 1 file(s) |  |" in text
    assert "| wv-2 | quarantine | not rehearsed |" in text
    assert "live-drill-d1-cold (kept)" in text


def test_the_scratch_dvc_remote_copies_only_md5_named_keys() -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    assert dvc_object_key(md5) == f"files/md5/01/{md5[2:]}"
    assert dvc_object_key(md5 + ".dir") == f"files/md5/01/{md5[2:]}.dir"
    # A .dir listing read from the store cannot name a path outside the scratch remote.
    for bad in ("../../etc/passwd", md5[:31], md5.upper(), md5 + ".dir/..", "", "None"):
        assert dvc_object_key(bad) is None, bad
