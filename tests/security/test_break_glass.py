"""Break-glass reads of a quarantined artifact, on the real store, log and CLI.

The attacks: reading a quarantined artifact with a plain get; with ``--break-glass``
and no approval, with one, with the creator's own approval (logged while the vault
let creators approve); with an approval given *before* the quarantine (an old
approval reused for a later incident). All refused and logged as refused; with two
valid approvals logged after the quarantine the files come out bit-identical and
the log names the read, the justification and the approvers.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import weightvault
from tests.conftest import REPO, make_tree
from tests.support.durable_store import cli
from weightvault.artifacts import BREAK_GLASS_READ, Vault
from weightvault.errors import BreakGlassError, QuarantinedError
from weightvault.keys import create_identity
from weightvault.lifecycle import ingest
from weightvault.lifecycle.approvals import approve
from weightvault.lifecycle.break_glass import break_glass_get
from weightvault.lifecycle.quarantine import quarantine
from weightvault.lifecycle.trust import enrol_principal, init_root
from weightvault.records import Event

FILES = {"model.safetensors": b"\x00weights" * 700, "cfg/config.json": b'{"layers": 2}'}


def _outcomes(vault: Vault, kind: str) -> list[Event]:
    events = [Event.parse(entry) for _, entry in vault.tlog.iter_entries()]
    return [e for e in events if e.kind == kind and e.phase == "outcome"]


def test_break_glass_reads_need_two_approvals_logged_after_the_quarantine(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "m", FILES)
    artifact_id = ingest.put(vault, src, "incident-model").artifact_id  # alice creates it
    init_root(vault, keys=1, threshold=1)
    for name in ("bob", "carol"):
        enrol_principal(vault, name, create_identity(name).public_key, ["approver"])
    vault.forget_principal()
    bob, carol = (Vault.open(vault.settings, identity=n) for n in ("bob", "carol"))

    # Approvals given before the quarantine: they must not open a later incident.
    approve(bob, artifact_id, purpose="break-glass", justification="before the incident")
    approve(carol, artifact_id, purpose="break-glass", justification="before the incident")
    quarantine(vault, artifact_id, reason="incident 12: suspected tampering")

    plain = cli("get", artifact_id, "--out", str(tmp_path / "plain"))
    assert plain.returncode == QuarantinedError.exit_code, plain.stderr
    none = cli(
        "get", artifact_id, "--out", str(tmp_path / "none"), "--break-glass",
        "--justification", "forensics",
    )  # fmt: skip
    assert none.returncode == BreakGlassError.exit_code == 48, none.stderr
    assert "break-glass needs approvals from 2 distinct principals, the log backs 0" in none.stderr
    assert "Traceback" not in none.stderr

    # The creator's approval, logged while the vault let creators approve, does not
    # count under the rule in force.
    lax = Vault.open(replace(vault.settings, creator_may_approve=True), identity=vault.identity)
    approve(lax, artifact_id, purpose="break-glass", justification="my own model")
    with pytest.raises(BreakGlassError, match="alice created the artifact"):
        break_glass_get(vault, artifact_id, tmp_path / "creator", justification="forensics")

    approve(bob, artifact_id, purpose="break-glass", justification="incident 12 forensics")
    with pytest.raises(BreakGlassError, match=r"the log backs 1 \(bob\)"):
        break_glass_get(vault, artifact_id, tmp_path / "one", justification="forensics")
    assert not any((tmp_path / d).exists() for d in ("plain", "none", "creator", "one"))

    approve(carol, artifact_id, purpose="break-glass", justification="incident 12 forensics")
    out = tmp_path / "read"
    done = cli(
        "get", artifact_id, "--out", str(out), "--break-glass",
        "--justification", "incident 12: compare with the training run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == len(FILES)
    for rel, data in FILES.items():
        assert (out / rel).read_bytes() == data

    reads = _outcomes(vault, BREAK_GLASS_READ)
    assert [e.outcome for e in reads] == ["refused", "refused", "refused", "ok"]
    assert "the log backs 0" in (reads[0].reason or "")
    ok = reads[-1]
    assert ok.artifact_id == artifact_id
    assert ok.details["approvers"] == ["bob", "carol"]
    assert ok.details["justification"] == "incident 12: compare with the training run"
    quarantined = vault.logged_quarantine(artifact_id)
    assert quarantined is not None
    assert ok.details["quarantine_index"] == quarantined.index
    assert all(i > quarantined.index for i in ok.details["approvals"])
    assert len(ok.details["approvals"]) == 2

    # The library API reads it the same way, logged as another break-glass read.
    again = weightvault.open(config_dir=REPO / "config").pull(
        artifact_id, tmp_path / "api", break_glass="incident 12: second look"
    )
    assert all((again / rel).read_bytes() == data for rel, data in FILES.items())
    assert _outcomes(vault, BREAK_GLASS_READ)[-1].details["approvers"] == ["bob", "carol"]

    # The artifact stays quarantined: a plain read is still refused.
    with pytest.raises(QuarantinedError):
        vault.get(artifact_id, tmp_path / "after")
    # Break-glass is for quarantined artifacts only.
    other = ingest.put(vault, make_tree(tmp_path / "o", {"w.bin": b"o" * 64}), "other")
    with pytest.raises(BreakGlassError, match="not quarantined in the log"):
        break_glass_get(vault, other.artifact_id, tmp_path / "other", justification="why not")
