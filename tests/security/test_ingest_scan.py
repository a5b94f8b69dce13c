"""Issue 15 item 3: the format scan runs inside put, before the commit point.

The finding: a pickle was stored and served from hot until someone ran
validate. Now the put itself scans (content, not names), records the
quarantine and writes its marker before the manifest, and the catalog indexes
the artifact straight into quarantine: ``get`` and ``verify`` refuse it right
after the put (exit 13), the put says why (exit 58), and nothing ever unpickles
it. A crash past the commit point leaves it quarantined too.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.durable_store import cli
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.errors import IngestQuarantinedError, NotFoundError, QuarantinedError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.quarantine import read_marker
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.lifecycle.validate import validate_artifact


class _Marker:
    """Unpickling this would create a directory: the tests check it never happens."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def _evil(tmp_path: Path, name: str = "evil") -> tuple[Path, Path]:
    pwned = tmp_path / f"{name}-pwned"
    src = make_tree(
        tmp_path / name,
        {"model.safetensors": pickle.dumps(_Marker(str(pwned))), "config.json": b"{}"},
    )
    return src, pwned


def test_a_pickle_put_is_quarantined_at_commit_and_never_readable(
    vault: Vault, tmp_path: Path
) -> None:
    src, pwned = _evil(tmp_path)
    proc = cli("put", str(src), "--name", "evil")
    assert proc.returncode == IngestQuarantinedError.exit_code, proc.stderr
    stored = json.loads(proc.stdout)
    artifact_id = stored["artifact_id"]
    assert stored["tier"] == "quarantine"
    assert "model.safetensors is pickle" in stored["quarantined"]
    assert proc.stderr.count("\n") == 1
    assert f"{artifact_id} is quarantined" in proc.stderr
    assert "model.safetensors is pickle" in proc.stderr

    # Right after the put, with no validate: every read path refuses.
    out = tmp_path / "out"
    for args in (("get", artifact_id, "--out", str(out)), ("verify", artifact_id)):
        refused = cli(*args)
        assert refused.returncode == QuarantinedError.exit_code, refused.stderr
    assert not out.exists()
    assert not pwned.exists()

    # The existing quarantine machinery: a logged quarantine, its marker, the catalog.
    vault = Vault.open(vault.settings)
    assert vault.resolve(artifact_id).tier == "quarantine"
    logged = vault.logged_quarantine(artifact_id)
    assert logged is not None
    assert logged.event.details["at_ingest"] is True
    assert logged.event.details["origin"] == "hot"
    assert "model.safetensors is pickle" in logged.event.details["reason"]
    [put] = vault.history(artifact_id, {"artifact.ingested"})
    assert put.event.details["quarantined"] == stored["quarantined"]
    assert put.event.details["scan"]["unsafe"][0]["format"] == "pickle"
    marker = read_marker(vault, artifact_id)
    assert marker is not None
    assert marker["origin"] == "hot"

    # Validate does not quarantine it again (it cannot read it either).
    with pytest.raises(QuarantinedError):
        validate_artifact(vault, artifact_id, None)
    assert len(vault.history(artifact_id, {"artifact.quarantined"})) == 1
    assert not pwned.exists()

    # The same content put again is refused; a rebuilt catalog keeps it quarantined.
    with pytest.raises(QuarantinedError, match=artifact_id):
        ingest.put(vault, src, "evil-again")
    rebuild_catalog(vault)
    assert Vault.open(vault.settings).resolve(artifact_id).tier == "quarantine"


def test_a_crash_past_the_commit_point_leaves_the_pickle_quarantined(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, pwned = _evil(tmp_path, "crash")

    def crash(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed after the manifest was written")

    monkeypatch.setattr(Vault, "_index", crash)
    with pytest.raises(SystemExit):
        ingest.put(vault, src, "crash")
    monkeypatch.undo()
    [artifact_id] = vault.committed_ids("hot")
    with pytest.raises(NotFoundError):
        vault.resolve(artifact_id)  # the catalog never listed it as readable

    rebuild_catalog(vault)
    vault = Vault.open(vault.settings)
    assert vault.resolve(artifact_id).tier == "quarantine"
    with pytest.raises(QuarantinedError):
        vault.get(artifact_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not pwned.exists()


def test_clean_and_unrecognised_content_is_stored_readable(vault: Vault, tmp_path: Path) -> None:
    """Only content whose loading can run code is quarantined at ingest; bytes the scanner
    cannot identify are stored as before (validate fails and quarantines them)."""
    src = make_tree(tmp_path / "ok", {"w.bin": weights(256), "config.json": b"{}"})
    result = ingest.put(vault, src, "ok")
    assert result.quarantined is None
    assert result.artifact.tier == "hot"
    [put] = vault.history(result.artifact_id, {"artifact.ingested"})
    assert put.event.details["scan"]["scanned"] == 2
    assert put.event.details["scan"]["unsafe"] == []
    vault.verify(result.artifact_id)
