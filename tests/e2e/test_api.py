"""The public Python API, as a training job calls it at its end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import weightvault
from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from weightvault.config import Settings
from weightvault.errors import IntegrityError, InvalidInputError


def test_push_verify_pull_from_a_training_repo(
    vault_settings: Settings, model_repo: Path, tmp_path: Path
) -> None:
    vault = weightvault.open(vault_settings.home, config_dir=REPO / "config")
    art = vault.push(
        model_repo / "model",
        name="digits",
        model_repo=model_repo,
        run_id="job-7",
        lock_file=REPO / "uv.lock",
    )
    assert isinstance(art, weightvault.Artifact)
    assert (art.name, art.tier, art.duplicate_of) == ("digits", "hot", None)
    assert art.content_digest.startswith("sha256:")
    report = vault.verify(art.id)
    assert (report.artifact_id, report.files) == (art.id, art.files)
    out = vault.pull(art.id, tmp_path / "restored")
    for name in ("model.safetensors", "config.json"):
        assert (out / name).read_bytes() == (model_repo / "model" / name).read_bytes()
    assert [a.id for a in vault.artifacts("hot")] == [art.id]
    again = vault.push(model_repo / "model", name="digits-again", allow_incomplete=True)
    assert again.duplicate_of == art.id


def test_push_refuses_incomplete_provenance_unless_allowed(
    vault_settings: Settings, tmp_path: Path
) -> None:
    vault = weightvault.open(vault_settings.home, config_dir=REPO / "config")
    src = make_tree(tmp_path / "out", {"w.bin": weights(1000)})
    not_a_repo = tmp_path / "norepo"
    not_a_repo.mkdir()
    with pytest.raises(InvalidInputError, match="provenance is incomplete"):
        vault.push(src, name="w", model_repo=not_a_repo, run_id="r")
    assert vault.artifacts() == []
    art = vault.push(src, name="w", model_repo=not_a_repo, run_id="r", allow_incomplete=True)
    assert vault.artifact(art.id[:16]) == art


def test_pull_of_tampered_ciphertext_raises_and_writes_nothing(
    vault_settings: Settings, tmp_path: Path
) -> None:
    vault = weightvault.open(vault_settings.home, config_dir=REPO / "config")
    art = vault.push(make_tree(tmp_path / "o", {"w.bin": weights(40_000)}), name="w")
    engine = weightvault.artifacts.Vault.open(vault_settings)
    key = engine.catalog.files_of(art.id)[0]["object_key"]
    data = bytearray(engine.store.get_bytes(engine.bucket("hot"), key))
    data[100] ^= 1
    engine.store.put_bytes(engine.bucket("hot"), key, bytes(data))
    with pytest.raises(IntegrityError):
        vault.pull(art.id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert isinstance(IntegrityError("x"), weightvault.VaultError)


def test_importing_the_payload_format_stays_light() -> None:
    code = (
        "import sys\n"
        "import weightvault.crypto.chunked\n"
        "heavy = [m for m in ('minio', 'sqlalchemy', 'great_expectations', 'prefect')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert proc.stdout.strip() == ""
