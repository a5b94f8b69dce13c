"""A model repository for the reference pipeline: real git, real DVC.

``weightvault demo`` and the end-to-end tests build one under the vault home:
the pipeline's sources, ``dvc.yaml`` and params are copied in, committed with
git, reproduced with ``dvc repro``, pushed to the vault's DVC bucket, and the
resulting ``dvc.lock`` committed so the tree is clean for provenance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from weightvault.errors import ConfigError, InvalidInputError
from weightvault.store import DvcRemote, configure_dvc_remote

ENVIRONMENT_LOCK = "pipeline/requirements.txt"
VALIDATION_CONFIG = "pipeline/weightvault.toml"
"""The model's validation config (datasets, suites, metric thresholds), copied to the root."""
PIPELINE_FILES = (
    "dvc.yaml",
    "config/params.yaml",
    "pipeline/__init__.py",
    "pipeline/prepare.py",
    "pipeline/train.py",
    "pipeline/evaluate.py",
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "weightvault")
    env.setdefault("GIT_AUTHOR_EMAIL", "weightvault@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "weightvault")
    env.setdefault("GIT_COMMITTER_EMAIL", "weightvault@localhost")
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(repo: Path, *args: str, umask: int = -1) -> str:
    """Run git or dvc in ``repo`` (with ``umask`` if given); one-line error on failure."""
    tool = shutil.which(args[0], path=_env()["PATH"])
    if tool is None:
        raise ConfigError(f"{args[0]} is not installed")
    proc = subprocess.run(  # noqa: S603 - fixed tools, argument list, no shell
        [tool, *args[1:]],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        umask=umask,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise InvalidInputError(f"`{' '.join(args[:2])}` failed in {repo}: {last[0]}")
    return proc.stdout


def configure_remote(repo: Path, remote: DvcRemote) -> None:
    """Point the repo's default DVC remote at the vault's DVC bucket (credentials local only).

    ``remote`` is :func:`weightvault.store.dvc_remote`: the dvc role's credential,
    which reaches the DVC bucket only (:func:`weightvault.store.configure_dvc_remote`
    writes it to the 0600 ``.dvc/config.local``).
    """
    configure_dvc_remote(repo, remote)


def build_model_repo(source_root: Path, repo: Path) -> Path:
    """Create (or refresh) the model repo, reproduce the pipeline, commit the lock."""
    repo.mkdir(parents=True, exist_ok=True)
    for rel in PIPELINE_FILES:
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_root / rel, target)
    # The training environment's own lock file, where provenance capture looks for it.
    shutil.copyfile(source_root / ENVIRONMENT_LOCK, repo / "requirements.txt")
    shutil.copyfile(source_root / VALIDATION_CONFIG, repo / "weightvault.toml")
    if not (repo / ".git").exists():
        run(repo, "git", "init", "-q", "-b", "main")
    if not (repo / ".dvc").exists():
        run(repo, "dvc", "init", "-q")
    run(repo, "dvc", "repro", "-q")
    commit_all(repo, "reference pipeline")
    return repo


def commit_all(repo: Path, message: str) -> None:
    """Commit whatever changed, if anything."""
    run(repo, "git", "add", "-A")
    if run(repo, "git", "status", "--porcelain").strip():
        run(repo, "git", "commit", "-q", "-m", message)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.workspace DIR``: build the reference model repo in DIR.

    The repo the README's walkthrough ingests: the digits pipeline reproduced with
    real git and DVC, its ``dvc.lock`` committed. Prints the repo's path.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m pipeline.workspace DIR", file=sys.stderr)
        return 2
    try:
        repo = build_model_repo(Path(__file__).resolve().parents[1], Path(args[0]))
    except (ConfigError, InvalidInputError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
