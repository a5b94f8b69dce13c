"""Least-privilege store credentials on the real embedded SeaweedFS.

One store for the module, started with the role identities (``EmbeddedStore.of``);
the vault is initialised with the admin credential, then each role's credential is
tried, through the minio SDK, against what it must not do (delete, read other
tiers, overwrite artifacts, forge a trust root ...) and, through the vault, at
what its operations need: a real put as the ingester, get and verify as the
reader, quarantine as the promoter. The store's answers must match the role
table row for row.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from minio import Minio
from minio.commonconfig import CopySource

from pipeline.workspace import run
from tests.conftest import REPO, make_tree
from tests.support.artifacts import ingest_model
from tests.support.durable_store import cli
from tests.support.s3_peers import denied as _denied
from tests.support.services import start_vault_store
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import (
    AuthorizationError,
    ConfigError,
    ConflictError,
    QuarantinedError,
    StoreRoleDeniedError,
)
from weightvault.lifecycle import ingest, quarantine
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.promote import promote
from weightvault.lifecycle.validate import validate_artifact
from weightvault.store import (
    EmbeddedStore,
    ObjectStore,
    connect,
    dvc_remote,
    iam_policy,
    role_named,
    store_role_names,
)
from weightvault.store.layout import (
    envelope_key,
    keystore_version_key,
    log_checkpoint_key,
    manifest_key,
    quarantine_marker_key,
    trust_root_key,
)


@dataclass(frozen=True)
class RoleStore:
    settings: Settings
    server: EmbeddedStore
    admin: ObjectStore
    put_id: str
    quarantined_id: str

    def as_role(self, role: str) -> Settings:
        return replace(self.settings, store=replace(self.settings.store, role=role))

    def client(self, role: str) -> Minio:
        creds = self.server.credentials(role)
        return Minio(self.server.endpoint(), creds.access_key, creds.secret_key, secure=False)

    def bucket(self, role: str) -> str:
        return self.settings.store.bucket(role)


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoleStore]:
    root = tmp_path_factory.mktemp("store-roles")
    settings = load_settings(REPO / "config", home=root / "home")
    start_vault_store(settings)
    server = EmbeddedStore.of(settings)
    try:
        admin = Vault.open(settings).store
        # The ingester's credential is the one the puts run with.
        ingester = Vault.open(replace(settings, store=replace(settings.store, role="ingester")))
        put_id = ingest.put(ingester, make_tree(root / "m1", {"w.bin": b"a" * 4096}), "m1")
        other = ingest.put(ingester, make_tree(root / "m2", {"w.bin": b"b" * 4096}), "m2")
        # A warm and a cold copy the ingester must not reach (written as admin).
        for tier in ("warm", "cold"):
            admin.copy(
                settings.store.bucket("hot"),
                manifest_key(put_id.artifact_id),
                settings.store.bucket(tier),
                manifest_key(put_id.artifact_id),
            )
        yield RoleStore(settings, server, admin, put_id.artifact_id, other.artifact_id)
    finally:
        server.down()


def _body(data: bytes = b"forged") -> tuple[io.BytesIO, int]:
    return io.BytesIO(data), len(data)


def test_the_ingester_quarantines_the_pickle_it_puts(roles: RoleStore, tmp_path: Path) -> None:
    """The put's format scan writes the quarantine marker and statement with the ingester's
    own credential: nothing more is needed to keep a pickle unreadable from its commit on."""
    ingester = Vault.open(roles.as_role("ingester"))
    src = make_tree(tmp_path / "pk", {"model.pkl": pickle.dumps({"w": [1, 2]})})
    result = ingest.put(ingester, src, "pk")
    assert result.quarantined is not None
    assert result.artifact.tier == "quarantine"
    assert quarantine.read_marker(ingester, result.artifact_id) is not None
    ing = roles.client("ingester")
    qbucket = roles.bucket("quarantine")
    assert _denied(lambda: ing.remove_object(qbucket, quarantine_marker_key(result.artifact_id)))
    assert _denied(lambda: ing.put_object(qbucket, "other/x", *_body()))


def test_a_quarantine_marker_is_create_only(roles: RoleStore, tmp_path: Path) -> None:
    """The ingester may write markers, but a second write never replaces the first: a
    retried or racing quarantine (or an ingester re-running the step with another reason
    or origin) gets the marker already there back, and the store keeps it unchanged."""
    ingester = Vault.open(roles.as_role("ingester"))
    src = make_tree(tmp_path / "pk2", {"model.pkl": pickle.dumps({"w": [3, 4]})})
    result = ingest.put(ingester, src, "pk2")
    aid = result.artifact_id
    qbucket, key = roles.bucket("quarantine"), quarantine_marker_key(aid)
    first = roles.admin.get_bytes(qbucket, key)
    again = quarantine.QuarantinePlan(aid, "warm", "a second, different reason")
    kept = quarantine.write_marker(ingester, again)
    assert kept == json.loads(first)
    assert kept["origin"] == "hot"
    assert "a second, different reason" not in kept["reason"]
    assert roles.admin.get_bytes(qbucket, key) == first
    # The store itself refuses the conditional overwrite the vault makes.
    with pytest.raises(ConflictError):
        ingester.store.put_bytes(qbucket, key, b"{}", if_none_match=True)
    assert roles.admin.get_bytes(qbucket, key) == first


def test_the_ingester_puts_but_cannot_delete_or_reach_other_tiers(roles: RoleStore) -> None:
    ing = roles.client("ingester")
    hot, aid = roles.bucket("hot"), roles.put_id
    manifest = roles.admin.get_bytes(hot, manifest_key(aid))
    # What a stolen ingest credential would try:
    assert _denied(lambda: ing.remove_object(hot, manifest_key(aid)))
    for tier in ("warm", "cold"):
        assert _denied(lambda t=tier: ing.get_object(roles.bucket(t), manifest_key(aid)).read())
        assert _denied(lambda t=tier: list(ing.list_objects(roles.bucket(t), "artifacts/")))
        assert _denied(lambda t=tier: ing.put_object(roles.bucket(t), manifest_key("x"), *_body()))
        envelope = envelope_key(aid, tier)
        assert _denied(lambda k=envelope: ing.put_object(roles.bucket("envelopes"), k, *_body()))
    assert _denied(lambda: ing.put_object(hot, "other/x", *_body()))
    assert _denied(
        lambda: ing.copy_object(
            roles.bucket("warm"), manifest_key(aid), CopySource(hot, manifest_key(aid))
        )
    )
    audit = roles.bucket("audit")
    assert _denied(lambda: ing.put_object(audit, trust_root_key(9), *_body()))
    assert _denied(lambda: ing.remove_object(audit, log_checkpoint_key()))
    assert _denied(lambda: ing.make_bucket(f"{roles.settings.store.bucket_prefix}-evil"))
    # Nothing was touched, and through the vault the denial names the role (exit 39).
    assert roles.admin.get_bytes(hot, manifest_key(aid)) == manifest
    vault = Vault.open(roles.as_role("ingester"))
    with pytest.raises(StoreRoleDeniedError, match="to the ingester credential") as err:
        vault.store.remove(hot, manifest_key(aid))
    assert err.value.exit_code == 39
    # The put it did is whole: the reader verifies it.
    Vault.open(roles.as_role("reader")).verify(aid)


def test_the_reader_gets_and_verifies_but_writes_only_the_log(
    roles: RoleStore, tmp_path: Path
) -> None:
    reader = Vault.open(roles.as_role("reader"))
    size = reader.tlog.checkpoint().checkpoint.size
    reader.get(roles.put_id, tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == b"a" * 4096
    # Every read is logged: the reader's credential appended to the log.
    assert reader.tlog.checkpoint().checkpoint.size > size
    client = roles.client("reader")
    hot, aid = roles.bucket("hot"), roles.put_id
    assert _denied(lambda: client.put_object(hot, manifest_key(aid), *_body()))
    assert _denied(lambda: client.put_object(hot, manifest_key("new"), *_body()))
    assert _denied(lambda: client.remove_object(hot, manifest_key(aid)))
    envelopes = roles.bucket("envelopes")
    assert _denied(lambda: client.put_object(envelopes, envelope_key(aid, "hot"), *_body()))
    audit = roles.bucket("audit")
    assert _denied(lambda: client.put_object(audit, trust_root_key(9), *_body()))
    assert _denied(lambda: client.put_object(audit, keystore_version_key(99), *_body()))
    assert _denied(lambda: client.put_object(roles.bucket("dvc"), "files/md5/aa/bb", *_body()))


def test_the_promoter_quarantines_and_the_ingester_cannot_follow(roles: RoleStore) -> None:
    promoter = Vault.open(roles.as_role("promoter"))
    quarantine.quarantine(promoter, roles.quarantined_id, reason="drill")
    bucket, marker = roles.bucket("quarantine"), quarantine_marker_key(roles.quarantined_id)
    assert roles.admin.exists(bucket, marker)
    assert promoter.catalog.artifact(roles.quarantined_id).tier == "quarantine"
    # A stolen ingest (or read) credential cannot lift the quarantine by removing the marker.
    for role in ("ingester", "reader"):
        client = roles.client(role)
        assert _denied(lambda c=client: c.remove_object(bucket, marker))
    assert _denied(lambda: roles.client("reader").put_object(bucket, marker, *_body(b"{}")))
    assert roles.admin.exists(bucket, marker)
    # The ingester writes markers (a put's format scan quarantines at commit); overwriting
    # one lifts nothing: the log and the catalog keep reads refused, the marker stays.
    roles.client("ingester").put_object(bucket, marker, *_body(b"{}"))
    reader = Vault.open(roles.as_role("reader"))
    with pytest.raises(QuarantinedError):
        reader.verify(roles.quarantined_id)
    assert roles.admin.exists(bucket, marker)


def test_the_auditor_reads_the_log_and_writes_nothing(roles: RoleStore) -> None:
    auditor = roles.client("auditor")
    audit = roles.bucket("audit")
    checkpoint = auditor.get_object(audit, log_checkpoint_key()).read()
    assert checkpoint
    assert _denied(lambda: auditor.put_object(audit, log_checkpoint_key(), *_body()))
    assert _denied(lambda: auditor.remove_object(audit, log_checkpoint_key()))
    assert _denied(
        lambda: auditor.get_object(roles.bucket("hot"), manifest_key(roles.put_id)).read()
    )
    assert roles.admin.get_bytes(audit, log_checkpoint_key()) == checkpoint
    # Its one job: `audit verify` of the whole log, with nothing but read access.
    report, _ = verify_audit(Vault.open(roles.as_role("auditor")))
    assert report.problems == []
    assert report.size > 0


def test_the_dvc_credential_reaches_only_the_dvc_bucket(roles: RoleStore) -> None:
    dvc = roles.client("dvc")
    bucket = roles.bucket("dvc")
    dvc.put_object(bucket, "files/md5/ab/cdef", *_body(b"dvc blob"))
    assert dvc.get_object(bucket, "files/md5/ab/cdef").read() == b"dvc blob"
    assert [o.object_name for o in dvc.list_objects(bucket, "files/", recursive=True)] == [
        "files/md5/ab/cdef"
    ]
    assert _denied(lambda: dvc.get_object(roles.bucket("hot"), manifest_key(roles.put_id)).read())
    assert _denied(lambda: list(dvc.list_objects(roles.bucket("hot"), "artifacts/")))
    assert _denied(
        lambda: dvc.get_object(roles.bucket("envelopes"), envelope_key(roles.put_id, "hot")).read()
    )
    assert _denied(lambda: dvc.put_object(roles.bucket("audit"), log_checkpoint_key(), *_body()))


# One key of each kind per bucket: every role's store answer must be its table's.
MATRIX_KEYS = {
    "hot": "artifacts/probe-matrix/manifest.json",
    "warm": "artifacts/probe-matrix/manifest.json",
    "quarantine": "quarantine/probe-matrix.json",
    "envelopes": "envelopes/probe-matrix/hot.json",
    "audit": "attestations/probe-matrix/000001-probe.json",
    "dvc": "files/md5/pr/obe-matrix",
}


def _answers(client: Minio, bucket: str, key: str) -> dict[str, bool]:
    """What the store lets ``client`` do to ``key``, verb by verb (delete last)."""
    return {
        "get": not _denied(lambda: client.get_object(bucket, key).read()),
        "list": not _denied(lambda: list(client.list_objects(bucket, "x/"))),
        "put": not _denied(lambda: client.put_object(bucket, key, *_body())),
        "delete": not _denied(lambda: client.remove_object(bucket, key)),
    }


def test_every_role_gets_from_the_store_exactly_what_its_table_row_says(
    roles: RoleStore,
) -> None:
    wrong = []
    for name in store_role_names():
        role = role_named(name)
        client = roles.client(name)
        for bucket_role, key in MATRIX_KEYS.items():
            bucket = roles.bucket(bucket_role)
            roles.admin.put_bytes(bucket, key, b"matrix")
            for verb, answer in _answers(client, bucket, key).items():
                if answer != role.allows(verb, bucket_role, key):
                    wrong.append((name, bucket_role, verb, answer))
    assert wrong == []


def test_store_policy_prints_what_the_embedded_store_enforces(
    roles: RoleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(roles.settings.home))
    printed = cli("store", "policy", "ingester")
    assert printed.returncode == 0, printed.stderr
    enforced = json.loads(roles.server.identity_path.read_text())["policies"]
    (ingester,) = [p for p in enforced if p["name"] == "weightvault-ingester"]
    assert json.loads(printed.stdout) == json.loads(ingester["content"])
    assert json.loads(printed.stdout) == iam_policy("ingester", roles.settings)
    # The credential for handing out: the access key, the secret only to a new 0600 file.
    creds = roles.server.credentials("reader")
    secret_file = tmp_path / "reader.json"
    shown = cli("store", "credentials", "reader", "--secret-file", str(secret_file))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["access_key"] == creds.access_key
    assert creds.secret_key not in shown.stdout + shown.stderr
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert json.loads(secret_file.read_text())["secret_key"] == creds.secret_key
    # The secrets never reach the server's log.
    log = roles.server.log_path.read_text()
    assert all(c.secret_key not in log for c in roles.server.role_credentials().values())


def test_a_dvc_remote_pushes_with_the_dvc_credential_never_the_admin_key(
    roles: RoleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    # A DVC repository without git: what `dvc init --no-scm` writes, one process fewer.
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
    (repo / "data" / "train.bin").write_bytes(b"training data " * 512)
    run(repo, "dvc", "add", "-q", "data/train.bin")
    # `weightvault dvc-remote` (the demo's configure_remote writes the same).
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(roles.settings.home))
    configured = cli("dvc-remote", str(repo))
    assert configured.returncode == 0, configured.stderr
    remote = dvc_remote(roles.settings)
    assert json.loads(configured.stdout)["access_key"] == remote.access_key
    assert remote.secret_key not in configured.stdout + configured.stderr
    assert stat.S_IMODE((repo / ".dvc" / "config.local").stat().st_mode) == 0o600
    run(repo, "dvc", "push", "-q")
    # What DVC stored (md5-addressed) is the file: the dvc credential wrote the DVC bucket.
    data = (repo / "data" / "train.bin").read_bytes()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert roles.admin.get_bytes(roles.bucket("dvc"), f"files/md5/{md5[:2]}/{md5[2:]}") == data
    admin = roles.server.credentials()
    dvc = roles.server.credentials("dvc")
    assert (remote.access_key, remote.secret_key) == (dvc.access_key, dvc.secret_key)
    local = (repo / ".dvc" / "config.local").read_text()
    assert dvc.access_key in local
    for config in (repo / ".dvc" / "config", repo / ".dvc" / "config.local"):
        text = config.read_text()
        assert admin.access_key not in text
        assert admin.secret_key not in text


def test_the_validator_validates_and_the_promoter_promotes_with_their_own_credentials(
    roles: RoleStore, model_repo: Path
) -> None:
    ingester = Vault.open(roles.as_role("ingester"))
    artifact_id = ingest_model(ingester, model_repo)
    checked = validate_artifact(Vault.open(roles.as_role("validator")), artifact_id, model_repo)
    assert checked.status == "passed", checked.failures
    promoter = Vault.open(roles.as_role("promoter"))
    done = promote(promoter, artifact_id, "warm", justification="staging")
    assert (done.source, done.target) == ("hot", "warm")
    assert roles.admin.exists(roles.bucket("warm"), manifest_key(artifact_id))
    assert not roles.admin.exists(roles.bucket("hot"), manifest_key(artifact_id))
    Vault.open(roles.as_role("reader")).verify(artifact_id)
    # The validator's credential alone could not have moved it.
    validator = roles.client("validator")
    assert _denied(lambda: validator.put_object(roles.bucket("warm"), manifest_key("x"), *_body()))


def test_a_put_the_ingester_may_not_make_is_refused_logged_and_stores_nothing(
    roles: RoleStore, tmp_path: Path
) -> None:
    ingester = Vault.open(roles.as_role("ingester"))
    src = make_tree(tmp_path / "m", {"w.bin": b"c" * 1024})
    # Straight into warm would skip the gates: the authorization policy refuses it first...
    with pytest.raises(AuthorizationError, match="put_tier") as err:
        ingest.put(ingester, src, "skip-the-gates", "warm")
    assert err.value.exit_code == 42
    (refused,) = ingester.catalog.log_search(kind="artifact.ingested", outcome="refused")
    assert "put_tier" in refused["entry"]["reason"]
    artifact_id = refused["artifact_id"]
    # ... and the ingester's credential could not have written there anyway.
    client = roles.client("ingester")
    assert _denied(lambda: client.put_object(roles.bucket("warm"), manifest_key("x"), *_body()))
    assert not roles.admin.exists(roles.bucket("envelopes"), envelope_key(artifact_id, "warm"))
    assert list(roles.admin.list(roles.bucket("warm"), f"artifacts/{artifact_id}/")) == []


def _chain_settings(roles: RoleStore, home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The store as an external endpoint (a URL), reached through the AWS credential chain."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "absent"))
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", f"http://{roles.server.endpoint()}")
    monkeypatch.setenv("WEIGHTVAULT_S3_CREDENTIALS", "aws")
    monkeypatch.setenv("WEIGHTVAULT_S3_ROLE", "reader")
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", roles.settings.store.bucket_prefix)
    return load_settings(REPO / "config", home=home)


def _reads_as_the_reader(roles: RoleStore, settings: Settings) -> None:
    store = connect(settings)
    hot, key = roles.bucket("hot"), manifest_key(roles.put_id)
    assert store.get_bytes(hot, key) == roles.admin.get_bytes(hot, key)
    # The reader's credential, not a stronger one: its writes are refused (exit 39).
    with pytest.raises(StoreRoleDeniedError):
        store.put_bytes(hot, "artifacts/forged/x", b"forged")
    assert not roles.admin.exists(hot, "artifacts/forged/x")


def test_the_aws_chain_takes_a_role_credential_from_the_environment(
    roles: RoleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _chain_settings(roles, tmp_path / "home", monkeypatch)
    assert (settings.store.secure, settings.store.access_key) == (False, "")
    reader = roles.server.credentials("reader")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader.secret_key)
    _reads_as_the_reader(roles, settings)


def test_the_aws_chain_takes_a_role_credential_from_a_profile_file(
    roles: RoleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _chain_settings(roles, tmp_path / "home", monkeypatch)
    reader = roles.server.credentials("reader")
    shared = tmp_path / "aws-credentials"
    shared.write_text(
        "[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
        f"[vault-reader]\naws_access_key_id = {reader.access_key}\n"
        f"aws_secret_access_key = {reader.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_PROFILE", "vault-reader")
    _reads_as_the_reader(roles, settings)


def test_the_aws_chain_without_any_credential_is_a_one_line_config_error(
    roles: RoleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _chain_settings(roles, tmp_path / "home", monkeypatch)
    with pytest.raises(
        ConfigError, match="WEIGHTVAULT_S3_CREDENTIALS=aws: no AWS credential"
    ) as err:
        connect(settings)
    assert err.value.exit_code == 3
    assert "\n" not in err.value.message
