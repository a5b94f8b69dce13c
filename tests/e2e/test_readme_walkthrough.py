"""The README's walkthrough runs as written: its shell block, in bash, from the checkout.

The block is taken from README.md as it stands and run unchanged with `bash -euo
pipefail` in the repository root (as in a fresh clone), against this test's own
vault home (``WEIGHTVAULT_HOME``), free ports (tests/conftest.py sets them to 0), its
own identity directory and a ``TMPDIR`` of its own (where the block's ``mktemp -d``
scratch directory lands). Everything is real: the embedded SeaweedFS store, git,
DVC, Great Expectations, the rebuild. Afterwards the store is started again and
the vault is read back: the artifact in cold, certified, approved twice, under a
rotated key, and the bundle verified offline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import start_vault_store
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.store import EmbeddedStore

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SECTION = "## Walkthrough"
#: the whole block, on this loaded 2-core machine (it takes about 2 minutes unloaded)
WALKTHROUGH_TIMEOUT_S = 900
#: what the issue asks the walkthrough to show, each a command of the block
LIFECYCLE = (
    "weightvault put ",
    "weightvault validate ",
    "--to warm",
    "--to cold",
    "weightvault keys rotate",
    "weightvault export ",
    "weightvault offline-verify ",
    "weightvault recover ",
    "model_signing verify key ",
)

pytestmark = pytest.mark.slow


def walkthrough() -> str:
    """The first ```sh block of the README's walkthrough section, as written."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found, "the walkthrough section has no ```sh block"
    return found.group(1)


def test_the_walkthrough_covers_the_lifecycle() -> None:
    block = walkthrough()
    missing = [step for step in LIFECYCLE if step not in block]
    assert not missing, f"the README walkthrough lacks {missing}"
    assert "http://" not in block
    assert "https://" not in block


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's vault home; its store is stopped afterwards whatever happened."""
    home = tmp_path / "home"
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    try:
        yield home
    finally:
        EmbeddedStore(load_settings(REPO / "config").store_dir).down()


def test_the_walkthrough_runs_as_written(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-euxo", "pipefail", "-c", walkthrough()],
        cwd=REPO,
        env={**os.environ, "PS4": "+ [${SECONDS}s] "},
        capture_output=True,
        text=True,
        timeout=WALKTHROUGH_TIMEOUT_S,
        check=False,
    )
    took = time.monotonic() - started
    transcript = f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, f"the walkthrough failed (exit {proc.returncode})\n{transcript}"
    print(f"the walkthrough took {took:.0f}s")
    assert "Traceback" not in proc.stdout + proc.stderr, transcript
    assert "bundle OK" in proc.stdout, transcript
    assert "store stopped" in proc.stdout, transcript

    # The block stopped the store; `store up` (here: the test's start) brings it back.
    (work,) = [d for d in scratch.iterdir() if (d / "bundle").is_dir()]
    assert (work / "bundle").is_dir()
    assert (work / "root.json").is_file()
    # model_signing verified the fetched copy; a changed byte in it now fails the same check.
    fetched = work / "fetched"
    assert (fetched / "model.sig").is_file()
    weights = fetched / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0")
    tampered = subprocess.run(
        [
            *(str(Path(sys.executable).parent / "model_signing"), "verify", "key"),
            *("--signature", str(fetched / "model.sig"), "--public_key", str(work / "vault.pub")),
            str(fetched),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert tampered.returncode != 0, tampered.stdout
    settings: Settings = load_settings(REPO / "config")
    assert settings.home == home.resolve()
    start_vault_store(settings)
    vault = Vault.open(settings)
    (row,) = vault.catalog.list_artifacts()
    assert (row.name, row.tier, row.validation_status) == ("digits", "cold", "passed")
    vault.verify(row.id)
    shown = vault.show(row.id)
    ingested = next(e for e in shown["events"] if e["kind"] == "artifact.ingested")
    # put --model-repo recorded the provenance and stored the rebuild kit
    assert ingested["details"]["provenance_complete"] is True, ingested
    assert ingested["details"]["git_commit"], ingested
    assert ingested["details"]["run_id"] == "run-1"
    assert any(f["path"] == ".weightvault/rebuild-kit/kit.json" for f in shown["files"])
    kinds = [(e["kind"], e["actor"]) for e in shown["events"]]
    assert ("artifact.recovered", "alice") in kinds, kinds
    approvers = sorted(actor for kind, actor in kinds if kind == "artifact.approved")
    assert approvers == ["approver-1", "approver-2"], kinds
    assert ("artifact.exported", "alice") in kinds, kinds
    (cold,) = [e for e in shown["envelopes"] if e["tier"] == "cold"]
    assert (cold["kek_id"], cold["kek_version"]) == ("kek-cold", 2), "cold key not rotated"
