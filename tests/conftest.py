"""Shared fixtures: a real SeaweedFS S3 server on free loopback ports, real vaults."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, postgres_server
from tests.support.postgres import binaries as postgres_binaries
from tests.support.s3_peers import S3Peer, moto_s3_server
from tests.support.services import prefect_api_server, start_test_store, start_vault_store

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Every store and Prefect server a test starts takes free ports (a test that needs a
# fixed one sets its own): the fixed defaults (config/weightvault.toml) are left to the
# user's own `weightvault up` on this machine, and parallel tests never collide.
os.environ["WEIGHTVAULT_STORE_PORT"] = "0"
os.environ["WEIGHTVAULT_PREFECT_PORT"] = "0"

from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.keys import create_identity
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.store import EmbeddedStore

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "tests" / "unit"
# The fast tier (`make test-fast`, `pytest -m fast`) is tests/unit/ but for tests that
# need a service or a slow fixture: the S3 server (so every store-backed test: `vault`,
# `vault_settings`), a store of the test's own, a Prefect server, PostgreSQL, the
# reference DVC pipeline built in a git repo. Those run in the full suite (`make test`).
NOT_FAST_FIXTURES = frozenset(
    {"s3_server", "moto_server", "s3_peer", "own_store", "prefect_api", "model_repo", "postgres"}
)
_VAULT_ENV = (
    "WEIGHTVAULT_HOME",
    "WEIGHTVAULT_S3_ENDPOINT",
    "WEIGHTVAULT_S3_ACCESS_KEY",
    "WEIGHTVAULT_S3_SECRET_KEY",
    "WEIGHTVAULT_S3_ROLE",
    "WEIGHTVAULT_DVC_ACCESS_KEY",
    "WEIGHTVAULT_DVC_SECRET_KEY",
    "WEIGHTVAULT_BUCKET_PREFIX",
    "WEIGHTVAULT_MASTER_KEY",
    "WEIGHTVAULT_CONFIG",
    "WEIGHTVAULT_CATALOG_URL",
    "WEIGHTVAULT_IDENTITY_PASSPHRASE_FILE",
    "WEIGHTVAULT_ACTOR",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the fast tier: unit tests that use none of NOT_FAST_FIXTURES and are not slow."""
    for item in items:
        if UNIT not in item.path.resolve().parents or item.get_closest_marker("slow"):
            continue
        if NOT_FAST_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)


_IDENTITY_ENV = ("WEIGHTVAULT_IDENTITY_DIR", "WEIGHTVAULT_IDENTITY")


@pytest.fixture(scope="session", autouse=True)
def _session_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The identity "alice" every test acts as, made once; never the user's config dir.

    Set for the whole session so that module- and session-scoped fixtures (which run
    before a test's own fixtures) act as the same alice too.
    """
    where = tmp_path_factory.mktemp("identities")
    create_identity("alice", directory=where)
    saved = {name: os.environ.get(name) for name in _IDENTITY_ENV}
    os.environ.update({"WEIGHTVAULT_IDENTITY_DIR": str(where), "WEIGHTVAULT_IDENTITY": "alice"})
    try:
        yield where / "alice.key"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _clean_vault_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    _session_identity: Path,
) -> None:
    for name in _VAULT_ENV:
        monkeypatch.delenv(name, raising=False)
    # Each test has an identity directory of its own holding the session's alice (so the
    # identities a test makes stay its own), outside the test's tmp_path, which stays the
    # test's alone; `init_vault` enrols alice as the first principal.
    own = tmp_path_factory.mktemp("identities")
    own.chmod(0o700)
    shutil.copy2(_session_identity, own / "alice.key")
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY_DIR", str(own))
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "alice")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """One real S3 server (SeaweedFS) for the session."""
    server = EmbeddedStore(tmp_path_factory.mktemp("s3-server"))
    start_test_store(server)
    try:
        yield server
    finally:
        server.down()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Peer]:
    """moto's standalone S3 server for the session: the AWS-faithful second S3 peer."""
    with moto_s3_server(tmp_path_factory.mktemp("moto-server")) as peer:
        yield peer


@pytest.fixture(params=["seaweedfs", "moto"])
def s3_peer(request: pytest.FixtureRequest) -> S3Peer:
    """Each S3 implementation the store tests run against, SeaweedFS first."""
    if request.param == "moto":
        peer: S3Peer = request.getfixturevalue("moto_server")
        return peer
    server: EmbeddedStore = request.getfixturevalue("s3_server")
    creds = server.credentials()
    return S3Peer("seaweedfs", server.endpoint(), creds.access_key, creds.secret_key)


def _vault_on(peer: S3Peer, home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", peer.endpoint)
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", peer.access_key)
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", peer.secret_key)
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", f"t{uuid.uuid4().hex[:10]}")
    # Cold promotions in tests not about it need no reproducibility certificate (the
    # packaged default requires one: tests/security/test_certificate_rule.py).
    monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")
    settings = load_settings(REPO / "config")
    init_vault(settings)
    return settings


CATALOG_BACKEND_ENV = "WEIGHTVAULT_TEST_CATALOG"
"""``postgresql``: every ``vault_settings`` vault keeps its catalog in a PostgreSQL database
of its own (``make test`` runs the core packages' tests this way too); default SQLite."""


@pytest.fixture
def vault_settings(
    s3_server: EmbeddedStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Settings:
    """A fresh vault on the session server, isolated by its own bucket prefix."""
    if os.environ.get(CATALOG_BACKEND_ENV, "sqlite") == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database("catalog_" + uuid.uuid4().hex[:12])
        monkeypatch.setenv("WEIGHTVAULT_CATALOG_URL", url)
    creds = s3_server.credentials()
    peer = S3Peer("seaweedfs", s3_server.endpoint(), creds.access_key, creds.secret_key)
    return _vault_on(peer, tmp_path / "home", monkeypatch)


@pytest.fixture
def peer_settings(s3_peer: S3Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh vault on each S3 implementation (``s3_peer``), by its own bucket prefix."""
    return _vault_on(s3_peer, tmp_path / "home", monkeypatch)


@pytest.fixture
def peer_vault(peer_settings: Settings) -> Vault:
    """An open vault on each S3 implementation."""
    return Vault.open(peer_settings)


@pytest.fixture
def vault(vault_settings: Settings) -> Vault:
    """An open vault."""
    return Vault.open(vault_settings)


@pytest.fixture
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A vault with its own embedded server, for tests that stop or kill it."""
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "own"))
    monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")  # as in _vault_on
    settings = load_settings(REPO / "config")
    start_vault_store(settings)
    try:
        yield settings
    finally:
        EmbeddedStore(settings.store_dir).down()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path -> bytes) under ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Real Prefect: a `prefect server start` API server (SQLite) for the session; its API URL."""
    with prefect_api_server(tmp_path_factory.mktemp("prefect-api")) as api_url:
        yield api_url


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference DVC pipeline reproduced in a real git repo."""
    from pipeline.workspace import build_model_repo

    return build_model_repo(REPO, tmp_path_factory.mktemp("model-repo"))


@pytest.fixture
def impostor() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process in a session of its own, as a recycled pid would name."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Real PostgreSQL: a throwaway cluster on a free loopback port for the session."""
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed (bash .ci/install-tools installs it)")
    with postgres_server() as server:
        yield server
