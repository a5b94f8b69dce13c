"""Recover's steps that need no store: the lock's pins, the offline environment, the kit."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
from pathlib import Path

import pytest

from weightvault.errors import EnvironmentLockError, IntegrityError, RebuildKitError
from weightvault.lifecycle.kit import BUNDLE_PATH, KitDocument, lock_path
from weightvault.lifecycle.recover import RecoverPlan, environment, source
from weightvault.records import REBUILD_KIT, FileEntry, Manifest

REPO = Path(__file__).resolve().parents[3]


def _plan(lock: bytes, name: str = "requirements.txt") -> RecoverPlan:
    entry = FileEntry("w.bin", 1, "0" * 64, 33, "artifacts/a/files/0.c2sp")
    manifest = Manifest("a" * 12, "m", "2026-01-01T00:00:00Z", "alice", "hot", (entry,))
    provenance = {
        "git_commit": "1" * 40,
        "environment": {"lock_file": name, "lock_file_sha256": hashlib.sha256(lock).hexdigest()},
        "lock_files": [{"path": name, "sha256": hashlib.sha256(lock).hexdigest()}],
    }
    return RecoverPlan(manifest.artifact_id, "hot", "m", manifest, provenance, False)


def _workspace(tmp_path: Path, lock: bytes, name: str = "requirements.txt") -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    target = ws / "kit" / lock_path(name)
    target.parent.mkdir(parents=True)
    target.write_bytes(lock)
    src = ws / "src"
    src.mkdir()
    return ws, src


def test_a_lock_this_interpreter_satisfies_reuses_it(tmp_path: Path) -> None:
    lock = f"numpy=={importlib.metadata.version('numpy')}\n# a comment\n".encode()
    ws, src = _workspace(tmp_path, lock)
    env = environment(_plan(lock), ws, src, "auto")
    assert env.mode == "current"
    assert env.lock_file == "requirements.txt"
    assert env.lock_sha256 == hashlib.sha256(lock).hexdigest()


def test_a_lock_that_cannot_be_satisfied_offline_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    lock = b"numpy==0.0.1\n"
    ws, src = _workspace(tmp_path, lock)
    with pytest.raises(EnvironmentLockError, match=r"requirements.txt cannot be satisfied offline"):
        environment(_plan(lock), ws, src, "auto")
    with pytest.raises(EnvironmentLockError, match="does not have every pin"):
        environment(_plan(lock), ws, src, "current")


def test_a_lock_whose_bytes_are_not_the_recorded_ones_is_refused(tmp_path: Path) -> None:
    ws, src = _workspace(tmp_path, b"numpy==1.0\n")
    with pytest.raises(EnvironmentLockError, match="neither in the kit nor the source"):
        environment(_plan(b"numpy==2.0\n"), ws, src, "auto")


def _numpy() -> str:
    return importlib.metadata.version("numpy")


def test_a_uv_lock_is_exported_frozen_and_reused_when_the_interpreter_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    lock = (REPO / "uv.lock").read_bytes()
    ws, src = _workspace(tmp_path, lock, "uv.lock")
    (src / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())
    env = environment(_plan(lock, "uv.lock"), ws, src, "auto")
    assert env.mode == "current"
    exported = (ws / "lock" / "requirements-from-uv.txt").read_text()
    assert f"numpy=={_numpy()}" in exported
    assert "weightvault" not in exported.split("# via")[0]


def test_a_uv_lock_without_its_pyproject_is_refused_naming_it(tmp_path: Path) -> None:
    lock = (REPO / "uv.lock").read_bytes()
    ws, src = _workspace(tmp_path, lock, "uv.lock")
    with pytest.raises(EnvironmentLockError, match=r"uv\.lock needs the source's pyproject"):
        environment(_plan(lock, "uv.lock"), ws, src, "auto")


@pytest.mark.parametrize("name", ["poetry.lock", "pdm.lock"])
def test_a_toml_lock_becomes_pins(tmp_path: Path, name: str) -> None:
    lock = f'[[package]]\nname = "numpy"\nversion = "{_numpy()}"\n'.encode()
    ws, src = _workspace(tmp_path, lock, name)
    env = environment(_plan(lock, name), ws, src, "auto")
    assert env.mode == "current"
    assert env.lock_file == name


def test_a_lock_taking_a_package_from_git_is_refused_naming_it(tmp_path: Path) -> None:
    lock = (
        b'[[package]]\nname = "evil"\nversion = "1.0"\n'
        b'[package.source]\ntype = "git"\nurl = "https://example.invalid/evil.git"\n'
    )
    ws, src = _workspace(tmp_path, lock, "poetry.lock")
    with pytest.raises(EnvironmentLockError, match=r"poetry\.lock takes evil from outside"):
        environment(_plan(lock, "poetry.lock"), ws, src, "auto")


def test_a_pipfile_lock_applies_its_markers(tmp_path: Path) -> None:
    doc = {
        "default": {
            "numpy": {"version": f"=={_numpy()}"},
            "not-on-this-python": {"version": "==1.0", "markers": "python_version < '3'"},
        },
        "develop": {"pytest": {"version": "==0.0.1"}},
    }
    lock = json.dumps(doc).encode()
    ws, src = _workspace(tmp_path, lock, "Pipfile.lock")
    assert environment(_plan(lock, "Pipfile.lock"), ws, src, "auto").mode == "current"


def test_requirements_markers_are_evaluated(tmp_path: Path) -> None:
    lock = f"numpy=={_numpy()}\nnot-here==1.0 ; python_version < '3'\n".encode()
    ws, src = _workspace(tmp_path, lock)
    assert environment(_plan(lock), ws, src, "auto").mode == "current"


def test_a_requirement_that_is_not_an_exact_pin_is_refused(tmp_path: Path) -> None:
    lock = b"numpy>=1\n"
    ws, src = _workspace(tmp_path, lock)
    with pytest.raises(EnvironmentLockError, match="is not a pin"):
        environment(_plan(lock), ws, src, "auto")


def test_a_conda_environment_is_named_as_not_satisfiable_offline(tmp_path: Path) -> None:
    lock = b"name: train\ndependencies:\n  - numpy\n"
    ws, src = _workspace(tmp_path, lock, "environment.yml")
    with pytest.raises(EnvironmentLockError, match=r"environment\.yml is a conda environment"):
        environment(_plan(lock, "environment.yml"), ws, src, "auto")


def test_kit_entries_are_outside_the_content_digest_and_round_trip() -> None:
    model = FileEntry("w.bin", 1, "0" * 64, 33, "artifacts/a/files/0.c2sp")
    kit = FileEntry(".weightvault/rebuild-kit/kit.json", 2, "1" * 64, 34, "k", REBUILD_KIT)
    plain = Manifest("a" * 12, "m", "2026-01-01T00:00:00Z", "alice", "hot", (model,))
    with_kit = Manifest("a" * 12, "m", "2026-01-01T00:00:00Z", "alice", "hot", (model, kit))
    assert with_kit.content_digest == plain.content_digest
    assert with_kit.model_files == (model,)
    assert "role" not in plain.body_bytes().decode()
    parsed, _ = Manifest.parse(with_kit.to_bytes("00"))
    assert parsed.files_with_role(REBUILD_KIT) == (kit,)
    forged = with_kit.to_bytes("00").replace(b'"role":"rebuild-kit"', b'"role":"other"')
    with pytest.raises(IntegrityError, match="unknown role"):
        Manifest.parse(forged)


def test_a_malformed_kit_document_is_refused() -> None:
    with pytest.raises(RebuildKitError):
        KitDocument.parse(b'{"type":"weightvault.rebuild-kit/v9"}')
    doc = KitDocument("1" * 40, None, "model", False, (("requirements.txt", "2" * 64),))
    assert KitDocument.parse(doc.to_bytes()) == doc


def _git_repo(root: Path) -> tuple[Path, str]:
    repo = root / "origin"
    repo.mkdir()
    (repo / "train.py").write_text("print('train')\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    )
    return repo, head.stdout.strip()


def test_the_source_comes_from_the_bundle_else_the_recorded_remote(tmp_path: Path) -> None:
    repo, commit = _git_repo(tmp_path)
    ws = tmp_path / "ws"
    bundle = ws / "kit" / BUNDLE_PATH
    bundle.parent.mkdir(parents=True)
    subprocess.run(["git", "bundle", "create", "-q", str(bundle), "HEAD"], cwd=repo, check=True)
    kit = KitDocument(commit, str(repo), "", False, ())
    src, origin = source(ws, kit)
    assert origin == "bundle"
    assert (src / "train.py").read_text() == "print('train')\n"
    # The bundle lost: the recorded remote, at the same commit.
    bundle.unlink()
    src, origin = source(ws, kit)
    assert origin == "remote"
    assert (src / "train.py").is_file()
    # Neither: refused, naming both reasons; a commit the remote lacks is refused too.
    with pytest.raises(RebuildKitError, match="bundle is lost; remote"):
        source(ws, KitDocument("f" * 40, str(repo), "", False, ()))
    with pytest.raises(RebuildKitError, match="bundle is lost"):
        source(ws, KitDocument(commit, None, "", False, ()))
