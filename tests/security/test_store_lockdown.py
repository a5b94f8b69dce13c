"""Issue 10, defect 1: another local user reaches the store's data only through S3 with credentials.

Every attack runs as ``nobody`` (``setpriv``) against a real embedded store and the
vault's real objects: a COMPLIANCE-locked cold artifact, a hot one, their
envelopes and audit events. After each, the objects are checked through the
vault's own S3 credentials. One test starts a store the way the vault did
before the lockdown, shows the attacks succeed there, and that the next ``up``
locks it without losing anything; another has ``nobody`` plant unix sockets
where weed would make its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import shutil
import ssl
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import _VAULT_ENV, REPO, make_tree
from tests.support.payloads import weights
from tests.support.services import start_vault_store
from tests.support.storelock_store import (
    NOBODY,
    attack,
    attacker_available,
    file_id,
    ports,
    start_unlocked_store,
    weed_sockets,
)
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import NotFoundError
from weightvault.lifecycle.bootstrap import ensure_buckets, init_vault
from weightvault.store import EmbeddedStore, free_ports
from weightvault.store import _server as server_module
from weightvault.store.layout import envelope_key, manifest_key

PLANTED = "artifacts/wv-20260101-0000000000000000/manifest.json"


@dataclass
class Target:
    """A vault on its own store, and what the attacker aims at."""

    settings: Settings
    vault: Vault
    store: EmbeddedStore
    cold_id: str
    hot_id: str
    cold_version: str | None

    def spec(self, cold_id: str | None = None) -> dict[str, Any]:
        """What the attacker knows: ports, buckets, keys (and the envelope's digest to compare)."""
        cold_id = cold_id or self.cold_id
        buckets = {r: self.vault.bucket(r) for r in ("hot", "cold", "envelopes", "audit")}
        env_key = envelope_key(cold_id, "cold")
        envelope = self.vault.store.get_bytes(buckets["envelopes"], env_key)
        # The envelopes bucket is versioned: SeaweedFS's filer keeps each version of an
        # object at `<key>.versions/v_<version id>`, not at the key itself.
        version = self.vault.store.stat(buckets["envelopes"], env_key).version_id
        filer_key = f"{env_key}.versions/v_{version}" if version else env_key
        return {
            "ports": ports(self.store),
            "buckets": buckets,
            "artifact_id": cold_id,
            "cold_manifest": manifest_key(cold_id),
            "envelope_key": env_key,
            "envelope_filer_key": filer_key,
            "envelope_sha256": hashlib.sha256(envelope).hexdigest(),
            "planted_key": PLANTED,
        }


def assert_intact(target: Target) -> None:
    """The cold version is still the current one, both artifacts verify, nothing was planted."""
    vault = target.vault
    info = vault.store.stat(vault.bucket("cold"), manifest_key(target.cold_id))
    assert info.version_id == target.cold_version
    vault.verify(target.cold_id)
    vault.verify(target.hot_id)
    for role in ("hot", "audit"):
        assert not vault.store.exists(vault.bucket(role), PLANTED), f"planted into {role}"


@contextlib.contextmanager
def _vault_home() -> Iterator[tuple[Path, Settings]]:
    """A vault home anybody may traverse (0755): only the store's own modes keep nobody out."""
    if reason := attacker_available():
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="wv-storelock-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in _VAULT_ENV:
                mp.delenv(name, raising=False)
            mp.setenv("WEIGHTVAULT_HOME", str(home))
            yield base, load_settings(REPO / "config")
    finally:
        EmbeddedStore(home / "store").down()
        shutil.rmtree(base, ignore_errors=True)


def _put(vault: Vault, base: Path, name: str, tier: str) -> str:
    src = make_tree(base / f"src-{name}", {"w.bin": weights(40_000), "c.json": b"{}"})
    return stored_in(vault, src, name, tier)


def _target(settings: Settings, vault: Vault, cold_id: str, hot_id: str) -> Target:
    store = EmbeddedStore(settings.store_dir)
    info = vault.store.stat(vault.bucket("cold"), manifest_key(cold_id))
    retention = vault.store.retention(vault.bucket("cold"), manifest_key(cold_id))
    assert retention is not None
    assert retention[0] == "COMPLIANCE"
    return Target(settings, vault, store, cold_id, hot_id, info.version_id)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """A vault on a locked-down store with a retained cold artifact and a hot one."""
    with _vault_home() as (base, settings):
        start_vault_store(settings)
        vault = Vault.open(settings, identity="alice")
        cold_id = _put(vault, base, "release", "cold")
        hot_id = _put(vault, base, "checkpoint", "hot")
        yield _target(settings, vault, cold_id, hot_id)


def _assert_refused(results: dict[str, dict[str, Any]]) -> None:
    harmed = {name: r["detail"] for name, r in results.items() if r["harm"]}
    assert not harmed, f"attacks that did harm: {json.dumps(harmed, indent=1)}"


def test_filer_http_delete_of_a_locked_cold_manifest_fails(target: Target) -> None:
    _assert_refused(attack(target.spec(), "filer_delete"))
    assert_intact(target)


def test_envelopes_cannot_be_listed_or_read_through_the_filer_or_the_volume_server(
    target: Target,
) -> None:
    spec = target.spec()
    # The attacker is even given the envelope's file id, as a leak elsewhere might.
    spec["envelope_fid"] = file_id(
        target.store, spec["buckets"]["envelopes"], spec["envelope_filer_key"]
    )
    results = attack(spec, "filer_list_envelopes", "filer_read_envelope", "volume_read_envelope")
    _assert_refused(results)
    assert_intact(target)


def test_nothing_can_be_uploaded_into_the_hot_or_audit_bucket(target: Target) -> None:
    events_before = sorted(o.key for o in target.vault.store.list(target.vault.bucket("audit")))
    results = attack(
        target.spec(),
        "filer_upload_hot",
        "filer_upload_audit",
        "master_assign_upload_hot",
        "master_assign_upload_audit",
    )
    _assert_refused(results)
    events_after = sorted(o.key for o in target.vault.store.list(target.vault.bucket("audit")))
    assert events_after == events_before
    assert_intact(target)


def test_filer_grpc_calls_without_a_client_certificate_fail(target: Target) -> None:
    results = attack(target.spec(), "grpc_list_entries", "grpc_delete_entry", "grpc_ports")
    _assert_refused(results)
    assert_intact(target)


def test_the_master_refuses_collection_delete_and_status(target: Target) -> None:
    _assert_refused(attack(target.spec(), "master_col_delete", "master_status"))
    assert_intact(target)


def test_anonymous_s3_requests_are_refused(target: Target) -> None:
    _assert_refused(attack(target.spec(), "anonymous_s3"))
    assert_intact(target)


def test_every_internal_port_wants_this_stores_client_certificate(target: Target) -> None:
    _assert_refused(attack(target.spec(), "internal_ports", "grpc_ports"))
    # The refusal is the certificate's, not a dead port: with the store's own client
    # certificate the master's HTTP API answers.
    tls = target.store.security_dir / "tls"
    ctx = ssl.create_default_context(cafile=tls / "ca.pem")
    ctx.load_cert_chain(tls / "client.pem", tls / "client.key")
    conn = http.client.HTTPSConnection("127.0.0.1", ports(target.store)["master"], context=ctx)
    try:
        conn.request("GET", "/dir/status")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_weed_listens_on_no_port_the_attacks_do_not_cover(target: Target) -> None:
    pid = json.loads(target.store.state_path.read_text())["pid"]
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", port) for port in ports(target.store).values()}


def test_the_stores_files_and_sockets_are_private(target: Target) -> None:
    store = target.store
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.security_dir.stat().st_mode) == 0o700
    secrets_files = [
        store.credentials_path,
        store.identity_path,
        store.state_path,
        store.log_path,
        store.security_dir / "security.toml",
        *sorted((store.security_dir / "tls").iterdir()),
    ]
    for path in secrets_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    sockets = weed_sockets(store)
    assert sockets, "weed opened no unix socket for this store's ports"
    spec = target.spec()
    spec["paths"] = [str(p) for p in (store.dir, store.data_dir, *secrets_files)]
    spec["paths"] += [str(p) for p in store.data_dir.rglob("*")][:200]
    spec["sockets"] = sockets
    _assert_refused(attack(spec, "local_files", "local_sockets"))


def test_no_key_material_in_the_stores_log_or_state(target: Target) -> None:
    config = tomllib.loads((target.store.security_dir / "security.toml").read_text())
    jwt = config["jwt"]
    keys = [
        jwt["signing"]["key"],
        jwt["signing"]["read"]["key"],
        jwt["filer_signing"]["key"],
        jwt["filer_signing"]["read"]["key"],
    ]
    assert all(len(k) >= 40 for k in keys)
    assert len(set(keys)) == 4
    log = target.store.log_path.read_text(errors="replace")
    state = target.store.state_path.read_text()
    for text in (log, state):
        assert not any(k in text for k in keys)
        assert "PRIVATE KEY" not in text


def test_a_store_started_before_the_lockdown_is_locked_by_the_next_up() -> None:
    with _vault_home() as (base, settings):
        store = EmbeddedStore(settings.store_dir)
        start_unlocked_store(store)
        # init without `up`, which would already lock the store (as checked below).
        init_vault(settings, start_store=False)
        ensure_buckets(settings)
        vault = Vault.open(settings, identity="alice")
        victim = _put(vault, base, "victim", "cold")
        grpc_victim = _put(vault, base, "grpc-victim", "cold")
        cold_id = _put(vault, base, "release", "cold")
        hot_id = _put(vault, base, "checkpoint", "hot")
        target = _target(settings, vault, cold_id, hot_id)
        old_pid = json.loads(store.state_path.read_text())["pid"]

        # The defect, reproduced: as nobody, through the unauthenticated internal ports.
        before = attack(
            target.spec(victim),
            "filer_list_envelopes",
            "filer_read_envelope",
            "volume_read_envelope",
            "filer_upload_hot",
            "master_assign_upload_hot",
            "grpc_list_entries",
            "filer_delete",
        )
        assert all(r["harm"] for r in before.values()), json.dumps(before, indent=1)
        attack(target.spec(grpc_victim), "grpc_delete_entry")
        for gone in (victim, grpc_victim):
            with pytest.raises(NotFoundError):
                vault.store.stat(vault.bucket("cold"), manifest_key(gone))
        vault.store.remove(vault.bucket("hot"), PLANTED)

        status = store.up()
        assert status.pid != old_pid
        assert json.loads(store.state_path.read_text())["lockdown"] == 1
        target.vault = Vault.open(settings, identity="alice")
        after = attack(
            target.spec(),
            "filer_list_envelopes",
            "filer_read_envelope",
            "volume_read_envelope",
            "filer_upload_hot",
            "master_assign_upload_hot",
            "grpc_list_entries",
            "filer_delete",
            "grpc_delete_entry",
            "master_col_delete",
        )
        _assert_refused(after)
        assert_intact(target)
        # A second up leaves the locked server running as it is.
        assert store.up().pid == status.pid


def test_ports_whose_weed_sockets_another_user_made_first_are_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _vault_home() as (base, settings):
        names = ("s3", "s3-grpc", "master", "master-grpc", "volume-grpc", "filer", "filer-grpc")
        # Free ports whose socket paths no earlier weed left behind in /tmp (a stale one
        # would make the squat itself fail, not the store).
        while True:
            squatted = free_ports(10)
            paths = [f"/tmp/seaweedfs-{n}-{p}.sock" for n, p in zip(names, squatted, strict=False)]
            if not any(Path(path).exists() for path in paths):
                break
        # nobody binds (and so creates) unix sockets where weed would put its own.
        made = attack({"sockets": paths}, "squat_sockets")["squat_sockets"]
        assert made["harm"], made["detail"]
        try:
            offered = iter([squatted])
            monkeypatch.setattr(
                server_module, "free_ports", lambda n: next(offered, None) or free_ports(n)
            )
            start_vault_store(settings)
            store = EmbeddedStore(settings.store_dir)
            assert set(ports(store).values()).isdisjoint(squatted)
            for path in paths:
                assert Path(path).lstat().st_uid == NOBODY
            vault = Vault.open(settings, identity="alice")
            vault.verify(_put(vault, base, "after-squat", "hot"))
        finally:
            for path in paths:
                Path(path).unlink(missing_ok=True)
