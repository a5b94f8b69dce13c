"""From a detected incident to its resolution, end to end (issue 14, items 4-5).

The attack is reproduced on a vault with its own embedded store (its DVC role credential
is real): one byte of a stored ciphertext object is flipped straight in the store. The
real CLI then shows the whole response: `verify` fails, `detect` opens an integrity
incident, `contain` (no plan: the incidents the signed log supports) quarantines the
artifact and rebuilds it from its rebuild kit, restoring it only after a bit-for-bit
match; `incident resolve` is refused without the two signed release approvals and lifts
the quarantine with them. One artifact (a tiny model with its kit) for the module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.durable_store import cli, cli_json

from tests.conftest import make_tree
from tests.support.approvals import approved
from tests.support.model_repos import tiny_model_repo
from tests.support.services import start_vault_store
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import IntegrityError, LiftRefusedError, QuarantinedError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.contain import ContainmentPlan, run_step
from weightvault.lifecycle.incidents import list_incidents
from weightvault.lifecycle.trust import init_root
from weightvault.provenance import capture_provenance
from weightvault.records import Event, Manifest
from weightvault.store import EmbeddedStore, dvc_remote
from weightvault.store.layout import manifest_key

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Stored:
    settings: Settings
    repo: Path
    artifact_id: str


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    root = tmp_path_factory.mktemp("incident-response")
    settings = load_settings(REPO / "config", home=root / "home")
    start_vault_store(settings)
    try:
        vault = Vault.open(settings)
        init_root(vault)  # the incident bundle verifies offline against a signed root
        repo = tiny_model_repo(root / "tiny", dvc_remote(settings), "x,y\n1,2\n3,5\n")
        provenance = capture_provenance(
            repo,
            run_id="run-tiny",
            creator="alice",
            lock_file=None,
            parent=None,
            allow_incomplete=False,
        )
        artifact_id = ingest.put(
            vault, repo / "model", "tiny", provenance=provenance, model_repo=repo
        ).artifact_id
        yield Stored(settings, repo, artifact_id)
    finally:
        EmbeddedStore.of(settings).down()


@pytest.fixture
def env(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> Stored:
    """The CLI finds the module's vault; uv is on PATH should the rebuild need a venv."""
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(stored.settings.home))
    monkeypatch.setenv("PATH", f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return stored


def _flip_a_ciphertext_byte(vault: Vault, artifact_id: str) -> str:
    data = vault.store.get_bytes(vault.bucket("hot"), manifest_key(artifact_id))
    entry = Manifest.parse(data)[0].model_files[0]
    body = bytearray(vault.store.get_bytes(vault.bucket("hot"), entry.object_key))
    body[len(body) // 2] ^= 0x40
    vault.store.put_bytes(vault.bucket("hot"), entry.object_key, bytes(body))
    return entry.path


def test_a_flipped_ciphertext_byte_is_contained_recovered_and_resolved(
    env: Stored, tmp_path: Path
) -> None:
    vault = Vault.open(env.settings)
    artifact_id = env.artifact_id
    path = _flip_a_ciphertext_byte(vault, artifact_id)
    original = (env.repo / "model" / path).read_bytes()

    # Two integrity failures (the rule's default threshold): the CLI's, then another.
    failed = cli("verify", artifact_id)
    assert failed.returncode == IntegrityError.exit_code, failed.stderr
    with pytest.raises(IntegrityError):
        vault.verify(artifact_id)
    detected = cli_json("detect")
    (incident,) = [i for i in detected["opened"] if i["rule"] == "integrity_failures"]
    assert incident["artifacts"] == [artifact_id]
    assert {"quarantine", "recover"} <= set(incident["actions"])

    # `contain` with no plan: the open, not yet contained incidents of the signed log.
    done = cli("contain")
    assert done.returncode == 0, done.stderr
    (result,) = [
        r
        for r in json.loads(done.stdout)["incidents"]
        if r["incident"]["incident_id"] == incident["id"]
    ]
    steps = {s["name"]: s for s in result["steps"]}
    assert [s["name"] for s in result["steps"]] == [
        "quarantine_artifacts",
        "recover_artifacts",
        "bundle_evidence",
    ]
    assert all(s["status"] == "done" for s in result["steps"]), result["steps"]
    recovered = steps["recover_artifacts"]
    assert "rebuilt bit for bit, restored and verified" in recovered["detail"]
    # The step's entries: the recovery (with its certificate) and the verify in quarantine.
    vault = Vault.open(env.settings)
    (recovery,) = list(vault.history(artifact_id, {"artifact.recovered"}))
    assert recovery.index in recovered["log_indexes"]
    certificate = recovery.event.details["statement"]
    assert certificate["kind"] == "reproducibility"
    assert certificate["key"] in recovered["detail"]
    assert recovery.event.details["restored"] >= 1
    verified = list(vault.history(artifact_id, {"artifact.verified"}))
    assert verified[-1].index in recovered["log_indexes"]
    assert verified[-1].event.details["quarantine_index"] == steps_index(vault, artifact_id)
    report = sorted((env.settings.home / "incidents" / incident["id"]).glob("report-*.md"))
    text = report[-1].read_text()
    assert "recover_artifacts" in text
    assert certificate["key"] in text

    # Idempotent: run again, the step sees the restore since the quarantine and skips it.
    (logged,) = [i for i in list_incidents(vault) if i.id == incident["id"]]
    again = run_step(vault, ContainmentPlan.from_incident(logged), "recover_artifacts")
    assert again.status == "skipped", again
    assert "already recovered since quarantined" in again.detail
    assert len(vault.history(artifact_id, {"artifact.recovered"})) == 1

    # Quarantined all along: reads refused.
    out = tmp_path / "refused"
    refused = cli("get", artifact_id, "--out", str(out))
    assert refused.returncode == QuarantinedError.exit_code, refused.stderr
    assert not out.exists()

    # Resolving without the two signed release approvals is refused: still open, quarantined.
    no = cli("incident", "resolve", incident["id"], "--justification", "rebuilt from the kit")
    assert no.returncode == LiftRefusedError.exit_code, no.stderr
    assert "Traceback" not in no.stderr
    vault = Vault.open(env.settings)
    assert incident["id"] in {i.id for i in list_incidents(vault, "open")}
    assert vault.logged_quarantine(artifact_id) is not None
    # The refusal is in the signed log: the release, the lift and the resolution refused.
    outcomes = [
        (event.kind, event.outcome)
        for _, entry in vault.tlog.verified_entries()
        if (event := Event.parse(entry)).phase == "outcome"
        and event.kind in {"artifact.released", "incident.lifted", "incident.resolved"}
    ]
    assert outcomes == [
        ("artifact.released", "refused"),
        ("incident.lifted", "refused"),
        ("incident.resolved", "refused"),
    ]

    # With two release approvals: the quarantine is lifted and the incident resolved.
    approved(vault, artifact_id, "release")
    yes = cli_json("incident", "resolve", incident["id"], "--justification", "rebuilt from the kit")
    assert yes["status"] == "resolved"
    got = tmp_path / "got"
    read = cli("get", artifact_id, "--out", str(got))
    assert read.returncode == 0, read.stderr
    assert (got / path).read_bytes() == original  # bit-identical to the model trained
    assert cli("verify", artifact_id).returncode == 0
    vault = Vault.open(env.settings)
    assert vault.logged_quarantine(artifact_id) is None
    log, _ = verify_audit(vault)
    assert log.ok, [p.line() for p in log.problems]


def steps_index(vault: Vault, artifact_id: str) -> int:
    """The log index of the artifact's quarantine in force."""
    held = vault.logged_quarantine(artifact_id)
    assert held is not None
    return held.index


def test_an_artifact_without_a_kit_is_left_for_escrow_or_manual_recovery(
    env: Stored, tmp_path: Path
) -> None:
    vault = Vault.open(env.settings)
    bare = ingest.put(vault, make_tree(tmp_path / "bare", {"w.bin": b"b" * 2048}), "bare")
    plan = ContainmentPlan("inc-bare", "integrity_failures", "high", (bare.artifact_id,))
    plan = ContainmentPlan.from_incident({**plan.to_dict(), "actions": ["recover"]})
    step = run_step(vault, plan, "recover_artifacts")
    # Not a failure of the playbook: reported, nothing replaced, the artifact still reads.
    assert step.status == "skipped", step
    assert f"{bare.artifact_id}: needs escrow or manual recovery" in step.detail
    assert "no rebuild kit" in step.detail
    assert vault.verify(bare.artifact_id).content_digest == bare.artifact.content_digest
