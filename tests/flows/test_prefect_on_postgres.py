"""The Prefect server on a real PostgreSQL (`PREFECT_API_DATABASE_CONNECTION_URL`).

`weightvault up`'s server started with a plain ``postgresql://`` URL stores its flow
runs in that database (read back with asyncpg, Prefect's own driver), keeps no SQLite
file under the vault's home, and shows the database password in none of its output.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from flows.ingest import ingest
from flows.services import PREFECT_DATABASE_ENV, down, ensure_server, prefect_database_env
from tests.support.payloads import weights
from tests.support.postgres import PostgresServer
from tests.support.services import reporting_to, service_timeout
from weightvault.config import Settings
from weightvault.errors import ConfigError
from weightvault.logs import scrub_text


def test_plain_postgres_urls_get_prefects_async_driver() -> None:
    secret = "pw-" + os.urandom(6).hex()
    env = {PREFECT_DATABASE_ENV: f"postgresql://prefect:{secret}@db.internal:5432/prefect"}
    assert prefect_database_env(env) == {
        PREFECT_DATABASE_ENV: f"postgresql+asyncpg://prefect:{secret}@db.internal:5432/prefect"
    }
    assert secret not in scrub_text(f"could not connect with {secret}")
    env = {PREFECT_DATABASE_ENV: "postgres://u@h/db"}
    assert prefect_database_env(env)[PREFECT_DATABASE_ENV] == "postgresql+asyncpg://u@h/db"
    explicit = "postgresql+asyncpg://u@h/db"
    assert prefect_database_env({PREFECT_DATABASE_ENV: explicit}) == {
        PREFECT_DATABASE_ENV: explicit
    }
    assert prefect_database_env({}) == {}
    with pytest.raises(ConfigError, match=PREFECT_DATABASE_ENV):
        prefect_database_env({PREFECT_DATABASE_ENV: "not a url"})


async def _flow_runs(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id::text AS id, state_type::text AS state FROM flow_run")
    finally:
        await conn.close()
    return {r["id"]: r["state"] for r in rows}


def test_prefect_server_keeps_its_runs_in_postgres(
    vault_settings: Settings,
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url = postgres.create_database("prefect_" + os.urandom(4).hex())
    monkeypatch.setenv(PREFECT_DATABASE_ENV, url)
    try:
        state = ensure_server(vault_settings, timeout=service_timeout())
        src = tmp_path / "weights.bin"
        src.write_bytes(weights(64 * 1024))
        with reporting_to(state["api_url"]):
            run = ingest(path=str(src), name="on-pg", allow_incomplete=True, return_state=True)
        assert run.is_completed(), run.message
        runs = asyncio.run(_flow_runs(url))
        assert runs.get(str(run.state_details.flow_run_id)) == "COMPLETED", runs
    finally:
        down(vault_settings)
    prefect_home = vault_settings.home / "prefect"
    assert not list(prefect_home.rglob("*.db")), list(prefect_home.rglob("*.db"))
    log = (prefect_home / "server.log").read_text(errors="replace")
    assert postgres.password not in log
