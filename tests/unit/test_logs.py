"""Log redaction: sensitive fields and registered secrets never reach the output."""

from __future__ import annotations

import base64
import json
import logging
import os
import pty
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from weightvault import logs
from weightvault.config import Settings
from weightvault.keys import create_master_key, load_master_key
from weightvault.keys._keystore import MASTER_KEY_ENV
from weightvault.logs import REDACTED, configure_logging, get_logger, redact, register_secret

CLI = [sys.executable, "-m", "weightvault.cli"]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests register secrets and call configure_logging; undo both afterwards.

    Through public interfaces only: the secret registry with logs.isolated_secrets,
    and the ``weightvault`` logger's handlers, level and propagation, which is what
    configure_logging changes besides structlog's chain (with ``json_output=True``,
    as these tests call it, that chain is the one the vault sets on import).
    """
    vault_logger = logging.getLogger(logs.VAULT_LOGGER)
    handlers, level, propagate = (
        list(vault_logger.handlers),
        vault_logger.level,
        vault_logger.propagate,
    )
    try:
        with logs.isolated_secrets():
            yield
    finally:
        for handler in list(vault_logger.handlers):
            if handler not in handlers:
                vault_logger.removeHandler(handler)
        for handler in handlers:
            vault_logger.addHandler(handler)
        vault_logger.setLevel(level)
        vault_logger.propagate = propagate


def fresh_secret() -> str:
    return "sk-" + secrets.token_urlsafe(24)


def processed(**fields: Any) -> dict[str, Any]:
    return dict(redact(None, "info", {"event": "e", **fields}))


# -- the processor -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "secret_key",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "dek",
        "material",
        "token",
        "session_token",
        "master_key",
        "access_key",
        "api_key",
        "key",
        "signing_key",
        "private_key_pem",
        "credentials",
        "SecretKey",
        "Authorization",
        "cookie",
        "mnemonic",
        "escrow_seed",
        "plaintext",
    ],
)
def test_sensitive_field_names_are_masked(name: str) -> None:
    out = processed(**{name: "value-that-must-not-show"})
    assert out[name] == REDACTED


@pytest.mark.parametrize(
    "name", ["key_id", "kek_id", "kek_version", "object_key", "signing_key_id"]
)
def test_key_identifiers_are_kept(name: str) -> None:
    assert processed(**{name: "kek-hot"})[name] == "kek-hot"


def test_nested_structures_are_masked() -> None:
    out = processed(
        config={"endpoint": "127.0.0.1:9000", "secret_key": "s3", "inner": {"password": "pw"}},
        keys=[{"key_id": "kek-hot", "material": "m"}, {"dek": "d"}, "plain"],
        pair=("ok", {"token": "t"}),
        blob=b"\x00\x01raw bytes",
        view=memoryview(b"abc"),
        count=3,
        ratio=0.5,
        flag=True,
        nothing=None,
    )
    assert out["config"] == {
        "endpoint": "127.0.0.1:9000",
        "secret_key": REDACTED,
        "inner": {"password": REDACTED},
    }
    assert out["keys"] == [{"key_id": "kek-hot", "material": REDACTED}, {"dek": REDACTED}, "plain"]
    assert out["pair"] == ["ok", {"token": REDACTED}]
    assert out["blob"] == REDACTED
    assert out["view"] == REDACTED
    assert (out["count"], out["ratio"], out["flag"], out["nothing"]) == (3, 0.5, True, None)


def test_registered_secrets_are_masked_inside_other_strings() -> None:
    secret = fresh_secret()
    register_secret(secret)
    out = processed(
        url=f"http://user:{secret}@host/",
        nested={"note": f"[{secret}]", "list": [f"x{secret}y"]},
    )
    out["event"] = redact(None, "info", {"event": f"connecting with {secret}"})["event"]
    text = json.dumps(out)
    assert secret not in text
    assert out["url"] == f"http://user:{REDACTED}@host/"
    assert out["nested"]["list"] == [f"x{REDACTED}y"]
    assert out["event"] == f"connecting with {REDACTED}"


def test_registered_secrets_in_objects_are_masked() -> None:
    secret = fresh_secret()
    register_secret(secret)
    out = processed(error=ValueError(f"bad {secret}"), path=Path("/tmp") / secret)
    # Renderers fall back to repr() for such values: what they print must be clean.
    rendered = structlog.processors.JSONRenderer()(None, "info", dict(out))
    console = structlog.dev.ConsoleRenderer(colors=False)(None, "info", dict(out))
    assert secret not in rendered
    assert secret not in console
    assert "ValueError" in json.loads(rendered)["error"]


def test_a_secret_containing_another_is_masked_whole() -> None:
    short = fresh_secret()
    long = short + "-and-the-rest-" + secrets.token_hex(8)
    register_secret(short)
    register_secret(long)
    text = processed(msg=f"a {long} b")["msg"]
    assert text == f"a {REDACTED} b"
    assert long[len(short) :] not in text


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert processed(msg="abc abc")["msg"] == "abc abc"


def test_registering_while_logging_from_threads() -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def log_forever() -> None:
        try:
            while not stop.is_set():
                processed(msg="x" * 50)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=log_forever) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3000):
            register_secret(fresh_secret())
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []


def test_master_key_is_masked_once_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "master.key"
    create_master_key(path)
    text = path.read_text().strip()
    load_master_key(path)
    assert text not in json.dumps(processed(msg=f"key is {text}"))
    env_text = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv(MASTER_KEY_ENV, env_text)
    load_master_key(path)
    assert env_text not in json.dumps(processed(msg=f"key is {env_text}"))


# -- rendering -----------------------------------------------------------------


def test_configured_logger_renders_json_and_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    secret = fresh_secret()
    register_secret(secret)
    configure_logging("DEBUG", json_output=True)
    log = get_logger("weightvault.test")
    log.debug("debug line", password="hunter22", detail=f"has {secret}")
    try:
        raise RuntimeError(f"failure mentioning {secret}")
    except RuntimeError:
        log.exception("failed", kek_id="kek-hot")
    err = capsys.readouterr().err
    assert secret not in err
    assert "hunter22" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert [line["event"] for line in lines] == ["debug line", "failed"]
    assert lines[0]["password"] == REDACTED
    assert lines[0]["level"] == "debug"
    assert lines[1]["kek_id"] == "kek-hot"
    assert "RuntimeError" in lines[1]["exception"]


def test_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", json_output=True)
    log = get_logger("weightvault.test")
    log.info("hidden")
    log.warning("shown")
    assert [json.loads(x)["event"] for x in capsys.readouterr().err.splitlines()] == ["shown"]


_EMIT = (
    "from weightvault.logs import configure_logging, get_logger\n"
    "configure_logging('INFO')\n"
    "get_logger().info('hello', password='hunter22', key_id='kek-hot')\n"
)


def test_json_when_not_a_tty_console_on_a_tty() -> None:
    piped = subprocess.run(
        [sys.executable, "-c", _EMIT], capture_output=True, text=True, cwd=REPO, check=True
    )
    line = json.loads(piped.stderr)
    assert (line["event"], line["password"], line["key_id"]) == ("hello", REDACTED, "kek-hot")

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _EMIT], stderr=follower, stdout=subprocess.DEVNULL, cwd=REPO
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO once the child side is closed
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    text = b"".join(chunks).decode()
    assert "hello" in text
    assert "hunter22" not in text
    assert REDACTED in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.strip())


# -- the real CLI --------------------------------------------------------------


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=REPO, env=env, check=False
    )


def test_cli_at_debug_never_prints_store_secret_or_master_key(
    vault_settings: Settings, tmp_path: Path
) -> None:
    store_secret = os.environ["WEIGHTVAULT_S3_SECRET_KEY"]
    master_text = vault_settings.master_key_path.read_text().strip()
    assert len(store_secret) >= 8
    env = {**os.environ, "WEIGHTVAULT_LOG_LEVEL": "DEBUG"}
    src = make_tree(tmp_path / "m", {"w.bin": weights(70_000), "c.json": b"{}"})
    put = _run("put", str(src), "--name", "logged", "--label", "team=ml", "--json", env=env)
    assert put.returncode == 0, put.stderr
    artifact_id = json.loads(put.stdout)["artifact_id"]
    runs = [
        put,
        _run("get", artifact_id, "--out", str(tmp_path / "out"), env=env),
        _run("gc", "--grace-minutes", "0", env=env),
    ]
    events = []
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
        for text in (proc.stdout, proc.stderr):
            assert store_secret not in text
            assert master_text not in text
        for line in proc.stderr.splitlines():
            record = json.loads(line)
            assert "event" in record
            events.append(record["event"])
    assert "artifact.ingested" in events
    assert "artifact.read" in events
    # A command that fails still prints nothing secret.
    bad = _run(
        "put", str(src), "--name", "x", env={**env, "WEIGHTVAULT_S3_ENDPOINT": "127.0.0.1:9"}
    )
    assert bad.returncode != 0
    assert store_secret not in bad.stdout + bad.stderr
    assert master_text not in bad.stdout + bad.stderr


_LIBRARY_PUT = (
    "import os, sys, pathlib\n"
    "from weightvault.artifacts import Vault\n"
    "from weightvault.config import load_settings\n"
    "from weightvault.lifecycle import ingest\n"
    "vault = Vault.open(load_settings(pathlib.Path(sys.argv[1])))\n"
    "src = pathlib.Path(sys.argv[2])\n"
    "art = ingest.put(vault, src, 'library').artifact_id\n"
    "vault.verify(art)\n"
)


def test_library_use_never_writes_to_stdout(vault_settings: Settings, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"w.bin": weights(5000)})
    env = {**os.environ, "WEIGHTVAULT_LOG_LEVEL": "DEBUG"}
    proc = subprocess.run(
        [sys.executable, "-c", _LIBRARY_PUT, str(REPO / "config"), str(src)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert os.environ["WEIGHTVAULT_S3_SECRET_KEY"] not in proc.stderr
