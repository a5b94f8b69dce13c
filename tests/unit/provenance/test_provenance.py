"""Provenance capture against real git repositories and real DVC (no mocks)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.provenance import Provenance, capture_provenance, provenance_document
from weightvault.provenance._capture import (
    dataset_digests,
    dvc_remote,
    environment_fingerprint,
    git_state,
    installed_packages,
    public_url,
)
from weightvault.provenance._intoto import build_statement

VENV_BIN = Path(sys.executable).parent
DVC = str(VENV_BIN / "dvc")
GIT = shutil.which("git") or "git"

MAKE_FEATURES = """\
from pathlib import Path
rows = [p.read_text() for p in sorted(Path("data/raw").rglob("*.csv"))]
Path("data/features.csv").write_text("".join(rows))
"""


def tool_env(tmp: Path) -> dict[str, str]:
    """Env for git/dvc subprocesses: venv first on PATH, no analytics, no system git config."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env |= {
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site-cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    return run([GIT, *identity, "-c", "commit.gpgsign=false", *args], repo, env)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git+DVC repo: `dvc add data/raw`, then a stage deriving data/features.csv."""
    root = tmp_path_factory.mktemp("template")
    repo = root / "repo"
    (repo / "data" / "raw" / "sub").mkdir(parents=True)
    (repo / "data" / "raw" / "a.csv").write_text("x,y\n1,2\n")
    (repo / "data" / "raw" / "sub" / "b.csv").write_text("x,y\n3,4\n")
    (repo / "data" / "raw" / "notes.txt").write_bytes(bytes(range(256)) * 64)
    (repo / "make_features.py").write_text(MAKE_FEATURES)
    (repo / "uv.lock").write_text("version = 1\n")
    stage = {
        "cmd": "python make_features.py",
        "deps": ["data/raw", "make_features.py"],
        "outs": ["data/features.csv"],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"features": stage}}))
    env = tool_env(root)
    git(repo, env, "init", "-q")
    run([DVC, "init", "-q"], repo, env)
    run([DVC, "add", "-q", "data/raw"], repo, env)
    run([DVC, "repro", "-q"], repo, env)
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "pipeline")
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(template, copy, symlinks=True)
    return copy


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return tool_env(tmp_path)


def capture(repo: Path, **overrides: object) -> Provenance:
    kwargs: dict[str, object] = {
        "run_id": "run-42",
        "creator": "alice@example.com",
        "lock_file": None,
        "parent": None,
        "allow_incomplete": False,
    }
    kwargs |= overrides
    return capture_provenance(repo, **kwargs)  # type: ignore[arg-type]


def lock_md5s(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    stage = lock["stages"]["features"]
    return {item["path"]: item["md5"] for item in stage["deps"] + stage["outs"]}


def test_complete_provenance_from_real_git_and_dvc(repo: Path, env: dict[str, str]) -> None:
    prov = capture(repo, parent="artifact-parent-1")
    head = git(repo, env, "rev-parse", "HEAD").strip()
    assert prov.git_commit == head
    assert len(head) == 40
    assert prov.git_dirty is False
    assert prov.run_id == "run-42"
    assert prov.creator == "alice@example.com"
    assert prov.parent == "artifact-parent-1"
    assert prov.missing == ()
    assert prov.complete
    assert prov.started_at <= prov.finished_at
    assert prov.started_at.tzinfo == UTC
    assert prov.datasets is not None
    assert [d.path for d in prov.datasets] == ["data/features.csv", "data/raw"]


def test_crosswalk_md5_is_dvcs_and_sha256_is_hashlibs(repo: Path) -> None:
    datasets = {d.path: d for d in dataset_digests(repo)}
    md5s = lock_md5s(repo)
    assert "make_features.py" in md5s  # in dvc.lock, but not a dataset
    assert set(datasets) == {"data/features.csv", "data/raw"}

    features = datasets["data/features.csv"]
    content = (repo / "data" / "features.csv").read_bytes()
    assert features.dvc_md5 == md5s["data/features.csv"]
    assert features.dvc_md5 == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert features.sha256 == hashlib.sha256(content).hexdigest()
    assert features.size == len(content)
    assert features.files == ()

    raw = datasets["data/raw"]
    assert raw.dvc_md5 == md5s["data/raw"]
    assert raw.dvc_md5.endswith(".dir")
    relpaths = ["a.csv", "notes.txt", "sub/b.csv"]
    assert [f.relpath for f in raw.files] == relpaths
    listing = ""
    for f in raw.files:
        data = (repo / "data" / "raw" / f.relpath).read_bytes()
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        assert f.size == len(data)
        listing += f"{f.sha256}  {f.relpath}\n"
    assert raw.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert raw.size == sum(f.size for f in raw.files)


def test_dvc_add_tracked_dataset_matches_its_dvc_file(repo: Path) -> None:
    dvc_file = yaml.safe_load((repo / "data" / "raw.dvc").read_text())
    raw = {d.path: d for d in dataset_digests(repo)}["data/raw"]
    assert raw.dvc_md5 == dvc_file["outs"][0]["md5"]
    assert raw.size == dvc_file["outs"][0]["size"]


def test_modified_tracked_file_is_dirty(repo: Path) -> None:
    (repo / "make_features.py").write_text(MAKE_FEATURES + "# edited\n")
    commit, dirty = git_state(repo)
    assert dirty is True
    assert capture(repo).git_dirty is True
    assert capture(repo).git_commit == commit


def test_untracked_file_is_dirty(repo: Path) -> None:
    (repo / "scratch").mkdir()
    (repo / "scratch" / "notes.md").write_text("untracked\n")
    assert git_state(repo)[1] is True


def test_ignored_file_is_not_dirty(repo: Path, env: dict[str, str]) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, env, "add", ".gitignore")
    git(repo, env, "commit", "-q", "-m", "ignore logs")
    (repo / "train.log").write_text("ignored\n")
    assert git_state(repo)[1] is False


def test_staged_change_is_dirty(repo: Path, env: dict[str, str]) -> None:
    (repo / "new.py").write_text("x = 1\n")
    git(repo, env, "add", "new.py")
    assert git_state(repo)[1] is True


def test_changed_dataset_fails_its_md5(repo: Path) -> None:
    (repo / "data" / "features.csv").write_text("tampered\n")
    with pytest.raises(IntegrityError, match=r"data/features\.csv does not match"):
        dataset_digests(repo)


def test_changed_file_in_dataset_directory_fails_its_dir_md5(repo: Path) -> None:
    (repo / "data" / "raw" / "sub" / "extra.csv").write_text("x,y\n5,6\n")
    with pytest.raises(IntegrityError, match=r"data/raw does not match"):
        dataset_digests(repo)
    with pytest.raises(IntegrityError):
        capture(repo, allow_incomplete=True)


def test_not_a_git_repo_raises_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="git_commit") as info:
        capture(tmp_path)
    assert "\n" not in str(info.value)
    assert "datasets" in str(info.value)


def test_allow_incomplete_records_every_missing_field(tmp_path: Path) -> None:
    prov = capture(tmp_path, run_id=None, creator=None, allow_incomplete=True)
    assert prov.git_commit is None
    assert prov.git_dirty is None
    assert prov.datasets is None
    assert prov.run_id is None
    assert "lock_file_sha256" not in prov.environment
    assert "python_version" not in prov.environment  # the ingest host is not the training env
    assert "python_version" in prov.ingest_host
    assert (prov.git_remote, prov.dvc_stages, prov.dvc_remote, prov.lock_files) == (
        None,
        (),
        None,
        (),
    )
    assert set(prov.missing) >= {"git_commit", "git_dirty", "datasets", "run_id", "lock_file"}
    assert not prov.complete


@pytest.mark.parametrize("run_id", [None, "", "   "])
def test_missing_run_id_raises(repo: Path, run_id: str | None) -> None:
    with pytest.raises(InvalidInputError, match="run_id"):
        capture(repo, run_id=run_id)
    assert capture(repo, run_id=run_id, allow_incomplete=True).missing == ("run_id",)


def test_run_id_with_control_characters_is_refused(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="run_id"):
        capture(repo, run_id="run\n42")


def test_missing_dvc_lock_raises(repo: Path) -> None:
    (repo / "dvc.lock").unlink()
    with pytest.raises(InvalidInputError, match=r"datasets \(no dvc\.lock"):
        capture(repo)
    assert capture(repo, allow_incomplete=True).missing == ("datasets",)


def test_dataset_absent_from_workspace_is_missing(repo: Path) -> None:
    (repo / "data" / "features.csv").unlink()
    with pytest.raises(InvalidInputError, match=r"datasets .*features\.csv"):
        capture(repo)


def test_lock_without_datasets_is_missing(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="no dataset under corpus"):
        capture(repo, dataset_dirs=("corpus",))


def test_repo_without_commit_is_missing(tmp_path: Path, env: dict[str, str]) -> None:
    git(tmp_path, env, "init", "-q")
    with pytest.raises(InvalidInputError, match="no commit"):
        capture(tmp_path)


def test_missing_lock_file_raises(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="lock_file"):
        capture(repo, lock_file=repo / "nope.lock")
    assert capture(repo, lock_file=repo / "nope.lock", allow_incomplete=True).missing == (
        "lock_file",
    )


def test_creator_falls_back_to_user_then_git_email(
    repo: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("USER", "bob")
    assert capture(repo, creator=None).creator == "bob"

    monkeypatch.delenv("USER")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    with pytest.raises(InvalidInputError, match="creator"):
        capture(repo, creator=None)
    git(repo, env, "config", "user.email", "carol@example.com")
    assert capture(repo, creator=None).creator == "carol@example.com"


def test_malformed_dvc_lock_is_invalid_input_even_if_incomplete_allowed(repo: Path) -> None:
    (repo / "dvc.lock").write_text("stages: [not, a, mapping]\n")
    with pytest.raises(InvalidInputError, match="no stages mapping"):
        capture(repo, allow_incomplete=True)


def test_lock_path_escaping_the_repo_is_refused(repo: Path) -> None:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock["stages"]["features"]["outs"][0]["path"] = "data/../../outside.csv"
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    with pytest.raises(InvalidInputError, match="outside the repository"):
        dataset_digests(repo)


def test_timestamps_are_injectable_and_utc(repo: Path) -> None:
    ticks = iter(
        [datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2025, 1, 2, 3, 4, 9, tzinfo=UTC)]
    )
    prov = capture(repo, clock=lambda: next(ticks))
    assert prov.to_dict()["started_at"] == "2025-01-02T03:04:05.000000Z"
    assert prov.to_dict()["finished_at"] == "2025-01-02T03:04:09.000000Z"

    plus_two = timezone(timedelta(hours=2))
    given = capture(repo, started_at=datetime(2025, 1, 2, 5, 0, tzinfo=plus_two))
    assert given.to_dict()["started_at"] == "2025-01-02T03:00:00.000000Z"

    with pytest.raises(InvalidInputError, match="timezone-aware"):
        capture(repo, started_at=datetime(2025, 1, 2))
    with pytest.raises(InvalidInputError, match="before started_at"):
        capture(
            repo,
            started_at=datetime(2025, 1, 2, tzinfo=UTC),
            finished_at=datetime(2025, 1, 1, tzinfo=UTC),
        )


def test_round_trip_through_json(repo: Path, tmp_path: Path) -> None:
    for prov in (
        capture(repo, parent="parent-artifact"),
        capture(tmp_path, run_id=None, allow_incomplete=True),
    ):
        document = json.loads(json.dumps(prov.to_dict()))
        assert Provenance.from_dict(document) == prov
        assert Provenance.from_dict(document).to_dict() == prov.to_dict()


def test_to_dict_has_stable_keys(repo: Path) -> None:
    document = capture(repo).to_dict()
    assert list(document) == [
        "schema",
        "git_commit",
        "git_dirty",
        "datasets",
        "run_id",
        "environment",
        "creator",
        "started_at",
        "finished_at",
        "parent",
        "missing",
        "git_remote",
        "dvc_stages",
        "dvc_remote",
        "lock_files",
        "ingest_host",
    ]
    assert document["schema"] == "weightvault.provenance/v2"
    assert list(document["datasets"][0]) == ["path", "dvc_md5", "sha256", "size", "files"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("schema", "other/v9"),
        ("git_commit", "not-a-sha"),
        ("git_dirty", "yes"),
        ("missing", ["run_id"]),
        ("started_at", "yesterday"),
        ("surprise", 1),
    ],
)
def test_from_dict_rejects_malformed_documents(repo: Path, key: str, value: object) -> None:
    document = capture(repo).to_dict()
    document[key] = value
    with pytest.raises(InvalidInputError):
        Provenance.from_dict(document)


def test_from_dict_rejects_unrecorded_gap(repo: Path) -> None:
    document = capture(repo).to_dict()
    document["run_id"] = None
    with pytest.raises(InvalidInputError, match="missing list"):
        Provenance.from_dict(document)


def test_environment_fingerprint(repo: Path) -> None:
    lock = repo / "uv.lock"
    env = environment_fingerprint(lock)
    assert env["lock_file_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert env["lock_file"] == "uv.lock"
    assert env["python_version"] == ".".join(map(str, sys.version_info[:3]))
    packages = installed_packages()
    assert packages == sorted(set(packages))
    assert any(line.startswith("pyyaml==") for line in packages)
    assert env["packages_sha256"] == hashlib.sha256("\n".join(packages).encode()).hexdigest()
    assert env["packages_count"] == str(len(packages))
    assert "lock_file_sha256" not in environment_fingerprint(None)
    with pytest.raises(InvalidInputError, match="lock_file"):
        environment_fingerprint(repo / "missing.lock")


def test_project_lock_file_is_the_default(repo: Path) -> None:
    prov = capture(repo)
    expected = hashlib.sha256((repo / "uv.lock").read_bytes()).hexdigest()
    assert prov.environment["lock_file_sha256"] == expected


# -- enough to rebuild (schema v2) -------------------------------------------------


def test_dvc_stages_are_recorded_as_dvc_lock_has_them(repo: Path) -> None:
    prov = capture(repo)
    (stage,) = prov.dvc_stages
    md5s = lock_md5s(repo)
    assert stage.name == "features"
    assert stage.cmd == "python make_features.py"
    assert dict(stage.deps) == {k: md5s[k] for k in ("data/raw", "make_features.py")}
    assert dict(stage.outs) == {"data/features.csv": md5s["data/features.csv"]}
    assert stage.params_sha256 is None


def test_the_git_remote_is_recorded_without_credentials(repo: Path, env: dict[str, str]) -> None:
    git(
        repo,
        env,
        "remote",
        "add",
        "origin",
        "https://ci-bot:ghp_SECRETTOKEN@git.example.com/ml/model.git",
    )
    prov = capture(repo)
    assert prov.git_remote == "https://git.example.com/ml/model.git"
    assert "SECRETTOKEN" not in json.dumps(prov.to_dict())
    git(repo, env, "remote", "set-url", "origin", "git@git.example.com:ml/model.git")
    assert capture(repo).git_remote == "git@git.example.com:ml/model.git"
    assert public_url("https://host/x.git") == "https://host/x.git"


def test_the_dvc_remote_comes_from_config_never_config_local(
    repo: Path, env: dict[str, str]
) -> None:
    assert capture(repo).dvc_remote is None
    run([DVC, "remote", "add", "-d", "vault", "s3://weightvault-dvc/store"], repo, env)
    run(
        [DVC, "remote", "modify", "--local", "vault", "secret_access_key", "LOCALSECRET"], repo, env
    )
    run([DVC, "remote", "modify", "--local", "vault", "url", "s3://elsewhere/x"], repo, env)
    assert dvc_remote(repo) == "s3://weightvault-dvc/store"
    prov = capture(repo, allow_incomplete=True)
    assert prov.dvc_remote == "s3://weightvault-dvc/store"
    assert "LOCALSECRET" not in json.dumps(prov.to_dict())


def test_the_training_lock_files_are_the_model_repos_own(repo: Path) -> None:
    (repo / "uv.lock").unlink()
    (repo / "poetry.lock").write_text("[[package]]\nname = 'torch'\n")
    (repo / "requirements-dev.txt").write_text("pytest==8\n")
    (repo / "requirements.txt").write_text("torch==2.5.1\n")
    (repo / ".python-version").write_text("3.11.9\n")
    prov = capture(repo, allow_incomplete=True)
    digest = {
        p: hashlib.sha256((repo / p).read_bytes()).hexdigest()
        for p in ("poetry.lock", "requirements-dev.txt", "requirements.txt")
    }
    assert [(lf.path, lf.sha256) for lf in prov.lock_files] == [
        ("poetry.lock", digest["poetry.lock"]),
        ("requirements-dev.txt", digest["requirements-dev.txt"]),
        ("requirements.txt", digest["requirements.txt"]),
    ]
    assert prov.environment == {
        "lock_file": "poetry.lock",
        "lock_file_sha256": digest["poetry.lock"],
        "python_requires": "3.11.9",
    }
    own = hashlib.sha256((Path(__file__).resolve().parents[3] / "uv.lock").read_bytes()).hexdigest()
    assert own not in json.dumps(prov.to_dict())


def test_a_repo_without_any_lock_file_names_what_was_looked_for(repo: Path) -> None:
    (repo / "uv.lock").unlink()
    with pytest.raises(
        InvalidInputError, match=r"lock_file \(the model repository has none of uv.lock"
    ):
        capture(repo)


def test_v2_round_trips_and_v1_documents_still_parse(repo: Path, env: dict[str, str]) -> None:
    git(repo, env, "remote", "add", "origin", "https://git.example.com/ml/model.git")
    prov = capture(repo)
    document = prov.to_dict()
    assert document["schema"] == "weightvault.provenance/v2"
    assert Provenance.from_dict(json.loads(json.dumps(document))) == prov
    v1 = {
        k: v
        for k, v in document.items()
        if k not in {"git_remote", "dvc_stages", "dvc_remote", "lock_files", "ingest_host"}
    }
    v1["schema"] = "weightvault.provenance/v1"
    old = Provenance.from_dict(v1)
    assert old.git_commit == prov.git_commit
    assert (old.dvc_stages, old.lock_files, old.git_remote) == ((), (), None)
    document["dvc_stages"][0]["outs"][0]["md5"] = "not-an-md5"
    with pytest.raises(InvalidInputError, match="md5"):
        Provenance.from_dict(document)


def test_the_signed_statement_names_the_git_and_dvc_remotes(
    repo: Path, env: dict[str, str]
) -> None:
    git(repo, env, "remote", "add", "origin", "https://git.example.com/ml/model.git")
    run([DVC, "remote", "add", "-d", "vault", "s3://weightvault-dvc/store"], repo, env)
    prov = capture(repo, allow_incomplete=True)
    statement = build_statement("m", "a" * 64, {"files": []}, provenance_document(prov, "a1"))
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["source"]["repository"] == (
        "https://git.example.com/ml/model.git"
    )
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["source"]["uri"] == f"git+https://git.example.com/ml/model.git@{prov.git_commit}"
    assert {deps[d.path]["uri"] for d in prov.datasets or ()} == {"s3://weightvault-dvc/store"}
    stages = build["externalParameters"]["extra"]["provenance"]["dvc_stages"]
    assert [s["name"] for s in stages] == ["features"]
