"""Every CLI operation reaches a real Prefect server's event feed, refusals and integrity
failures included (issue 14 item 1); a server that is down slows and fails nothing."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.conftest import make_tree
from tests.support.durable_store import cli, cli_json, wait_for
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import IntegrityError
from weightvault.records import Event
from weightvault.store.layout import file_key
from weightvault.telemetry import flush_events

SECRET_WEIGHTS = b"top-secret-weights-" + bytes(range(40)) * 50


def _events(api_url: str, since: str) -> list[dict[str, Any]]:
    body = {
        "filter": {"occurred": {"since": since}, "event": {"prefix": ["weightvault."]}},
        "limit": 50,
    }
    response = urllib3.request("POST", f"{api_url}/events/filter", json=body, timeout=10)
    assert response.status == 200, response.data[:200]
    page = response.json()
    events: list[dict[str, Any]] = page["events"]
    while page.get("next_page"):
        page = urllib3.request("GET", page["next_page"], timeout=10).json()
        events.extend(page["events"])
    return events


def _logged(settings: Settings) -> list[Event]:
    vault = Vault.open(settings)
    size = vault.tlog.checkpoint().checkpoint.size
    return [Event.parse(e) for e in vault.tlog.reader(size).entries(0, size)]


def _related(event: dict[str, Any], role: str) -> list[dict[str, str]]:
    return [r for r in event["related"] if r["prefect.resource.role"] == role]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_cli_operations_refusals_and_a_flipped_bit_reach_the_prefect_server(
    vault_settings: Settings,
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5))
    src = make_tree(tmp_path / "model", {"model.bin": SECRET_WEIGHTS})
    artifact = cli_json("put", str(src), "--name", "events-model")["artifact_id"]
    cli_json("get", artifact, "--out", str(tmp_path / "out"))
    refused = cli("put", str(src), "--name", "events-cold", "--tier", "cold")
    assert refused.returncode == 42, refused.stderr

    # The attack: one ciphertext bit flipped straight in the store.
    vault = Vault.open(vault_settings)
    bucket, key = vault.bucket("hot"), file_key(artifact, 0)
    blob = bytearray(vault.store.get_bytes(bucket, key))
    blob[len(blob) // 2] ^= 0x01
    vault.store.put_bytes(bucket, key, bytes(blob))
    verify = cli("verify", artifact)
    assert verify.returncode == 5, verify.stderr
    got = cli("get", artifact, "--out", str(tmp_path / "out-corrupt"))
    assert got.returncode == 5, got.stderr

    # The log records the failure class (the contract detection rules count on).
    log = _logged(vault_settings)
    failed = [e for e in log if e.outcome == "failed"]
    assert [(e.kind, e.details.get("error")) for e in failed] == [
        ("artifact.verified", "IntegrityError"),
        ("artifact.read", "IntegrityError"),
    ]
    denied_op = next(e.op for e in log if e.outcome == "refused")
    assert (
        next(e for e in log if e.op == denied_op and e.phase == "outcome").details["error"]
        == "AuthorizationError"
    )

    def arrived() -> list[dict[str, Any]] | None:
        found = _events(prefect_api, since)
        ops = {e["payload"]["op"] for e in found}
        return found if {failed[1].op, denied_op} <= ops else None

    events = wait_for("the CLI's events on the Prefect server", arrived, timeout=60)
    mine = [
        e
        for e in events
        if e["resource"]["prefect.resource.id"] == f"weightvault.artifact.{artifact}"
    ]
    mine.sort(key=lambda e: e["payload"]["log_index"])
    names = [e["event"] for e in mine]
    assert names == [
        "weightvault.artifact.ingested",
        "weightvault.artifact.read",
        "weightvault.artifact.integrity_failed",
        "weightvault.artifact.integrity_failed",
    ]
    assert [e["payload"]["operation"] for e in mine if e["event"].endswith("integrity_failed")] == [
        "artifact.verified",
        "artifact.read",
    ]
    by_name = {e["event"]: e for e in mine}
    broken = next(e for e in mine if e["event"].endswith("integrity_failed"))
    assert broken["payload"]["operation"] == "artifact.verified"
    assert broken["payload"]["error"] == "IntegrityError"
    assert broken["payload"]["op"] == failed[0].op
    assert broken["resource"]["weightvault.tier"] == "hot"
    read = by_name["weightvault.artifact.read"]
    assert _related(read, "principal")[0]["prefect.resource.id"] == "weightvault.principal.alice"
    assert _related(read, "tier")[0]["prefect.resource.id"] == "weightvault.tier.hot"
    (client,) = _related(read, "client")
    assert client["prefect.resource.id"].startswith("weightvault.client.hmac-sha256:")
    assert client["weightvault.pid"].isdigit()
    outcomes = {e.op: e for e in log if e.phase == "outcome"}
    for event in mine:
        keys = {r["prefect.resource.id"] for r in _related(event, "key")}
        assert keys == {f"weightvault.key.{k}" for k in outcomes[event["payload"]["op"]].key_ids}
    assert _related(by_name["weightvault.artifact.ingested"], "key")
    assert not _related(read, "flow-run")

    (denied,) = [e for e in events if e["payload"]["op"] == denied_op]
    assert denied["event"] == "weightvault.artifact.denied"
    assert denied["payload"]["operation"] == "artifact.ingested"
    assert denied["payload"]["error"] == "AuthorizationError"
    assert denied["payload"]["outcome"] == "refused"

    # Never the content, key material or credentials.
    feed = json.dumps(events).encode()
    secrets = [
        SECRET_WEIGHTS[:32],
        vault_settings.store.secret_key.encode(),
        vault_settings.store.access_key.encode(),
        vault_settings.master_key_path.read_bytes().strip(),
        str(src).encode(),
    ]
    assert not [s for s in secrets if s and s in feed]


def test_a_prefect_server_that_is_down_neither_fails_nor_holds_up_the_cli(
    vault_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{_free_port()}/api")
    src = make_tree(tmp_path / "model", {"model.bin": b"weights"})
    started = time.monotonic()
    put = cli("put", str(src), "--name", "no-server")
    assert put.returncode == 0, put.stderr
    assert time.monotonic() - started < 60  # a sanity bound, not a benchmark
    artifact = json.loads(put.stdout)["artifact_id"]
    assert any(e.artifact_id == artifact and e.outcome == "ok" for e in _logged(vault_settings))


def test_an_operation_the_log_cannot_record_is_still_an_event(
    vault_settings: Settings, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    vault = Vault.open(vault_settings)
    vault.record("store.gc")
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5))
    # The attack: the log's signed checkpoint is forged straight in the store.
    bucket = vault.bucket("audit")
    lines = vault.store.get_bytes(bucket, "log/checkpoint").split(b"\n")
    lines[1] = str(int(lines[1]) + 1).encode()  # the size, under the old signatures
    forged = b"\n".join(lines)
    vault.store.put_bytes(bucket, "log/checkpoint", forged)
    again = Vault.open(vault_settings)
    with pytest.raises(IntegrityError) as refused:
        again.record("store.gc")
    flush_events()

    def arrived() -> list[dict[str, Any]]:
        return [
            e
            for e in _events(prefect_api, since)
            if e["resource"]["prefect.resource.id"]
            == f"weightvault.vault.{vault_settings.store.bucket_prefix}"
            and e["payload"]["outcome"] != "ok"
        ]

    (event,) = wait_for("the unrecorded operation's event", arrived, timeout=60)
    assert event["payload"]["log_index"] is None
    assert event["payload"]["operation"] == "store.gc"
    assert event["payload"]["error"] == type(refused.value).__name__
    assert event["event"] == "weightvault.store.integrity_failed"
