"""Recover: rebuild from the stored kit against real git, DVC and SeaweedFS (issue 13, 1-2).

One vault with its own embedded store (the DVC role credential is real), one
reference-model ingest and one small non-deterministic model, for the module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.durable_store import cli
from support.services import start_vault_store

from pipeline.workspace import run
from tests.support.model_repos import reference_copy, tiny_model_repo
from tests.support.tiers import promote_into
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import DatasetMismatchError, ReproducibilityError, RetentionError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.kit import BUNDLE_PATH, KIT_DOC_PATH
from weightvault.lifecycle.recover import certificates, recover
from weightvault.provenance import capture_provenance
from weightvault.records import REBUILD_KIT, Manifest
from weightvault.store import EmbeddedStore, dvc_remote
from weightvault.store.layout import envelope_key, manifest_key, statement_key

REPO = Path(__file__).resolve().parents[2]

_TRAIN = """\
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

# Seeded from the clock: every run trains other weights (what recover must catch).
rng = np.random.default_rng(time.time_ns())
Path("model").mkdir(exist_ok=True)
save_file(
    {"bias": np.zeros(4, dtype=np.float32), "w": rng.standard_normal((4, 4)).astype(np.float32)},
    "model/model.safetensors",
)
"""


@dataclass(frozen=True)
class Kit:
    settings: Settings
    repo: Path
    digits: str
    noisy: str
    noisy_repo: Path


def _ingest(vault: Vault, repo: Path, name: str) -> str:
    provenance = capture_provenance(
        repo,
        run_id=f"run-{name}",
        creator="alice",
        lock_file=None,
        parent=None,
        allow_incomplete=False,
    )
    result = ingest.put(vault, repo / "model", name, provenance=provenance, model_repo=repo)
    return result.artifact_id


def _warm_uv_cache(requirements: Path, venv: Path) -> None:
    """Put the pinned packages in uv's cache: an isolated rebuild installs offline from it.

    ``uv sync`` of the project fills the cache with wheels but not the index pages an
    offline ``uv pip install -r`` resolves from; this install (online) fills both.
    """
    uv = str(REPO / ".tools" / "bin" / "uv")
    subprocess.run([uv, "venv", "-q", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    install = [uv, "pip", "install", "-q", "--python", python, "-r", str(requirements)]
    subprocess.run(install, check=True, capture_output=True)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory, model_repo: Path) -> Iterator[Kit]:
    root = tmp_path_factory.mktemp("recover")
    settings = load_settings(REPO / "config", home=root / "home")
    start_vault_store(settings)
    try:
        # The session's reference repo, copied: this module's remote is its own store.
        repo = reference_copy(model_repo, root / "digits-repo", dvc_remote(settings))
        vault = Vault.open(settings)
        digits = _ingest(vault, repo, "digits")
        # Its train stage seeds from the clock: every run trains other weights.
        noisy_repo = tiny_model_repo(
            root / "noisy", dvc_remote(settings), "x,y\n1,2\n3,4\n", train=_TRAIN
        )
        noisy = _ingest(vault, noisy_repo, "noisy")
        _warm_uv_cache(noisy_repo / "requirements.txt", root / "warm-venv")
        yield Kit(settings, repo, digits, noisy, noisy_repo)
    finally:
        EmbeddedStore.of(settings).down()


@pytest.fixture
def env_home(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> Kit:
    """The CLI (and flow tasks) find the module's vault; uv is on PATH for an isolated env."""
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(kit.settings.home))
    monkeypatch.setenv("PATH", f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return kit


def _manifest(vault: Vault, artifact_id: str) -> tuple[Manifest, bytes]:
    data = vault.store.get_bytes(vault.bucket("hot"), manifest_key(artifact_id))
    return Manifest.parse(data)[0], data


def test_the_kit_is_stored_beside_the_files_and_named_by_the_statement(kit: Kit) -> None:
    vault = Vault.open(kit.settings)
    manifest, _ = _manifest(vault, kit.digits)
    kit_paths = {f.path for f in manifest.files_with_role(REBUILD_KIT)}
    assert {
        BUNDLE_PATH,
        KIT_DOC_PATH,
        ".weightvault/rebuild-kit/lock/requirements.txt",
    } == kit_paths
    # The content digest is the model files' only: the same as without a kit.
    model = {f.path for f in manifest.model_files}
    assert model == {p.name for p in (kit.repo / "model").iterdir()}
    statement = vault.verify_statement(kit.digits, "hot", manifest)
    named = statement["predicate"]["buildDefinition"]["externalParameters"]["artifact"]
    signed = {f["path"]: f["sha256"] for f in named["manifest"]["files"]}
    assert {f.path: f.sha256 for f in manifest.files} == signed
    lock = hashlib.sha256((kit.repo / "requirements.txt").read_bytes()).hexdigest()
    assert signed[".weightvault/rebuild-kit/lock/requirements.txt"] == lock


def test_deleted_ciphertext_is_rebuilt_restored_and_certified(
    env_home: Kit, tmp_path: Path
) -> None:
    kit = env_home
    vault = Vault.open(kit.settings)
    manifest, _ = _manifest(vault, kit.digits)
    old_envelope = vault.store.get_bytes(vault.bucket("envelopes"), envelope_key(kit.digits, "hot"))
    # The attack (or the accident): the model files' ciphertext deleted straight from the store.
    for entry in manifest.model_files:
        vault.store.remove(vault.bucket("hot"), entry.object_key)
    assert cli("verify", kit.digits).returncode != 0

    done = cli("recover", kit.digits, "--restore")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["restored"] is True
    assert report["source"] == "bundle"
    assert report["content_digest"] == manifest.content_digest
    assert {d["path"] for d in report["datasets"]} == {"data/prepared"}

    vault = Vault.open(kit.settings)
    assert vault.verify(kit.digits).content_digest == manifest.content_digest
    out = tmp_path / "out"
    vault.get(kit.digits, out)
    for entry in manifest.model_files:
        assert (out / entry.path).read_bytes() == (kit.repo / "model" / entry.path).read_bytes()
    assert not (out / ".weightvault").exists()
    # Fresh DEK, new ciphertext objects, same id and content digest.
    new, _ = _manifest(vault, kit.digits)
    assert new.content_digest == manifest.content_digest
    assert not {f.object_key for f in new.files} & {f.object_key for f in manifest.files}
    new_envelope = vault.store.get_bytes(vault.bucket("envelopes"), envelope_key(kit.digits, "hot"))
    assert new_envelope != old_envelope

    # The certificate: listed by show, verified against the log, naming the right digests.
    shown = cli("show", kit.digits)
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)["certificates"]
    assert [c["verified"] for c in listed] == [True]
    assert listed[0]["content_digest"] == manifest.content_digest
    assert listed[0]["git_commit"] == run(kit.repo, "git", "rev-parse", "HEAD").strip()
    statement = vault.store.get_bytes(vault.bucket("audit"), report["certificate"]["key"])
    envelope = json.loads(statement)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload["predicateType"] == "https://weightvault.dev/attestations/reproducibility/v1"
    assert payload["subject"][0]["digest"]["sha256"] == manifest.content_digest.removeprefix(
        "sha256:"
    )
    outputs = {f["path"]: f["sha256"] for f in payload["predicate"]["outputs"]["files"]}
    assert outputs == {f.path: f.sha256 for f in manifest.model_files}
    env_lock = payload["predicate"]["inputs"]["environment"]["lock_file_sha256"]
    assert env_lock == hashlib.sha256((kit.repo / "requirements.txt").read_bytes()).hexdigest()


def test_a_changed_dataset_in_the_dvc_remote_is_refused(env_home: Kit) -> None:
    kit = env_home
    vault = Vault.open(kit.settings)
    train = kit.repo / "data" / "prepared" / "train.csv"
    md5 = hashlib.md5(train.read_bytes(), usedforsecurity=False).hexdigest()
    key = f"files/md5/{md5[:2]}/{md5[2:]}"
    dvc_bucket = kit.settings.store.bucket("dvc")
    original = vault.store.get_bytes(dvc_bucket, key)
    objects_before = sorted(o.key for o in vault.store.list(vault.bucket("hot"), ""))
    manifest_before = vault.store.get_bytes(vault.bucket("hot"), manifest_key(kit.digits))
    vault.store.put_bytes(dvc_bucket, key, original.replace(b"1", b"2", 1))
    try:
        with pytest.raises(DatasetMismatchError) as err:
            recover(vault, kit.digits, restore_files=True)
    finally:
        vault.store.put_bytes(dvc_bucket, key, original)
    message = err.value.message
    assert "data/prepared" in message
    provenance = _provenance(vault, kit.digits)
    recorded = next(d for d in provenance["datasets"] if d["path"] == "data/prepared")
    assert recorded["dvc_md5"] in message
    assert recorded["sha256"] in message
    # Both digests of what was pulled, beside the recorded ones.
    assert message.count(" recorded, ") == 2
    assert message.count(" pulled") == 2
    # Nothing stored was replaced.
    assert sorted(o.key for o in vault.store.list(vault.bucket("hot"), "")) == objects_before
    assert vault.store.get_bytes(vault.bucket("hot"), manifest_key(kit.digits)) == manifest_before
    assert _last_outcome(vault, kit.digits)["outcome"] == "failed"


def _last_outcome(vault: Vault, artifact_id: str) -> dict[str, Any]:
    """The log's last outcome of a recovery of the artifact (history() gives only ok ones)."""
    entries = [json.loads(raw) for _, raw in vault.tlog.iter_entries()]
    return [
        e
        for e in entries
        if e["kind"] == "artifact.recovered"
        and e["phase"] == "outcome"
        and e["artifact_id"] == artifact_id
    ][-1]


def _provenance(vault: Vault, artifact_id: str) -> dict[str, object]:
    manifest, _ = _manifest(vault, artifact_id)
    statement = vault.verify_statement(artifact_id, "hot", manifest)
    return dict(
        statement["predicate"]["buildDefinition"]["externalParameters"]["extra"]["provenance"]
    )


def test_a_non_deterministic_stage_reports_the_tensors_and_replaces_nothing(env_home: Kit) -> None:
    kit = env_home
    vault = Vault.open(kit.settings)
    before = {
        key: vault.store.get_bytes(vault.bucket("hot"), key)
        for key in (manifest_key(kit.noisy), statement_key(kit.noisy))
    }
    objects_before = sorted(o.key for o in vault.store.list(vault.bucket("hot"), ""))
    with pytest.raises(ReproducibilityError) as err:
        # An isolated venv from the model repo's own lock (uv, offline).
        recover(vault, kit.noisy, restore_files=True, environment_mode="isolated")
    message = err.value.message
    assert "model.safetensors differs" in message
    assert "w: data differs from byte 0" in message
    assert "bias" not in message
    assert "nothing replaced" in message
    logged = _last_outcome(vault, kit.noisy)
    assert logged["outcome"] == "failed"
    assert logged["details"]["environment"] == "isolated"
    assert [t["name"] for t in logged["details"]["tensors"]["model.safetensors"]] == ["w"]
    after = {key: vault.store.get_bytes(vault.bucket("hot"), key) for key in before}
    assert after == before
    assert sorted(o.key for o in vault.store.list(vault.bucket("hot"), "")) == objects_before
    assert certificates(vault, kit.noisy) == []


def test_the_recover_flow_certifies_under_prefect(env_home: Kit, prefect_api: None) -> None:
    from flows.recover import recover as recover_flow

    kit = env_home
    state = recover_flow(artifact_id=kit.digits, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["matched"] is True
    assert summary["restored"] is False
    vault = Vault.open(kit.settings)
    listed = certificates(vault, kit.digits)
    assert listed[-1]["statement"] == summary["certificate"]
    assert listed[-1]["verified"] is True
    entries = vault.history(kit.digits, {"artifact.recovered"})
    assert entries[-1].event.client["flow_run"] == str(state.state_details.flow_run_id)
    # The log, the catalog's index of it and the store agree after every kind of recovery
    # (restored, refused, certified without a restore).
    report, _counts = verify_audit(vault)
    assert report.ok, [p.__dict__ for p in report.problems]


def test_restore_of_a_cold_artifact_is_refused_before_anything_runs(kit: Kit) -> None:
    vault = Vault.open(kit.settings)
    # Another training run of the noisy model (new weights, so no dedup), promoted to cold
    # (its rebuild kit travels with it).
    run(kit.noisy_repo, "dvc", "repro", "-q", "--force")
    provenance = capture_provenance(
        kit.noisy_repo,
        run_id="run-cold",
        creator="alice",
        lock_file=None,
        parent=None,
        allow_incomplete=False,
    )
    cold = ingest.put(
        vault,
        kit.noisy_repo / "model",
        "noisy-cold",
        provenance=provenance,
        model_repo=kit.noisy_repo,
    ).artifact_id
    promote_into(vault, cold, "cold")
    before = sorted(o.key for o in vault.store.list(vault.bucket("cold"), ""))
    with pytest.raises(RetentionError, match=r"object-locked.*escrow decrypt"):
        recover(vault, cold, restore_files=True)
    assert sorted(o.key for o in vault.store.list(vault.bucket("cold"), "")) == before
    assert _last_outcome(vault, cold)["outcome"] == "refused"
