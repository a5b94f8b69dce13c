"""Authorization as policy on the real store, log, CLI and Prefect.

The attack: a principal enrolled only as ``reader`` (or ``ingester``) tries what
its roles do not allow, through the real CLI and a real flow run. Each attempt
must exit 42 with one line naming the rule, leave its refusal in the signed log
(intent, then a ``refused`` outcome naming the rule and the principal), and
store nothing; what the role does allow still works.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from flows.promote import promote
from tests.conftest import make_tree
from tests.support.durable_store import cli
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.errors import AuthorizationError
from weightvault.keys import create_identity
from weightvault.lifecycle import ingest
from weightvault.lifecycle.promote import promote as promote_now
from weightvault.lifecycle.trust import enrol_principal, init_root
from weightvault.records import Event
from weightvault.store.layout import ARTIFACTS_PREFIX, envelope_key


def _outcomes(vault: Vault, kind: str) -> list[Event]:
    """The outcomes of ``kind`` in the signed log (not the catalog's index of it)."""
    events = [Event.parse(entry) for _, entry in vault.tlog.iter_entries()]
    return [e for e in events if e.kind == kind and e.phase == "outcome"]


def _refused(vault: Vault, kind: str, name: str) -> Event:
    (event,) = [e for e in _outcomes(vault, kind) if e.outcome == "refused" and e.actor == name]
    return event


def _hot_objects(vault: Vault) -> list[str]:
    return sorted(o.key for o in vault.store.list(vault.bucket("hot")))


@pytest.fixture
def enrolled(vault: Vault, tmp_path: Path) -> str:
    """One hot artifact by alice (every role), and rita (reader) and ingo (ingester)."""
    src = make_tree(tmp_path / "m", {"model.safetensors": weights(4096), "c.json": b"{}"})
    artifact_id = ingest.put(vault, src, "guarded").artifact_id
    init_root(vault, keys=1, threshold=1)
    enrol_principal(vault, "rita", create_identity("rita").public_key, ["reader"])
    enrol_principal(vault, "ingo", create_identity("ingo").public_key, ["ingester"])
    vault.forget_principal()
    return artifact_id


def test_a_reader_cannot_put_promote_approve_or_rekey_but_can_get(
    vault: Vault, enrolled: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact_id = enrolled
    before = _hot_objects(vault)
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "rita")
    src = make_tree(tmp_path / "new", {"model.safetensors": weights(2048)})
    attempts = {
        "artifact.ingested": ("put", str(src), "--name", "sneaked-in"),
        "artifact.promotion": ("promote", artifact_id, "--to", "warm", "--justification", "j"),
        "artifact.approved": ("approve", artifact_id, "--to", "cold", "--justification", "j"),
        "key.compromised": ("keys", "compromise", "kek-hot", "--exposed", artifact_id, "--rekey"),
    }
    for kind, args in attempts.items():
        proc = cli(*args)
        assert proc.returncode == AuthorizationError.exit_code, (kind, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("weightvault: error: "), proc.stderr
        assert f"{kind} refused for rita: role: {kind} needs one of the roles" in lines[0]
        refused = _refused(vault, kind, "rita")
        assert refused.reason is not None
        assert refused.reason.startswith(f"{kind} refused for rita: role: ")
    # Nothing was stored, moved, approved or re-keyed.
    assert _hot_objects(vault) == before
    assert [r.id for r in vault.catalog.list_artifacts()] == [artifact_id]
    assert vault.catalog.artifact(artifact_id).tier == "hot"
    assert not [e for e in _outcomes(vault, "artifact.approved") if e.outcome == "ok"]
    assert all(r.state != "compromised" for r in vault.keys.records() if r.key_id == "kek-hot")
    # What a reader may do, it does: get the artifact back.
    out = tmp_path / "back"
    got = cli("get", artifact_id, "--out", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / "c.json").read_bytes() == b"{}"
    (read,) = [e for e in _outcomes(vault, "artifact.read") if e.actor == "rita"]
    assert read.outcome == "ok"


def test_an_ingester_puts_into_hot_only(vault: Vault, enrolled: str, tmp_path: Path) -> None:
    ingo = Vault.open(vault.settings, identity="ingo")
    src = make_tree(tmp_path / "m2", {"model.safetensors": weights(2048)})
    with pytest.raises(AuthorizationError, match="put_tier: put stores into hot, not cold") as err:
        ingest.put(ingo, src, "straight-to-cold", "cold")
    assert err.value.exit_code == 42
    refused = _refused(vault, "artifact.ingested", "ingo")
    assert refused.tier == "cold"
    assert refused.reason is not None
    assert "put_tier" in refused.reason
    assert list(vault.store.list(vault.bucket("cold"), ARTIFACTS_PREFIX)) == []
    assert refused.artifact_id is not None
    assert not vault.store.exists(
        vault.bucket("envelopes"), envelope_key(refused.artifact_id, "cold")
    )
    # The same principal may put into hot, and may not promote what it put.
    put = ingest.put(ingo, src, "into-hot")
    assert vault.catalog.artifact(put.artifact_id).tier == "hot"
    with pytest.raises(AuthorizationError, match=r"role: artifact\.promotion needs one of"):
        promote_now(ingo, put.artifact_id, "warm", justification="mine")
    assert vault.catalog.artifact(put.artifact_id).tier == "hot"

    # Fail closed: a policy directory without the authorization policy refuses everything.
    bare = tmp_path / "policies-without-authz"
    bare.mkdir()
    shutil.copyfile(vault.settings.policy_dir / "weightvault.rego", bare / "weightvault.rego")
    unguarded = Vault.open(replace(vault.settings, policy_dir=bare), identity="ingo")
    with pytest.raises(AuthorizationError, match="policy_error: authorization policy"):
        ingest.put(unguarded, src, "while-the-policy-is-gone")
    refusals = [e for e in _outcomes(vault, "artifact.ingested") if e.outcome == "refused"]
    assert len(refusals) == 2
    assert refusals[-1].reason is not None
    assert "authz.rego does not exist" in refusals[-1].reason
    assert sorted(r.name for r in vault.catalog.list_artifacts()) == ["guarded", "into-hot"]


def test_a_flow_run_as_a_reader_is_refused_the_same_way(
    vault: Vault, enrolled: str, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "rita")
    state = promote(
        artifact_id=enrolled,
        target_tier="warm",
        justification="by a reader",
        return_state=True,
    )
    assert state.is_failed()
    assert "role: artifact.promotion needs one of the roles" in str(state.message)
    refused = _refused(vault, "artifact.promotion", "rita")
    assert refused.client["flow_run"] is not None
    assert vault.catalog.artifact(enrolled).tier == "hot"
