"""The training environment's lock file, made into pins a rebuild can install offline.

A model repository records its environment in one of several lock formats
(``provenance.LOCK_FILE_NAMES``). The rebuild installs Python packages with
``uv pip install --offline`` from a requirements file, so each format is first
turned into exact pins (``name==version``, with the lock's environment markers):

- ``requirements*.txt`` and ``requirements.lock``: read as they are;
- ``uv.lock``: ``uv export --frozen`` (the lock is not re-resolved), beside the
  source's ``pyproject.toml``;
- ``poetry.lock``, ``pdm.lock``: every locked package from a package index;
- ``Pipfile.lock``: its ``default`` section.

A package the lock takes from git, a path or a URL, a conda environment, or a
format not listed is refused with EnvironmentLockError naming the file: it
cannot be recreated offline from a package cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement

from weightvault.config import child_environment
from weightvault.errors import EnvironmentLockError

__all__ = ["lock_format", "pins", "requirements_for"]

_TIMEOUT = 300
_REGISTRY_SOURCES = frozenset({"", "pypi", "legacy", "registry"})


def lock_format(name: str) -> str:
    """The format of the lock file ``name``: requirements, uv, poetry, pdm, pipfile or conda.

    EnvironmentLockError for a name the rebuild does not know.
    """
    base = PurePosixPath(name).name
    if base.startswith("requirements") and base.endswith((".txt", ".lock")):
        return "requirements"
    known = {
        "uv.lock": "uv",
        "poetry.lock": "poetry",
        "pdm.lock": "pdm",
        "Pipfile.lock": "pipfile",
        "conda-lock.yml": "conda",
        "environment.yml": "conda",
        "environment.yaml": "conda",
    }
    if base not in known:
        raise EnvironmentLockError(f"the recorded lock {name} is not a format the rebuild knows")
    return known[base]


def requirements_for(lock: Path, name: str, src: Path, out_dir: Path) -> Path:
    """A requirements file of exact pins for the verified lock file ``lock`` (recorded as ``name``).

    ``src`` is the restored source (``uv.lock`` needs its ``pyproject.toml``);
    derived files are written under ``out_dir``.
    """
    kind = lock_format(name)
    if kind == "requirements":
        return lock
    if kind == "conda":
        raise EnvironmentLockError(
            f"the recorded lock {name} is a conda environment: the rebuild recreates Python "
            "environments with uv only (no conda here), so it cannot be satisfied offline"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"requirements-from-{kind}.txt"
    if kind == "uv":
        text = _uv_export(lock, name, src, out_dir)
    elif kind == "pipfile":
        text = _pipfile_pins(lock, name)
    else:
        text = _toml_lock_pins(lock, name)
    target.write_text(text, encoding="utf-8")
    return target


def pins(requirements: Path, name: str) -> dict[str, str]:
    """The exact pins of ``requirements`` that apply to this interpreter (markers evaluated).

    EnvironmentLockError for a line that is not an exact ``name==version`` pin.
    """
    out: dict[str, str] = {}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "--hash")):
            continue
        line = line.split(" --hash", 1)[0].rstrip("\\").strip()
        try:
            req = Requirement(line)
        except InvalidRequirement:
            raise EnvironmentLockError(
                f"the recorded lock {name}: {line[:80]!r} is not a pin"
            ) from None
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if req.url or len(exact) != 1 or len(req.specifier) != 1:
            raise EnvironmentLockError(f"the recorded lock {name}: {line[:80]!r} is not a pin")
        if req.marker is not None and not req.marker.evaluate():
            continue
        out[req.name.lower().replace("_", "-")] = exact[0]
    return out


def _uv(name: str) -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        raise EnvironmentLockError(f"the recorded lock {name} needs uv to be installed offline")
    return found


def _uv_export(lock: Path, name: str, src: Path, out_dir: Path) -> str:
    project = src / PurePosixPath(name).parent / "pyproject.toml"
    if not project.is_file():
        raise EnvironmentLockError(
            f"the recorded lock {name} needs the source's pyproject.toml, which the commit lacks"
        )
    work = out_dir / "uv-project"
    work.mkdir(exist_ok=True)
    shutil.copyfile(project, work / "pyproject.toml")
    shutil.copyfile(lock, work / "uv.lock")
    proc = subprocess.run(  # noqa: S603 - fixed tool, argument list, no shell
        [
            _uv(name),
            "export",
            "--frozen",
            "--offline",
            "--no-hashes",
            "--no-header",
            "--no-emit-project",
            "--no-emit-workspace",
            "--format",
            "requirements-txt",
        ],
        cwd=work,
        env=child_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT,
    )
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        why = lines[-1][:300] if lines else f"exit {proc.returncode}"
        raise EnvironmentLockError(f"the recorded lock {name} cannot be exported: {why}")
    for raw in proc.stdout.splitlines():
        line = raw.strip()
        if line.startswith("-e ") or line.startswith(("./", "../", "/")) or " @ " in line:
            raise EnvironmentLockError(
                f"the recorded lock {name} takes {line[:80]!r} from outside a package index"
            )
    return proc.stdout


def _parse_toml(lock: Path, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(lock.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EnvironmentLockError(f"the recorded lock {name} is not valid TOML: {exc}") from None


def _toml_lock_pins(lock: Path, name: str) -> str:
    packages = _parse_toml(lock, name).get("package")
    if not isinstance(packages, list):
        raise EnvironmentLockError(f"the recorded lock {name} lists no [[package]] entries")
    lines = []
    for package in packages:
        if not isinstance(package, dict):
            raise EnvironmentLockError(f"the recorded lock {name} has a malformed package entry")
        pkg, version = package.get("name"), package.get("version")
        source = package.get("source") or {}
        kind = str(source.get("type", "")) if isinstance(source, dict) else "?"
        if not isinstance(pkg, str) or not isinstance(version, str):
            raise EnvironmentLockError(f"the recorded lock {name} has a package without a version")
        if kind not in _REGISTRY_SOURCES or any(k in package for k in ("git", "path", "url")):
            raise EnvironmentLockError(
                f"the recorded lock {name} takes {pkg} from outside a package index "
                f"({kind or 'a path'})"
            )
        lines.append(f"{pkg}=={version}")
    return "\n".join(sorted(lines)) + "\n"


def _pipfile_pins(lock: Path, name: str) -> str:
    try:
        default = json.loads(lock.read_text(encoding="utf-8")).get("default")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise EnvironmentLockError(f"the recorded lock {name} is not a Pipfile.lock") from None
    if not isinstance(default, dict):
        raise EnvironmentLockError(f"the recorded lock {name} has no default section")
    lines = []
    for pkg, spec in sorted(default.items()):
        version = spec.get("version") if isinstance(spec, dict) else None
        if not isinstance(version, str) or not version.startswith("=="):
            raise EnvironmentLockError(
                f"the recorded lock {name} takes {pkg} from outside a package index"
            )
        marker = spec.get("markers")
        suffix = ""
        if isinstance(marker, str) and marker:
            try:
                suffix = f" ; {Marker(marker)}"
            except InvalidMarker:
                raise EnvironmentLockError(
                    f"the recorded lock {name}: {pkg}'s markers are not valid"
                ) from None
        lines.append(f"{pkg}{version}{suffix}")
    return "\n".join(lines) + "\n"
