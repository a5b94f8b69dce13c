"""``[store] bucket`` / ``WEIGHTVAULT_STORE_BUCKET``: the single-bucket layout's settings, and
the IAM policies the roles get in it (fast: no store; the store enforcing them is
tests/security/test_single_bucket_roles.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.config import load_settings
from weightvault.errors import ConfigError, DrillError
from weightvault.lifecycle.drill import check_scratch
from weightvault.store import bucket_roles, dvc_remote, iam_policy, store_role_names


def _config(tmp_path: Path, bucket: str) -> Path:
    text = (REPO / "config" / "weightvault.toml").read_text()
    assert '\nbucket = ""\n' in text
    path = tmp_path / "config" / "weightvault.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text.replace('\nbucket = ""\n', f'\nbucket = "{bucket}"\n'))
    return path.parent


def test_the_default_is_a_bucket_per_role(tmp_path: Path) -> None:
    store = load_settings(REPO / "config", tmp_path / "home").store
    assert store.single_bucket == ""
    assert [store.bucket(r) for r in ("hot", "audit")] == ["weightvault-hot", "weightvault-audit"]


def test_the_file_or_the_environment_names_one_bucket_and_roles_become_prefixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = load_settings(_config(tmp_path, "models.example"), tmp_path / "home").store
    assert store.single_bucket == "models.example"
    assert store.bucket("cold") == "models.example/cold"
    monkeypatch.setenv("WEIGHTVAULT_STORE_BUCKET", "other-bucket")
    store = load_settings(_config(tmp_path / "b", "models.example"), tmp_path / "home").store
    assert {store.bucket(r) for r in bucket_roles()} == {
        f"other-bucket/{r}" for r in bucket_roles()
    }


@pytest.mark.parametrize("name", ["UPPER", "a", "has/slash", "-starts-with-hyphen", "x" * 64])
def test_a_bad_bucket_name_is_a_one_line_config_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_STORE_BUCKET", name)
    with pytest.raises(ConfigError, match="WEIGHTVAULT_STORE_BUCKET") as err:
        load_settings(REPO / "config", tmp_path / "home")
    assert err.value.exit_code == 3
    monkeypatch.delenv("WEIGHTVAULT_STORE_BUCKET")
    with pytest.raises(ConfigError, match=r"store\.bucket is invalid"):
        load_settings(_config(tmp_path, name.replace('"', "")), tmp_path / "home")


def test_every_role_policy_stays_inside_the_vault_prefixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_STORE_BUCKET", "shared")
    settings = load_settings(REPO / "config", tmp_path / "home")
    roots = tuple(f"arn:aws:s3:::shared/{r}/" for r in bucket_roles())
    for role in store_role_names():
        for statement in iam_policy(role, settings)["Statement"]:
            assert "s3:ListAllMyBuckets" not in statement["Action"], role
            for resource in statement["Resource"]:
                if resource == "arn:aws:s3:::shared":
                    listing = {"s3:ListBucket", "s3:ListBucketVersions"}
                    if listing & set(statement["Action"]):
                        assert set(statement["Action"]) <= listing, statement
                        for prefix in statement["Condition"]["StringLike"]["s3:prefix"]:
                            assert prefix.removesuffix("*").endswith("/"), prefix
                            assert f"arn:aws:s3:::shared/{prefix}".startswith(roots), prefix
                    else:
                        assert "Condition" not in statement
                        assert not {a for a in statement["Action"] if "Put" in a}, statement
                else:
                    assert resource.startswith(roots), (role, resource)
    ingester = iam_policy("ingester", settings)["Statement"]
    objects = {r for s in ingester for r in s["Resource"] if r != "arn:aws:s3:::shared"}
    assert "arn:aws:s3:::shared/hot/artifacts/*" in objects
    assert not any(
        r.startswith(("arn:aws:s3:::shared/warm/", "arn:aws:s3:::shared/cold/")) for r in objects
    )


def test_the_drill_refuses_the_single_bucket_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_STORE_BUCKET", "shared")
    live = load_settings(REPO / "config", tmp_path / "home")
    scratch = replace(
        live,
        home=tmp_path / "scratch",
        catalog_url=f"sqlite:///{tmp_path / 'scratch.db'}",
        store=replace(live.store, bucket_prefix="weightvault-drill-x"),
    )
    with pytest.raises(DrillError, match="bucket-per-role layout"):
        check_scratch(live, scratch)


def test_the_dvc_remote_is_the_dvc_prefix_of_the_one_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_STORE_BUCKET", "shared")
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", "https://s3.example.test")
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", "AKVAULT")
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", "vault-secret")
    monkeypatch.setenv("WEIGHTVAULT_DVC_ACCESS_KEY", "AKDVC")
    monkeypatch.setenv("WEIGHTVAULT_DVC_SECRET_KEY", "dvc-secret")
    remote = dvc_remote(load_settings(REPO / "config", tmp_path / "home"))
    assert remote.url == "s3://shared/dvc/"
    assert remote.access_key == "AKDVC"
