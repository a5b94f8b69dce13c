"""`weightvault policy test` and `weightvault policy eval` through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from weightvault.errors import PolicyError


def test_policy_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "weightvault.cli", "policy", "test"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert " 0 failed" in proc.stdout


def test_policy_eval_explains(tmp_path: Path) -> None:
    cases = json.loads((REPO / "config" / "policies" / "tests" / "cases.json").read_text())
    document = cases["base"]
    document["artifact"]["license"] = ""
    path = tmp_path / "input.json"
    path.write_text(json.dumps(document))
    proc = subprocess.run(
        [sys.executable, "-m", "weightvault.cli", "policy", "eval", "--input", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == PolicyError.exit_code
    assert "license" in proc.stdout
