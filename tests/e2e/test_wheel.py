"""The wheel installs into a fresh venv and works there, with its packaged defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.payloads import weights

pytestmark = pytest.mark.slow


def _uv() -> str:
    local = REPO / ".tools" / "bin" / "uv"
    found = str(local) if local.is_file() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build the wheel: run `make setup`")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("weightvault-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "v"
    uv = _uv()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=300
    )
    # The locked versions, as the project's own environment has them.
    pins = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    constraints = venv.parent / "constraints.txt"
    constraints.write_text(pins)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--constraint",
            str(constraints),
            str(wheel),
        ],
        check=True,
        timeout=900,
    )
    return venv


def test_wheel_holds_only_the_core_and_its_defaults(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"weightvault", f"{wheel.name.split('-py3')[0]}.dist-info"}
    for default in (
        "weightvault.toml",
        "lifetimes.toml",
        "rotation.toml",
        "policies/weightvault.rego",
        "policies/authz.rego",
        "policies/tests/authz_cases.json",
    ):
        assert f"weightvault/_defaults/{default}" in names


def test_installed_cli_and_api_work_outside_a_checkout(
    installed: Path, s3_server: object, tmp_path: Path
) -> None:
    from weightvault.store import EmbeddedStore

    assert isinstance(s3_server, EmbeddedStore)
    creds = s3_server.credentials()
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {
        "PATH": f"{installed / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "WEIGHTVAULT_HOME": str(tmp_path / "home"),
        "WEIGHTVAULT_S3_ENDPOINT": s3_server.endpoint(),
        "WEIGHTVAULT_S3_ACCESS_KEY": creds.access_key,
        "WEIGHTVAULT_S3_SECRET_KEY": creds.secret_key,
        "WEIGHTVAULT_BUCKET_PREFIX": "wheel",
    }
    python = str(installed / "bin" / "python")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    where = run(python, "-c", "import weightvault, sys; print(weightvault.__file__)")
    assert where.returncode == 0, where.stderr
    assert str(installed) in where.stdout
    for generic in ("flows", "tasks", "pipeline"):
        probe = run(python, "-c", f"import {generic}")
        assert probe.returncode != 0, f"the wheel installed a top-level {generic!r}"

    helped = run("weightvault", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "need a weightvault checkout" in helped.stdout
    init = run("weightvault", "init", "--no-store", "--json")
    assert init.returncode == 0, init.stderr
    policy = run("weightvault", "policy", "test", "--json")
    assert policy.returncode == 0, policy.stderr

    (workdir / "model").mkdir()
    (workdir / "model" / "w.bin").write_bytes(weights(30_000))
    api = run(
        python,
        "-c",
        "import json, weightvault\n"
        "v = weightvault.open()\n"
        "a = v.push('model', name='from-wheel')\n"
        "v.verify(a.id)\n"
        "print(json.dumps({'id': a.id, 'out': str(v.pull(a.id, 'restored'))}))\n",
    )
    assert api.returncode == 0, api.stderr
    result = json.loads(api.stdout)
    assert (workdir / "restored" / "w.bin").read_bytes() == (
        workdir / "model" / "w.bin"
    ).read_bytes()
    listed = run("weightvault", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [result["id"]]
