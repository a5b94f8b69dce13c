"""The store role table and the IAM policies made from it (fast: no store).

``weightvault store policy ROLE`` prints these documents for MinIO or AWS and the
embedded SeaweedFS enforces the very same ones; tests/security/test_store_roles.py
tries each credential against the real store.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from weightvault.config import Settings, load_settings
from weightvault.errors import StoreRoleError
from weightvault.store import (
    ADMIN_ROLE,
    STORE_ROLES,
    dvc_remote,
    iam_policy,
    role_named,
    store_role_names,
)
from weightvault.store.layout import (
    envelope_key,
    file_key,
    grant_file_key,
    grant_receipt_key,
    keystore_version_key,
    log_checkpoint_key,
    log_sequenced_key,
    manifest_key,
    quarantine_marker_key,
    trust_root_key,
    validation_key,
)

BUCKETS = ("hot", "warm", "cold", "quarantine", "envelopes", "audit", "dvc", "grants")
ROLES = ("admin", "ingester", "reader", "validator", "promoter", "auditor", "dvc")
OBJECT_ACTIONS = {
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
}
BUCKET_ACTIONS = {
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketLocation",
}
VERB_ACTION = {"get": "s3:GetObject", "put": "s3:PutObject", "delete": "s3:DeleteObject"}
# A key of each kind the layout writes, by bucket.
SAMPLE_KEYS = {
    "hot": [manifest_key("a1"), file_key("a1", 0)],
    "warm": [manifest_key("a1")],
    "cold": [manifest_key("a1")],
    "quarantine": [quarantine_marker_key("a1")],
    "envelopes": [envelope_key("a1", t) for t in ("hot", "warm", "cold")],
    "audit": [
        log_checkpoint_key(),
        log_sequenced_key(7),
        trust_root_key(2),
        keystore_version_key(3),
        validation_key("a1", 1),
        "attestations/a1/000001-promotion.json",
    ],
    "dvc": ["files/md5/ab/cdef"],
    "grants": [grant_file_key("g-" + "0" * 24, 0), grant_receipt_key("g-" + "0" * 24)],
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(REPO / "config", home=tmp_path_factory.mktemp("home"))


def _allowed_by(policy: dict[str, Any], action: str, resource: str) -> bool:
    """IAM's answer for an allow-only policy: an action and a resource pattern match."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        if not any(re.fullmatch(a.replace("*", ".*"), action) for a in actions):
            continue
        for pattern in statement["Resource"]:
            regex = ".*".join(re.escape(part) for part in pattern.split("*"))
            if re.fullmatch(regex, resource, flags=re.DOTALL):
                return True
    return False


def test_every_role_is_in_the_table_admin_first() -> None:
    assert store_role_names() == ROLES
    assert set(STORE_ROLES) == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_each_policy_is_valid_iam_for_the_configured_buckets(settings: Settings, role: str) -> None:
    policy = iam_policy(role, settings)
    assert set(policy) == {"Version", "Statement"}
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert statements
    sids = [s["Sid"] for s in statements]
    assert len(set(sids)) == len(sids)
    buckets = {settings.store.bucket(b) for b in BUCKETS}
    for statement in statements:
        assert set(statement) == {"Sid", "Effect", "Action", "Resource"}
        assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"])
        assert statement["Effect"] == "Allow"
        assert statement["Action"]
        assert all(a.startswith("s3:") for a in statement["Action"])
        assert statement["Resource"]
        for resource in statement["Resource"]:
            if role == ADMIN_ROLE:
                continue
            match = re.fullmatch(r"arn:aws:s3:::([a-z0-9-]+)(/.+)?", resource)
            assert match, resource
            assert match.group(1) in buckets
            # Object actions name objects, bucket actions the bucket: never mixed.
            wanted = OBJECT_ACTIONS if match.group(2) else BUCKET_ACTIONS
            assert set(statement["Action"]) <= wanted, statement
    if role != ADMIN_ROLE:
        assert "s3:*" not in {a for s in statements for a in s["Action"]}


def test_the_admin_policy_is_everything_on_the_prefix_only(settings: Settings) -> None:
    policy = iam_policy("admin", settings)
    vault = policy["Statement"][0]
    assert vault["Action"] == ["s3:*"]
    assert vault["Resource"] == ["arn:aws:s3:::weightvault-*", "arn:aws:s3:::weightvault-*/*"]


def _reach(policy: dict[str, Any], settings: Settings) -> dict[str, set[str]]:
    """Per bucket role, the actions some statement grants on it."""
    found: dict[str, set[str]] = {b: set() for b in BUCKETS}
    for statement in policy["Statement"]:
        for resource in statement["Resource"]:
            for bucket in BUCKETS:
                name = settings.store.bucket(bucket)
                if resource == f"arn:aws:s3:::{name}" or resource.startswith(
                    f"arn:aws:s3:::{name}/"
                ):
                    found[bucket] |= set(statement["Action"])
    return found


def test_the_ingester_never_deletes_and_reaches_hot_only(settings: Settings) -> None:
    reach = _reach(iam_policy("ingester", settings), settings)
    assert not any(a.startswith("s3:Delete") for acts in reach.values() for a in acts)
    assert reach["warm"] == reach["cold"] == reach["dvc"] == set()
    policy = iam_policy("ingester", settings)
    # A put whose format scan finds unsafe content writes its quarantine marker, nothing else.
    quarantine = settings.store.bucket("quarantine")
    assert _allowed_by(policy, "s3:PutObject", f"arn:aws:s3:::{quarantine}/quarantine/a1.json")
    assert not _allowed_by(policy, "s3:PutObject", f"arn:aws:s3:::{quarantine}/other/a1.json")
    envelopes = settings.store.bucket("envelopes")
    assert _allowed_by(policy, "s3:PutObject", f"arn:aws:s3:::{envelopes}/envelopes/a1/hot.json")
    for tier in ("warm", "cold", "escrow"):
        key = f"arn:aws:s3:::{envelopes}/envelopes/a1/{tier}.json"
        assert not _allowed_by(policy, "s3:PutObject", key)
        assert not _allowed_by(policy, "s3:GetObject", key)


def test_the_dvc_credential_reaches_only_the_dvc_bucket(settings: Settings) -> None:
    reach = _reach(iam_policy("dvc", settings), settings)
    assert {b for b, acts in reach.items() if acts} == {"dvc"}
    assert not any(a.startswith("s3:Delete") for a in reach["dvc"])


def test_readers_and_auditors_write_nothing_but_the_log(settings: Settings) -> None:
    audit = settings.store.bucket("audit")
    for role in ("reader", "auditor"):
        policy = iam_policy(role, settings)
        writes = [
            r
            for s in policy["Statement"]
            if {"s3:PutObject", "s3:DeleteObject"} & set(s["Action"])
            for r in s["Resource"]
        ]
        assert writes == ([f"arn:aws:s3:::{audit}/log/*"] if role == "reader" else [])
    reach = _reach(iam_policy("auditor", settings), settings)
    assert {b for b, acts in reach.items() if acts} == {"audit"}


def test_the_policy_follows_the_bucket_prefix(settings: Settings) -> None:
    other = replace(settings, store=replace(settings.store, bucket_prefix="acme-ml"))
    for role in ROLES:
        resources = [r for s in iam_policy(role, other)["Statement"] for r in s["Resource"]]
        assert all(r == "*" or r.startswith("arn:aws:s3:::acme-ml-") for r in resources)


@pytest.mark.parametrize("role", ROLES)
def test_the_table_and_its_policy_agree_on_every_key_the_layout_writes(
    settings: Settings, role: str
) -> None:
    policy = iam_policy(role, settings)
    table = role_named(role)
    for bucket, keys in SAMPLE_KEYS.items():
        name = settings.store.bucket(bucket)
        listed = _allowed_by(policy, "s3:ListBucket", f"arn:aws:s3:::{name}")
        assert listed == table.allows("list", bucket), (role, bucket)
        for key in keys:
            for verb, action in VERB_ACTION.items():
                by_policy = _allowed_by(policy, action, f"arn:aws:s3:::{name}/{key}")
                assert by_policy == table.allows(verb, bucket, key), (role, verb, bucket, key)


def test_an_unknown_role_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(StoreRoleError, match=r"unknown store role 'root'.*ingester") as err:
        role_named("root")
    assert err.value.exit_code == 38


def test_a_grant_with_an_unknown_verb_cannot_be_written(tmp_path: Path) -> None:
    from weightvault.store import Grant

    with pytest.raises(ValueError, match="unknown verbs"):
        Grant("hot", frozenset({"get", "chmod"}))


def test_an_external_dvc_remote_needs_its_own_credential_never_the_vaults(
    settings: Settings,
) -> None:
    external = replace(
        settings,
        store=replace(
            settings.store, endpoint="s3.example:443", access_key="AKVAULT", secret_key="vault-s"
        ),
    )
    with pytest.raises(StoreRoleError, match="WEIGHTVAULT_DVC_ACCESS_KEY") as err:
        dvc_remote(external)
    assert err.value.exit_code == 38
    same = replace(
        external, store=replace(external.store, dvc_access_key="AKVAULT", dvc_secret_key="x")
    )
    with pytest.raises(StoreRoleError, match="the vault's own store credential"):
        dvc_remote(same)
    own = replace(
        external, store=replace(external.store, dvc_access_key="AKDVC", dvc_secret_key="dvc-s")
    )
    remote = dvc_remote(own)
    assert (remote.url, remote.access_key, remote.secret_key) == (
        "s3://weightvault-dvc/",
        "AKDVC",
        "dvc-s",
    )
    assert remote.endpoint_url == "http://s3.example:443"
    assert "dvc-s" not in repr(remote)


def test_weightvault_s3_role_picks_the_credential_and_an_unknown_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weightvault.store import connect

    monkeypatch.setenv("WEIGHTVAULT_S3_ROLE", "reader")
    monkeypatch.setenv("WEIGHTVAULT_DVC_ACCESS_KEY", "AKDVC")
    monkeypatch.setenv("WEIGHTVAULT_DVC_SECRET_KEY", "dvc-secret")
    settings = load_settings(REPO / "config", home=tmp_path / "home")
    assert settings.store.role == "reader"
    assert (settings.store.dvc_access_key, settings.store.dvc_secret_key) == ("AKDVC", "dvc-secret")
    assert "dvc-secret" not in repr(settings)
    monkeypatch.setenv("WEIGHTVAULT_S3_ROLE", "root")
    unknown = load_settings(REPO / "config", home=tmp_path / "home")
    # Refused before any store is reached (none runs here).
    with pytest.raises(StoreRoleError, match="unknown store role 'root'"):
        connect(unknown)
    monkeypatch.delenv("WEIGHTVAULT_S3_ROLE")
    assert load_settings(REPO / "config", home=tmp_path / "home").store.role == "admin"


def test_a_secret_file_is_only_ever_a_new_file(tmp_path: Path) -> None:
    from weightvault.cli._store import _write_new_private
    from weightvault.errors import InvalidInputError

    fresh = tmp_path / "creds.json"
    _write_new_private(fresh, b"secret")
    assert fresh.stat().st_mode & 0o777 == 0o600
    with pytest.raises(InvalidInputError, match="exists") as err:
        _write_new_private(fresh, b"other")
    assert err.value.exit_code == 14
    assert fresh.read_bytes() == b"secret"
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (tmp_path / "link.json").symlink_to(target)
    with pytest.raises(InvalidInputError):
        _write_new_private(tmp_path / "link.json", b"secret")
    assert target.read_bytes() == b"keep"


def test_the_dvc_remote_goes_to_a_private_config_local_only(tmp_path: Path) -> None:
    from weightvault.errors import InvalidInputError
    from weightvault.store import DvcRemote, configure_dvc_remote

    remote = DvcRemote("s3://wv-dvc/", "http://127.0.0.1:9", "AKDVC", "dvc-secret-key")
    with pytest.raises(InvalidInputError, match="not a DVC repository"):
        configure_dvc_remote(tmp_path, remote)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    autostage = true\n")
    written = configure_dvc_remote(tmp_path, remote)
    assert written == tmp_path / ".dvc" / "config.local"
    assert written.stat().st_mode & 0o777 == 0o600
    text = written.read_text()
    assert "dvc-secret-key" in text
    assert "s3://wv-dvc/" in text
    assert "dvc-secret-key" not in (tmp_path / ".dvc" / "config").read_text()
    # A config.local planted as a link elsewhere is never written through.
    written.unlink()
    target = tmp_path / "elsewhere"
    target.write_text("")
    written.symlink_to(target)
    with pytest.raises(InvalidInputError):
        configure_dvc_remote(tmp_path, remote)
    assert target.read_text() == ""
