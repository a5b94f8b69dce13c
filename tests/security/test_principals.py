"""Every operation is performed as a principal proved by its key, on the real store and CLI.

The attacks: claiming to be someone else through ``WEIGHTVAULT_ACTOR``; acting with a
key nobody enrolled, or one that was revoked; a log entry written by someone who holds
the vault's own keys (master key, log keys) but not the principal's, naming that
principal. Each is refused before any effect, or named by ``audit verify``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.durable_store import cli
from weightvault.artifacts import Vault, log_origin
from weightvault.errors import ConflictError, IdentityError, PrincipalError
from weightvault.keys import create_identity, identity_path, load_identity
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import check_principals, open_readonly_log, verify_audit
from weightvault.lifecycle.trust import enrol_principal, init_root
from weightvault.provenance import ROLES
from weightvault.records import Event

# Any operation a reader may log: what these tests check is who signed it.
DRILL = "artifact.verified"


def _entries(vault: Vault) -> list[Event]:
    return [Event.parse(entry) for _, entry in vault.tlog.iter_entries()]


def test_the_log_names_the_enrolled_key_whatever_weightvault_actor_says(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_tree(tmp_path / "m", {"w.bin": b"w" * 4096})
    monkeypatch.setenv("WEIGHTVAULT_ACTOR", "mallory")  # the old way to name the actor
    put = cli("put", str(src), "--name", "m")
    assert put.returncode == 0, put.stderr
    artifact_id = json.loads(put.stdout)["artifact_id"]
    alice = load_identity(identity_path("alice"))
    (ingested,) = vault.history(artifact_id, {"artifact.ingested"})
    entries = [e for e in _entries(vault) if e.op == ingested.event.op]
    assert [e.phase for e in entries] == ["intent", "outcome"]
    for event in entries:
        assert event.principal["name"] == "alice"
        assert event.keyid == alice.keyid
        assert event.signature_valid(log_origin(vault.settings), alice.public_key())
    assert vault.show(artifact_id)["events"][0]["actor"] == "alice"
    report, _ = verify_audit(vault)
    assert report.ok, report.problems
    assert any(line.startswith("principals: ") for line in report.checked)
    counts = check_principals(vault, open_readonly_log(vault), report)
    assert counts["signed"] == len(_entries(vault))


def test_a_key_nobody_enrolled_is_refused_before_any_effect(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_identity("mallory")
    src = make_tree(tmp_path / "m", {"w.bin": b"m" * 4096})
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "mallory")
    put = cli("put", str(src), "--name", "m")
    assert put.returncode == 40, put.stderr
    assert put.stderr.count("\n") == 1
    assert "not enrolled" in put.stderr
    assert "Traceback" not in put.stderr
    assert not list(vault.store.list(vault.bucket("hot"), ""))
    assert not list(vault.store.list(vault.bucket("envelopes"), "envelopes/"))
    intent, outcome = _entries(vault)[-2:]
    assert intent.principal["name"] is None
    assert outcome.principal["name"] is None
    assert outcome.outcome == "refused"
    assert "mallory" in (outcome.reason or "")
    # The refused attempt is in the log and audit verify accepts it as a refusal.
    report, _ = verify_audit(vault)
    assert report.ok, report.problems
    assert check_principals(vault, open_readonly_log(vault), report)["unenrolled"] == 2


def test_an_enrolled_principal_acts_until_revoked_and_a_forged_entry_is_named(
    vault: Vault, tmp_path: Path
) -> None:
    init_root(vault, keys=1, threshold=1)
    create_identity("bob")
    pub = tmp_path / "bob.pub"
    assert cli("identity", "export", "bob", "--out", str(pub)).returncode == 0
    enrolled = cli("trust", "enrol", "bob", "--key", str(pub), "--role", "ingester,reader")
    assert enrolled.returncode == 0, enrolled.stderr
    shown = json.loads(cli("trust", "show").stdout)
    assert {p["name"]: p["roles"] for p in shown["principals"]} == {
        "alice": sorted(ROLES),
        "bob": ["ingester", "reader"],
    }
    mallory = create_identity("mallory")
    with pytest.raises(ConflictError, match="enrolled with another key"):
        enrol_principal(vault, "bob", mallory.public_key, ["reader"])
    bob = Vault.open(vault.settings, identity="bob")
    src = make_tree(tmp_path / "m", {"w.bin": b"b" * 4096})
    artifact_id = ingest.put(bob, src, "by-bob").artifact_id
    assert vault.show(artifact_id)["events"][0]["actor"] == "bob"

    revoked = cli("trust", "revoke-principal", "bob")
    assert revoked.returncode == 0, revoked.stderr
    again = Vault.open(vault.settings, identity="bob")
    with pytest.raises(PrincipalError, match=r"bob .* not enrolled in trust root v3") as refused:
        ingest.put(again, src, "after-revocation")
    assert refused.value.exit_code == 40
    assert len(vault.catalog.list_artifacts()) == 1

    # Someone with the vault's own keys (log keys, catalog) but not alice's appends and
    # indexes entries: naming alice, signed by bob's key; claiming alice's keyid with
    # bob's signature; an unenrolled key's "ok" outcome; an unsigned entry naming alice.
    alice = load_identity(identity_path("alice"))
    bob_key = load_identity(identity_path("bob"))
    origin = log_origin(vault.settings)
    forgeries = [
        ("alice", bob_key.keyid, "intent", "does not enrol key"),
        ("alice", alice.keyid, "intent", "valid signature by alice"),
        (None, bob_key.keyid, "outcome", "enrolled by nobody, is not a refusal"),
        ("alice", None, "intent", "is not signed by a principal"),
    ]
    for name, keyid, phase, _ in forgeries:
        forged = Event.new(
            "artifact.deleted",
            phase="intent" if phase == "intent" else "outcome",
            op=f"forged-{len(phase)}-{(keyid or 'none')[:8]}",
            principal={"name": name, "keyid": keyid} if keyid else {"name": name},
            client={"pid": 1},
            artifact_id=artifact_id,
            outcome="ok" if phase == "outcome" else None,
            now=vault.clock(),
        )
        if keyid is not None:
            forged = forged.with_signature(bob_key.sign(forged.signed_message(origin)))
        index = vault.tlog.sequence(forged.to_bytes())
        with vault.catalog.transaction() as conn:
            vault.catalog.add_log_entry(conn, forged.log_row(index))
    vault.tlog.integrate()
    size = vault.tlog.checkpoint().checkpoint.size
    proc = cli("audit", "verify")
    assert proc.returncode == 27, proc.stderr
    found = json.loads(proc.stdout)["problems"]
    assert {p["kind"] for p in found} == {"principal"}, found
    problems = {p["where"]: p["detail"] for p in found}
    first = size - len(forgeries)
    assert len(problems) == len(forgeries), problems
    for offset, (_, _, _, says) in enumerate(forgeries):
        assert says in problems[f"log entry {first + offset}"]


def test_a_passphrase_protected_identity_acts_only_with_its_passphrase(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("tr0ub4dor and more\n")
    made = cli("identity", "create", "carol", "--passphrase-file", str(secret))
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    assert shown["protection"] == "scrypt+aes-256-gcm"
    path = Path(shown["path"])
    raw = load_identity(path, lambda _n: b"tr0ub4dor and more").key.private_bytes()
    assert raw not in path.read_bytes()
    assert raw[6:38] not in path.read_bytes()

    init_root(vault, keys=1, threshold=1)
    exported = tmp_path / "carol.pub"
    out = cli("identity", "export", "carol", "--out", str(exported))
    assert out.returncode == 0, out.stderr
    from weightvault.keys import parse_public_key

    enrol_principal(
        vault, "carol", parse_public_key(exported.read_bytes(), "carol.pub"), ["auditor", "reader"]
    )
    with pytest.raises(IdentityError, match="passphrase-protected"):
        Vault.open(vault.settings, identity="carol").record(DRILL, "wv-20260101-drill", "hot")
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY_PASSPHRASE_FILE", str(secret))
    event = Vault.open(vault.settings, identity="carol").record(DRILL, "wv-20260101-drill", "hot")
    assert event.actor == "carol"
    assert event.keyid == shown["keyid"]
