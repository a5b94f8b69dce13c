"""Issue 19 item 1: `weightvault adopt SOURCE` takes stock of existing models, then brings
them in with backfilled provenance (real store, real git, real files, the real CLI)."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.support.durable_store import CLI, cli
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import AdoptSourceError, QuarantinedError
from weightvault.lifecycle.promote import check_integrity, check_policy
from weightvault.lifecycle.promote import plan as plan_promotion

REPO = Path(__file__).resolve().parents[2]


def _model(folder: Path, seed: int, *, rows: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file(
        {"w": rng.standard_normal((rows, 4)).astype(np.float32)}, folder / "model.safetensors"
    )
    (folder / "config.json").write_text(json.dumps({"seed": seed}))
    return folder


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip()


def _three_models(root: Path) -> str:
    """alpha (safetensors), beta (a pickle .bin), gamma (in a git repo); gamma's commit."""
    _model(root / "alpha", 1)
    beta = root / "beta"
    beta.mkdir(parents=True)
    (beta / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (beta / "config.json").write_text("{}")
    gamma = _model(root / "gamma", 3)
    (gamma / "train.py").write_text("print('train')\n")
    _git(gamma, "init", "-q", "-b", "main")
    _git(gamma, "remote", "add", "origin", "https://example.com/acme/gamma.git")
    _git(gamma, "add", "-A")
    _git(gamma, "commit", "-q", "-m", "model")
    return _git(gamma, "rev-parse", "HEAD")


def _json(proc: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    assert proc.returncode == code, proc.stderr
    return json.loads(proc.stdout)


def _by_key(report: dict[str, Any], part: str) -> dict[str, dict[str, Any]]:
    return {c["key"]: c for c in report[part]}


def _statement_provenance(vault: Vault, artifact_id: str) -> dict[str, Any]:
    row = vault.resolve(artifact_id)
    manifest, _dek = vault.load_manifest(row.id, row.tier)
    statement = vault.verify_statement(row.id, row.tier, manifest)
    extra = statement["predicate"]["buildDefinition"]["externalParameters"]["extra"]
    return dict(extra["provenance"])


def test_a_directory_of_three_models_is_inventoried_adopted_and_never_stored_twice(
    vault: Vault, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    commit = _three_models(root)
    inventory_file = tmp_path / "inventory.json"

    dry = _json(cli("adopt", str(root), "--dry-run", "--inventory", str(inventory_file)))
    found = _by_key(dry, "candidates")
    assert set(found) == {"alpha", "beta", "gamma"}
    assert json.loads(inventory_file.read_text())["candidates"] == dry["candidates"]
    assert {f["format"] for f in found["alpha"]["files"]} == {"safetensors", "json"}
    assert found["beta"]["gates"]["ingest"] == "quarantine"
    assert [f["format"] for f in found["beta"]["files"] if f["path"].endswith(".bin")] == ["pickle"]
    assert found["alpha"]["gates"]["ingest"] == "admit"
    git = found["gamma"]["recovered"]["git"]
    assert git["commit"] == commit
    assert git["dirty"] is False
    assert git["remote"] == "https://example.com/acme/gamma.git"
    assert found["alpha"]["recovered"] == {}
    assert "git_commit" in found["alpha"]["missing"]
    assert any(r.startswith("backfilled:") for r in found["gamma"]["gates"]["warm"])
    assert vault.catalog.list_artifacts() == [], "a dry run stores nothing"

    first = _json(cli("adopt", str(root)))
    results = _by_key(first, "results")
    assert {k: r["status"] for k, r in results.items()} == {
        "alpha": "adopted",
        "beta": "quarantined",
        "gamma": "adopted",
    }
    rows = {r.id: r for r in vault.catalog.list_artifacts()}
    assert len(rows) == 3
    assert rows[results["beta"]["artifact_id"]].tier == "quarantine"
    with pytest.raises(QuarantinedError):
        vault.get(results["beta"]["artifact_id"], tmp_path / "beta-out")

    gamma = _statement_provenance(vault, results["gamma"]["artifact_id"])
    assert gamma["git_commit"] == commit
    assert gamma["backfilled"]["source"] == "dir"
    assert gamma["backfilled"]["recovered"]["git"]["commit"] == commit
    assert "creator" in gamma["backfilled"]["missing"]
    alpha = _statement_provenance(vault, results["alpha"]["artifact_id"])
    assert alpha["git_commit"] is None
    assert "git_commit" in alpha["backfilled"]["missing"]
    stored = tmp_path / "alpha-out"
    vault.get(results["alpha"]["artifact_id"], stored)
    assert (stored / "model.safetensors").read_bytes() == (
        root / "alpha" / "model.safetensors"
    ).read_bytes()
    gamma_out = tmp_path / "gamma-out"
    vault.get(results["gamma"]["artifact_id"], gamma_out)
    assert not (gamma_out / ".git").exists(), "version control metadata is not the model"

    second = _json(cli("adopt", str(root)))
    assert {r["status"] for r in second["results"]} == {"present"}
    assert {r["key"]: r["artifact_id"] for r in second["results"]} == {
        k: r["artifact_id"] for k, r in results.items()
    }
    assert len(vault.catalog.list_artifacts()) == 3, "a second run stores nothing twice"


def test_adopted_provenance_needs_an_approval_for_warm(vault: Vault, tmp_path: Path) -> None:
    root = tmp_path / "models"
    _model(root / "solo", 7)
    adopted = _json(cli("adopt", str(root)))["results"][0]
    p = plan_promotion(vault, adopted["artifact_id"], "warm", justification="adopt")
    gate, _digest = check_policy(vault, p, check_integrity(vault, p))
    assert not gate.passed
    assert any(r.startswith("backfilled: adopted provenance reaches warm") for r in gate.reasons)


def test_a_run_killed_midway_resumes_without_storing_anything_twice(
    vault: Vault, tmp_path: Path
) -> None:
    root = tmp_path / "big"
    # Large enough that the kill lands while the later candidates are still to come.
    for i in range(3):
        _model(root / f"m{i}", 10 + i, rows=4 * 1024 * 1024)
    proc = subprocess.Popen(
        [*CLI, "adopt", str(root), "--json"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not vault.catalog.list_artifacts() and time.monotonic() < deadline:
            assert proc.poll() is None, "adopt ended before it was killed"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done_before = {r.content_digest for r in vault.catalog.list_artifacts()}
    assert 1 <= len(done_before) < 3, "the kill landed midway"

    resumed = _json(cli("adopt", str(root)))
    statuses = [r["status"] for r in resumed["results"]]
    assert statuses.count("present") == len(done_before)
    assert statuses.count("adopted") == 3 - len(done_before)
    digests = [r.content_digest for r in vault.catalog.list_artifacts()]
    assert len(digests) == 3
    assert len(set(digests)) == 3


def test_an_s3_prefix_on_a_second_bucket_is_adopted(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"legacy-{uuid.uuid4().hex[:10]}"
    client = vault.store.client
    client.make_bucket(bucket)
    local = _model(tmp_path / "src" / "bert", 21)
    (local / "old.pt").write_bytes(pickle.dumps([1, 2, 3]))
    for path in sorted(local.iterdir()):
        data = path.read_bytes()
        client.put_object(bucket, f"team/models/bert/{path.name}", io.BytesIO(data), len(data))
    _model(tmp_path / "src" / "roberta", 22)
    for path in sorted((tmp_path / "src" / "roberta").iterdir()):
        data = path.read_bytes()
        client.put_object(bucket, f"team/models/roberta/{path.name}", io.BytesIO(data), len(data))

    dry = _json(cli("adopt", f"s3://{bucket}/team/models", "--dry-run"))
    found = _by_key(dry, "candidates")
    assert set(found) == {"bert", "roberta"}
    assert dry["source"]["kind"] == "s3"
    assert found["bert"]["gates"]["ingest"] == "quarantine"
    assert found["roberta"]["recovered"]["s3"]["prefix"] == "team/models/roberta/"

    # The same prefix through --endpoint, with credentials from the environment.
    endpoint = vault.store.endpoint
    monkeypatch.setenv("WEIGHTVAULT_ADOPT_ACCESS_KEY", os.environ["WEIGHTVAULT_S3_ACCESS_KEY"])
    monkeypatch.setenv("WEIGHTVAULT_ADOPT_SECRET_KEY", os.environ["WEIGHTVAULT_S3_SECRET_KEY"])
    done = _json(cli("adopt", f"s3://{bucket}/team/models", "--endpoint", f"http://{endpoint}"))
    statuses = {r["key"]: r["status"] for r in done["results"]}
    assert statuses == {"bert": "quarantined", "roberta": "adopted"}
    roberta = next(r for r in done["results"] if r["key"] == "roberta")
    prov = _statement_provenance(vault, roberta["artifact_id"])
    assert prov["backfilled"]["recovered"]["s3"]["bucket"] == bucket
    assert os.environ["WEIGHTVAULT_S3_SECRET_KEY"] not in json.dumps(done)


def _hf_cache(root: Path, revision: str) -> Path:
    repo = root / "models--acme--tiny-bert"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    staged = _model(root / "plain", 31)
    for name in ("model.safetensors", "config.json"):
        blob = repo / "blobs" / f"blob-{name}"
        blob.write_bytes((staged / name).read_bytes())
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return snapshot


def test_a_hugging_face_cache_is_adopted_with_its_repo_id_and_revision(
    vault: Vault, tmp_path: Path
) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hub"
    _hf_cache(cache, revision)
    done = _json(cli("adopt", str(cache)))
    assert done["source"]["kind"] == "hf"
    [result] = done["results"]
    assert result["status"] == "adopted"
    assert result["name"] == "acme/tiny-bert"
    prov = _statement_provenance(vault, result["artifact_id"])
    hf = prov["backfilled"]["recovered"]["huggingface"]
    assert hf == {"repo_id": "acme/tiny-bert", "revision": revision, "refs": ["main"]}
    out = tmp_path / "out"
    vault.get(result["artifact_id"], out)
    # The links' targets are stored as files (and get adds the OMS signature, model.sig).
    assert {"config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    assert not any(p.is_symlink() for p in out.iterdir())


def test_a_cache_link_out_of_its_blobs_is_refused(vault: Vault, tmp_path: Path) -> None:
    del vault
    cache = tmp_path / "hub"
    snapshot = _hf_cache(cache, "89abcdef0123456789abcdef0123456789abcdef")
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("not the model's")
    (snapshot / "notes.txt").symlink_to(secret)
    proc = cli("adopt", str(cache))
    assert proc.returncode == AdoptSourceError.exit_code, proc.stderr
    assert "links outside the cache's blobs/" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_an_mlflow_root_is_adopted_with_its_run(vault: Vault, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex
    run = tmp_path / "mlruns" / "7" / run_id
    _model(run / "artifacts" / "model", 41)
    (run / "artifacts" / "model" / "MLmodel").write_text("flavors: {}\n")
    (run / "meta.yaml").write_text(f"run_id: {run_id}\nrun_name: digits-run\nuser_id: dana\n")
    (run / "tags").mkdir()
    (run / "tags" / "mlflow.source.git.commit").write_text("ab" * 20)
    done = _json(cli("adopt", str(tmp_path / "mlruns")))
    assert done["source"]["kind"] == "mlflow"
    [candidate] = done["candidates"]
    assert candidate["recognised"] == "an MLflow run's artifacts (an MLflow model)"
    [result] = done["results"]
    prov = _statement_provenance(vault, result["artifact_id"])
    assert prov["run_id"] == run_id
    assert "run_id" not in prov["missing"]
    mlflow = prov["backfilled"]["recovered"]["mlflow"]
    assert mlflow["git_commit"] == "ab" * 20
    assert mlflow["run_name"] == "digits-run"


def test_a_source_with_no_model_is_one_line_and_its_own_exit_code(
    vault: Vault, tmp_path: Path
) -> None:
    del vault
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("no model here")
    proc = cli("adopt", str(tmp_path / "docs"))
    assert proc.returncode == AdoptSourceError.exit_code
    assert "found no model artifact" in proc.stderr
    assert proc.stderr.count("\n") == 1
    missing = cli("adopt", str(tmp_path / "nowhere"))
    assert missing.returncode == AdoptSourceError.exit_code
    assert "is not a directory" in missing.stderr


def test_the_adopt_flow_inventories_then_adopts_and_publishes_its_report(
    vault_settings: Settings, prefect_api: None, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client

    from flows.adopt import adopt

    root = tmp_path / "models"
    _model(root / "one", 51)
    (root / "two").mkdir()
    (root / "two" / "weights.pkl").write_bytes(pickle.dumps({"w": 1}))
    dry = adopt(source=str(root), return_state=True)
    assert dry.is_completed(), dry.message
    assert dry.result() == {
        "source": str(root.resolve()),
        "candidates": 2,
        "dry_run": True,
        "counts": {},
        "artifact_ids": [],
    }
    vault = Vault.open(vault_settings)
    assert vault.catalog.list_artifacts() == []
    state = adopt(source=str(root), dry_run=False, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["counts"] == {"adopted": 1, "quarantined": 1}
    assert sorted(summary["artifact_ids"]) == sorted(r.id for r in vault.catalog.list_artifacts())

    async def report() -> str:
        async with get_client() as client:
            found = await client.read_latest_artifacts()
            return next(str(a.data) for a in found if a.key == "adopt-report")

    import asyncio

    markdown = asyncio.run(report())
    assert "| `two` |" in markdown
    assert "quarantined" in markdown
