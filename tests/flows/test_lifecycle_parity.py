"""The CLI path and the Prefect flow path of one lifecycle operation end the same way.

Each test builds the same starting state in two vaults on the real SeaweedFS
store, runs ``weightvault keys ...`` (a subprocess) on one and the flow (real
Prefect) on the other, and compares the outcomes: exit code or exception,
the summary, key states, envelopes and the events written. Artifact ids are
random, so both sides are compared by artifact name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.rekey import rekey
from flows.rotate_keys import rotate_keys
from tests.conftest import REPO, make_tree
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import IncompleteError, IntegrityError, StoreUnavailableError
from weightvault.lifecycle import escrow
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.escrow import ESCROW_KEY_ID, ESCROW_TIER, split_escrow_key
from weightvault.lifecycle.rotation import rotating_keys
from weightvault.store import EmbeddedStore
from weightvault.store.layout import escrow_envelope_key

CLI = [sys.executable, "-m", "weightvault.cli"]


@dataclass
class Side:
    """One of the two vaults: its environment, settings and open vault."""

    env: dict[str, str]
    settings: Settings
    vault: Vault

    def activate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def ids(self) -> dict[str, str]:
        """Artifact id -> name."""
        return {a.id: a.name for a in self.vault.catalog.list_artifacts()}


@pytest.fixture
def two_vaults(
    s3_server: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: None
) -> Callable[[str], Side]:
    """A factory of fresh vaults on the session server, each with its own home and prefix."""
    creds = s3_server.credentials()

    def make(label: str) -> Side:
        env = {
            "WEIGHTVAULT_HOME": str(tmp_path / f"home-{label}"),
            "WEIGHTVAULT_S3_ENDPOINT": s3_server.endpoint(),
            "WEIGHTVAULT_S3_ACCESS_KEY": creds.access_key,
            "WEIGHTVAULT_S3_SECRET_KEY": creds.secret_key,
            "WEIGHTVAULT_BUCKET_PREFIX": f"p{uuid.uuid4().hex[:10]}",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(REPO / "config")
        init_vault(settings)
        return Side(env, settings, Vault.open(settings))

    return make


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("weightvault: error:"), proc.stderr
    assert "Traceback" not in proc.stderr


def by_name(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every artifact id replaced by the artifact's name."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {by_name(k, names): by_name(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [by_name(v, names) for v in value]
    return value


def put_named(vault: Vault, root: Path, name: str, tier: str = "hot") -> str:
    src = make_tree(root / name, {"w.bin": name.encode() * 100, "c.json": b"{}"})
    return stored_in(vault, src, name, tier)


def key_states(vault: Vault) -> list[tuple[str, int, str]]:
    return sorted((r.key_id, r.version, str(r.state)) for r in rotating_keys(vault).records())


def envelopes(side: Side) -> dict[str, list[tuple[str, str, int]]]:
    """Artifact name -> its envelope rows (tier, key id, version), from the catalog."""
    names = side.ids()
    return {
        names[a]: sorted(
            (e["tier"], e["kek_id"], e["kek_version"]) for e in side.vault.catalog.envelopes_of(a)
        )
        for a in names
    }


def events_since(side: Side, mark: int) -> Counter[str]:
    """Kinds of the events written after the first ``mark`` ones."""
    return Counter(e["kind"] for e in side.vault.catalog.events_of(limit=100_000)[mark:])


def event_count(side: Side) -> int:
    return len(side.vault.catalog.events_of(limit=100_000))


def normalise_rotation(summary: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A rotation summary without timings, timestamps, bucket names and random samples."""
    out = by_name(summary, names)
    del out["started_at"], out["duration_s"]
    out["due"] = [
        {k: v for k, v in d.items() if k not in {"created_at", "expires_at"}} for d in out["due"]
    ]
    out["trust_root"] = out["trust_root"]["keys"]
    for tier in out["tiers"]:
        tier["verified"] = len(tier["verified"])
    return out


def normalise_rekey(summary: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    out = by_name(summary, names)
    del out["duration_s"]
    for name in ("protected", "reencrypted", "resumed"):
        out[name] = sorted(out[name], key=lambda r: r["artifact_id"])
    return out


# -- rotation ---------------------------------------------------------------------


def deferred_escrow_state(side: Side, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hot artifacts, an escrow key, and a cold artifact whose escrow was deferred."""
    vault = side.vault
    for i in range(3):
        put_named(vault, root, f"hot-{i}")
    split_escrow_key(vault.keys)

    def store_down(*args: object, **kwargs: object) -> str:
        raise StoreUnavailableError("simulated outage while escrowing")

    with monkeypatch.context() as m:
        m.setattr(escrow, "escrow_envelope", store_down)
        cold = put_named(vault, root, "release", "cold")  # escrow_on_publish defers
    assert not any(e["tier"] == ESCROW_TIER for e in vault.catalog.envelopes_of(cold))
    assert not vault.store.exists(vault.bucket("envelopes"), escrow_envelope_key(cold))


def test_rotation_repairs_deferred_escrow_on_both_paths(
    two_vaults: Callable[[str], Side], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_side = two_vaults("cli")
    deferred_escrow_state(cli_side, tmp_path / "cli", monkeypatch)
    mark = event_count(cli_side)
    proc = run_cli("keys", "rotate", "--tier", "hot", "--json")
    assert proc.returncode == 0, proc.stderr
    cli_summary = json.loads(proc.stdout)
    cli_events = events_since(cli_side, mark)

    flow_side = two_vaults("flow")
    flow_side.activate(monkeypatch)
    deferred_escrow_state(flow_side, tmp_path / "flow", monkeypatch)
    mark = event_count(flow_side)
    flow_summary = rotate_keys(force_tiers=["hot"])
    flow_events = events_since(flow_side, mark)

    # The deferred escrow is repaired on both paths...
    for side, summary in ((cli_side, cli_summary), (flow_side, flow_summary)):
        assert summary["escrow"] == {"cold": 1, "written": 1, "current": 0}
        assert envelopes(side)["release"] == [
            ("cold", "kek-cold", 1),
            (ESCROW_TIER, ESCROW_KEY_ID, 1),
        ]
        (cold,) = side.vault.catalog.list_artifacts("cold")
        assert side.vault.store.exists(side.vault.bucket("envelopes"), escrow_envelope_key(cold.id))
    # ...and everything else ends the same way too.
    assert normalise_rotation(cli_summary, cli_side.ids()) == normalise_rotation(
        flow_summary, flow_side.ids()
    )
    assert cli_summary["rewrapped"] == 3
    assert key_states(cli_side.vault) == key_states(flow_side.vault)
    assert envelopes(cli_side) == envelopes(flow_side)
    assert cli_events == flow_events
    assert cli_events["keys.rotation_run"] == 1
    # The escrowed DEK is the cold artifact's: a second run has nothing left to repair.
    flow_again = rotate_keys()
    assert flow_again["escrow"] == {"cold": 1, "written": 0, "current": 1}
    cli_side.activate(monkeypatch)
    cli_again = run_cli("keys", "rotate", "--json")
    assert cli_again.returncode == 0, cli_again.stderr
    assert json.loads(cli_again.stdout)["escrow"] == flow_again["escrow"]


def tampered_state(side: Side, root: Path) -> None:
    """A hot artifact with one byte of its ciphertext flipped."""
    vault = side.vault
    bad = put_named(vault, root, "bad")
    key = vault.catalog.files_of(bad)[0]["object_key"]
    data = bytearray(vault.store.get_bytes(vault.bucket("hot"), key))
    data[len(data) // 2] ^= 1
    vault.store.put_bytes(vault.bucket("hot"), key, bytes(data))


def test_rotation_failure_fails_both_paths_the_same_way(
    two_vaults: Callable[[str], Side], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_side = two_vaults("cli")
    tampered_state(cli_side, tmp_path / "cli")
    mark = event_count(cli_side)
    proc = run_cli("keys", "rotate", "--tier", "hot", "--json")
    assert proc.returncode == IntegrityError.exit_code, proc.stderr
    assert_one_line_error(proc)
    cli_events = events_since(cli_side, mark)

    flow_side = two_vaults("flow")
    flow_side.activate(monkeypatch)
    tampered_state(flow_side, tmp_path / "flow")
    mark = event_count(flow_side)
    with pytest.raises(IntegrityError):
        rotate_keys(force_tiers=["hot"])
    flow_events = events_since(flow_side, mark)

    # Both failed at the verification, which runs once the keys are in their final
    # state: envelopes moved and the old version retired, never left half-rotated.
    assert key_states(cli_side.vault) == key_states(flow_side.vault)
    assert ("kek-hot", 1, "retired") in key_states(cli_side.vault)
    assert not [s for s in key_states(cli_side.vault) if s[2] == "decrypt-only"]
    assert envelopes(cli_side) == envelopes(flow_side)
    assert {e[2] for rows in envelopes(cli_side).values() for e in rows} == {2}
    assert cli_events == flow_events
    assert cli_events["keys.rotation_run"] == 0


# -- compromise response --------------------------------------------------------------


def busy_state(side: Side, root: Path) -> str:
    """Three hot artifacts; ``m1`` is held by a concurrent promotion. Returns m1's id."""
    vault = side.vault
    ids = [put_named(vault, root, f"m{i}") for i in range(3)]
    vault.catalog.claim(ids[1], "hot", "warm")
    return ids[1]


def test_incomplete_rekey_fails_both_paths_and_both_converge(
    two_vaults: Callable[[str], Side], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_side = two_vaults("cli")
    cli_busy = busy_state(cli_side, tmp_path / "cli")
    proc = run_cli("keys", "compromise", "kek-hot@v1", "--exposed", cli_busy, "--rekey", "--json")
    assert proc.returncode == IncompleteError.exit_code, proc.stderr
    assert_one_line_error(proc)
    assert "1 envelope(s) are still on kek-hot@v1" in proc.stderr

    flow_side = two_vaults("flow")
    flow_side.activate(monkeypatch)
    flow_busy = busy_state(flow_side, tmp_path / "flow")
    with pytest.raises(IncompleteError, match="1 envelope"):
        rekey(key="kek-hot@v1", exposed=[flow_busy])

    for side in (cli_side, flow_side):
        assert len(side.vault.catalog.envelopes_on("kek-hot", 1)) == 1
    assert key_states(cli_side.vault) == key_states(flow_side.vault)
    assert ("kek-hot", 1, "compromised") in key_states(cli_side.vault)
    assert envelopes(cli_side) == envelopes(flow_side)
    assert envelopes(cli_side)["m1"] == [("hot", "kek-hot", 1)]

    # The promotion lets go; running the response again finishes it on both paths.
    flow_side.vault.catalog.release(flow_busy)
    mark = event_count(flow_side)
    flow_summary = rekey(key="kek-hot@v1", exposed=[flow_busy])
    flow_events = events_since(flow_side, mark)
    cli_side.activate(monkeypatch)
    cli_side.vault.catalog.release(cli_busy)
    mark = event_count(cli_side)
    proc = run_cli("keys", "compromise", "kek-hot@v1", "--exposed", cli_busy, "--rekey", "--json")
    assert proc.returncode == 0, proc.stderr
    cli_summary = json.loads(proc.stdout)
    cli_events = events_since(cli_side, mark)

    assert normalise_rekey(cli_summary, cli_side.ids()) == normalise_rekey(
        flow_summary, flow_side.ids()
    )
    assert [
        r["artifact_id"] for r in normalise_rekey(cli_summary, cli_side.ids())["reencrypted"]
    ] == ["m1"]
    assert cli_summary["remaining"] == 0
    assert cli_summary["busy"] == []
    assert key_states(cli_side.vault) == key_states(flow_side.vault)
    assert envelopes(cli_side) == envelopes(flow_side)
    assert {e[2] for rows in envelopes(cli_side).values() for e in rows} == {2}
    assert cli_events == flow_events
    for side in (cli_side, flow_side):
        for artifact_id in side.ids():
            side.vault.verify(artifact_id)


def test_complete_rekey_reports_the_same_on_both_paths(
    two_vaults: Callable[[str], Side], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def state(side: Side, root: Path) -> str:
        ids = [put_named(side.vault, root, f"m{i}") for i in range(4)]
        return ids[2]

    cli_side = two_vaults("cli")
    exposed = state(cli_side, tmp_path / "cli")
    mark = event_count(cli_side)
    proc = run_cli("keys", "compromise", "kek-hot", "--exposed", exposed, "--rekey", "--json")
    assert proc.returncode == 0, proc.stderr
    cli_summary = json.loads(proc.stdout)
    cli_events = events_since(cli_side, mark)

    flow_side = two_vaults("flow")
    flow_side.activate(monkeypatch)
    exposed = state(flow_side, tmp_path / "flow")
    mark = event_count(flow_side)
    flow_summary = rekey(key="kek-hot", exposed=[exposed], batch_size=2)
    flow_events = events_since(flow_side, mark)

    assert normalise_rekey(cli_summary, cli_side.ids()) == normalise_rekey(
        flow_summary, flow_side.ids()
    )
    assert cli_summary["rewrapped"]["rewrapped"] == 3
    assert len(cli_summary["reencrypted"]) == 1
    assert key_states(cli_side.vault) == key_states(flow_side.vault)
    assert envelopes(cli_side) == envelopes(flow_side)
    # A rewrap logs one envelopes.rewrapped entry per batch: the CLI's one batch (of up
    # to 500), the flow's two batches of 2.
    assert cli_events.pop("envelopes.rewrapped") == 1
    assert flow_events.pop("envelopes.rewrapped") == 2
    assert cli_events == flow_events
