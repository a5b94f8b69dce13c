"""Recover's steps that need no store: the lock's pins, the offline environment, the kit."""

from __future__ import annotations

import hashlib
import importlib.metadata
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


def test_a_lock_format_the_rebuild_cannot_install_is_named(tmp_path: Path) -> None:
    lock = b"version = 1\n"
    ws, src = _workspace(tmp_path, lock, "uv.lock")
    with pytest.raises(EnvironmentLockError, match=r"uv\.lock is not a requirements file"):
        environment(_plan(lock, "uv.lock"), ws, src, "auto")


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
