"""`weightvault detect` killed mid-run resumes without opening an incident twice.

A real CLI subprocess is killed with SIGKILL right after its first incident.opened is
in the log (tests/support/detect_kill.py). The next run starts from the last completed
run's cursor, finds the killed run's incident in the log and opens only the others.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.durable_store import cli, cli_json
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import AuthorizationError, IncidentError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.incidents import list_incidents

_DETECT = "[detect]\nread_spike_artifact = 3\nread_spike_principal = 100\ndenied_burst = 3\n"


def _with_thresholds(settings: Settings) -> Settings:
    text = (REPO / "config" / "weightvault.toml").read_text(encoding="utf-8")
    assert "[detect]\n" in text
    (settings.home / "weightvault.toml").write_text(text.replace("[detect]\n", _DETECT))
    return load_settings(REPO / "config")


def test_a_killed_detect_run_resumes_without_duplicates(
    vault_settings: Settings, tmp_path: Path
) -> None:
    settings = _with_thresholds(vault_settings)
    assert settings.detect_thresholds["denied_burst"] == 3
    vault = Vault.open(settings)
    src = make_tree(tmp_path / "m", {"model.bin": b"r" * 2048})
    artifact_id = ingest.put(vault, src, "m").artifact_id
    for n in range(3):
        vault.get(artifact_id, tmp_path / f"out{n}")
    for _ in range(3):
        with pytest.raises(AuthorizationError):
            ingest.put(vault, src, "m", tier="cold")

    killed = subprocess.run(
        [sys.executable, "-m", "tests.support.detect_kill"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (first,) = list_incidents(vault)

    resumed = cli_json("detect")
    opened = [i["id"] for i in resumed["opened"]]
    assert first.id not in opened
    assert resumed["skipped"] == [first.id]
    assert resumed["start"] == 0  # no completed run before: from the log's start

    incidents = list_incidents(vault)
    ids = [i.id for i in incidents]
    assert len(ids) == len(set(ids)) == 2
    assert {i.rule for i in incidents} == {"read_spike_artifact", "denied_burst"}
    # Nothing left to find: a third run opens nothing.
    assert cli_json("detect")["opened"] == []

    # The CLI shows an incident with each evidence proof checked, and resolves it once.
    shown = cli_json("incident", "show", first.id)
    assert shown["rule"] == first.rule
    assert [p["verifies"] for p in shown["proofs"]] == [True] * len(first.evidence)
    assert cli_json("incident", "resolve", first.id, "--justification", "drill")["status"] == (
        "resolved"
    )
    again = cli("incident", "resolve", first.id, "--justification", "drill")
    assert again.returncode == IncidentError.exit_code, again.stderr
    assert "Traceback" not in again.stderr
    still_open = cli_json("incident", "ls", "--status", "open")
    assert [i["id"] for i in still_open] == [i.id for i in incidents if i.id != first.id]
    # The killed run's intent has no outcome; the log still verifies.
    report, _ = verify_audit(vault)
    assert report.ok, [p.line() for p in report.problems]
