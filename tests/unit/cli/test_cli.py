"""The command line: one-line errors with distinct exit codes, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    StoreUnavailableError,
    UsageError,
)
from weightvault.lifecycle import ingest

CLI = [sys.executable, "-m", "weightvault.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, cwd=REPO, check=False
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("weightvault: error:")
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_exit_codes_are_distinct() -> None:
    from weightvault import errors

    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.VaultError) and c is not errors.VaultError
    ]
    codes = [c.exit_code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(c not in {0, 1} for c in codes)


def test_put_ls_show_get_verify_json(vault_settings: Settings, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"w.bin": weights(40000), "c.json": b"{}"})
    put = run("put", str(src), "--name", "cli-model", "--json")
    assert put.returncode == 0, put.stderr
    artifact_id = json.loads(put.stdout)["artifact_id"]
    listed = json.loads(run("ls", "--json").stdout)
    assert [a["id"] for a in listed] == [artifact_id]
    shown = json.loads(run("show", artifact_id, "--json").stdout)
    assert shown["placement"]["tier"] == "hot"
    assert "material" not in json.dumps(shown)
    out = tmp_path / "out"
    assert run("get", artifact_id, "--out", str(out)).returncode == 0
    assert (out / "w.bin").read_bytes() == (src / "w.bin").read_bytes()
    verify = run("verify", artifact_id)
    assert verify.returncode == 0
    assert "OK" in verify.stdout


def test_usage_error_is_one_line() -> None:
    assert_one_line_error(run("put"), UsageError.exit_code, "required")
    assert_one_line_error(run("frobnicate"), UsageError.exit_code, "invalid choice")


def test_missing_artifact(vault_settings: Settings, tmp_path: Path) -> None:
    proc = run("get", "wv-nope-0000", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, NotFoundError.exit_code, "wv-nope-0000")


def test_store_down_names_the_endpoint(vault_settings: Settings) -> None:
    proc = run(
        "put",
        str(REPO / "README.md"),
        "--name",
        "r",
        env={"WEIGHTVAULT_S3_ENDPOINT": "127.0.0.1:9"},
    )
    assert_one_line_error(proc, StoreUnavailableError.exit_code, "127.0.0.1:9")


def test_embedded_store_down(own_store: Settings) -> None:
    run("store", "down")
    proc = run("put", str(REPO / "README.md"), "--name", "r")
    assert_one_line_error(proc, StoreUnavailableError.exit_code, "store up")


def test_wrong_credentials_say_so(vault_settings: Settings, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"a": b"1"})
    proc = run("put", str(src), "--name", "x", env={"WEIGHTVAULT_S3_SECRET_KEY": "wrong-secret"})
    assert_one_line_error(proc, AuthenticationError.exit_code, "credentials")
    assert "wrong-secret" not in proc.stderr + proc.stdout


def test_tampered_data_exit_code_and_no_output(vault_settings: Settings, tmp_path: Path) -> None:
    vault = Vault.open(vault_settings)
    src = make_tree(tmp_path / "m", {"weights.bin": weights(50000)})
    artifact_id = ingest.put(vault, src, "t").artifact_id
    key = vault.catalog.files_of(artifact_id)[0]["object_key"]
    data = bytearray(vault.store.get_bytes(vault.bucket("hot"), key))
    data[100] ^= 0xFF
    vault.store.put_bytes(vault.bucket("hot"), key, bytes(data))
    out = tmp_path / "out"
    proc = run("get", artifact_id, "--out", str(out))
    assert_one_line_error(proc, IntegrityError.exit_code, "weights.bin")
    assert artifact_id in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WEIGHTVAULT_MASTER_KEY": "not base64!"}, "WEIGHTVAULT_MASTER_KEY"),
        ({"WEIGHTVAULT_MASTER_KEY": "AAAA"}, "32 bytes"),
    ],
)
def test_bad_master_key(vault_settings: Settings, env: dict[str, str], needle: str) -> None:
    proc = run("ls", env=env)
    assert_one_line_error(proc, 3, needle)


def test_wrong_master_key_is_refused(vault_settings: Settings) -> None:
    import base64

    proc = run("ls", env={"WEIGHTVAULT_MASTER_KEY": base64.b64encode(b"k" * 32).decode()})
    assert proc.returncode in {0, AuthenticationError.exit_code}
    put = run(
        "put",
        str(REPO / "README.md"),
        "--name",
        "r",
        env={"WEIGHTVAULT_MASTER_KEY": base64.b64encode(b"k" * 32).decode()},
    )
    assert_one_line_error(put, AuthenticationError.exit_code, "master key")
