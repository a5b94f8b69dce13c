"""Signed approvals on the real store, log and CLI: only a statement by an enrolled
approver's own key, recorded in the signed log, counts.

The attacks: the creator approving their own artifact; a principal without the
approver role approving; one person approving twice; an approval replayed past its
window; an approval object rewritten in the store; an approval by a principal who was
revoked since; an approval for another purpose counted for cold.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.durable_store import cli
from weightvault.artifacts import Vault
from weightvault.crypto import dsse
from weightvault.errors import AuthorizationError, PolicyError
from weightvault.keys import create_identity
from weightvault.lifecycle import ingest
from weightvault.lifecycle.approvals import APPROVED, approve, check_approvals
from weightvault.lifecycle.trust import enrol_principal, init_root, revoke_principal
from weightvault.records import Event


def _outcomes(vault: Vault, kind: str) -> list[Event]:
    events = [Event.parse(entry) for _, entry in vault.tlog.iter_entries()]
    return [e for e in events if e.kind == kind and e.phase == "outcome"]


def test_two_distinct_enrolled_approvers_and_nothing_else_satisfy_the_rule(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "m", {"model.safetensors": b"w" * 4096})
    artifact_id = ingest.put(vault, src, "release-candidate").artifact_id  # alice creates it
    init_root(vault, keys=1, threshold=1)
    for name, roles in (("bob", ["approver"]), ("carol", ["approver"]), ("dave", ["reader"])):
        enrol_principal(vault, name, create_identity(name).public_key, roles)
    vault.forget_principal()
    as_ = {n: Vault.open(vault.settings, identity=n) for n in ("bob", "carol", "dave")}

    # The creator (alice holds every role) and a reader cannot approve: refused and logged.
    with pytest.raises(PolicyError, match="alice created"):
        approve(vault, artifact_id, purpose="cold", justification="my own model")
    # The reader is refused by the authorization policy, before approve's own role check.
    with pytest.raises(AuthorizationError, match=r"role: artifact\.approved needs one of"):
        approve(as_["dave"], artifact_id, purpose="cold", justification="looks fine")
    assert [e.outcome for e in _outcomes(vault, APPROVED)] == ["refused", "refused"]
    assert check_approvals(vault, artifact_id, "cold").approvers == ()

    # One approver, even approving twice, is one person.
    approve(as_["bob"], artifact_id, purpose="cold", justification="eval report reviewed")
    approve(as_["bob"], artifact_id, purpose="cold", justification="and again")
    approve(as_["carol"], artifact_id, purpose="release", justification="for another purpose")
    one = check_approvals(vault, artifact_id, "cold")
    assert one.approvers == ("bob",)
    assert not one.satisfied
    assert "needs approvals from 2 distinct principals, the log backs 1" in one.reasons()[0]

    carol = approve(as_["carol"], artifact_id, purpose="cold", justification="license checked")
    two = check_approvals(vault, artifact_id, "cold")
    assert two.satisfied
    assert two.approvers == ("bob", "carol")
    assert two.reasons() == []
    assert len(two.accepted) == 3
    # Each approval is a DSSE statement signed by the approver's key, not the vault's.
    data = vault.store.get_bytes(vault.bucket("audit"), carol.statement)
    envelope = json.loads(data)
    carol_key = as_["carol"].identity.public_key()
    payload = json.loads(dsse.verify_envelope(envelope, dsse.trust_map([carol_key])))
    assert payload["predicate"]["approver"]["name"] == "carol"
    assert payload["predicate"]["purpose"] == "cold"
    assert payload["subject"][0]["name"] == artifact_id

    # Replayed after its window: nothing counts any more, each named as expired.
    late = vault.clock() + timedelta(hours=vault.settings.approval_window_hours, minutes=1)
    expired = check_approvals(vault, artifact_id, "cold", now=late)
    assert expired.approvers == ()
    assert len(expired.rejected) == 3
    assert all("expired at" in why for _, why in expired.rejected)

    # Carol's statement rewritten in the store (its log entry stays): it no longer counts.
    forged = dict(payload, predicate={**payload["predicate"], "justification": "forged"})
    resigned = dsse.sign_envelope(
        json.dumps(forged).encode(), dsse.IN_TOTO_PAYLOAD_TYPE, as_["carol"].identity.key
    )
    vault.store.put_bytes(vault.bucket("audit"), carol.statement, json.dumps(resigned).encode())
    tampered = check_approvals(vault, artifact_id, "cold")
    assert tampered.approvers == ("bob",)
    assert any("is not the statement the log recorded" in why for _, why in tampered.rejected)

    # Bob revoked: his approvals stop counting.
    revoke_principal(vault, "bob")
    vault.forget_principal()
    after = check_approvals(vault, artifact_id, "cold")
    assert "bob" not in after.approvers
    assert any("not enrolled" in why for _, why in after.rejected)


def test_the_cli_approves_with_the_acting_key_and_lists_what_the_log_backs(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_tree(tmp_path / "m", {"model.safetensors": b"x" * 2048})
    artifact_id = ingest.put(vault, src, "cli-approved").artifact_id
    init_root(vault, keys=1, threshold=1)
    enrol_principal(vault, "erin", create_identity("erin").public_key, ["approver"])

    own = cli("approve", artifact_id, "--to", "cold", "--justification", "mine")
    assert own.returncode == PolicyError.exit_code
    assert "alice created" in own.stderr
    assert "Traceback" not in own.stderr

    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "erin")
    made = cli("approve", artifact_id, "--to", "cold", "--justification", "reviewed")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["approver"] == "erin"
    listed = cli("approvals", artifact_id, "--for", "cold")
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert shown["approvers"] == ["erin"]
    assert shown["satisfied"] is False
    assert shown["required"] == 2
