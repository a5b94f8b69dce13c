"""Grants for collaborators, attacked on the real store and through the real CLI.

A collaborator with a grant and no store credential reads the artifact bit for bit
(`weightvault access` in a clean environment). After expiry, after revocation, with the
grant edited to name another artifact or file, with a URL pointed at an object outside
the grant, and on replay of a single-use grant: refused, by the store where it can, by the
client where only it can. Revoking a used grant marks the artifact for rekey.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.conftest import REPO, make_tree
from tests.support.cli_vault import cli_vault
from tests.support.payloads import weights
from weightvault._json import canonical_json, parse_canonical
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.crypto import dsse
from weightvault.crypto.notes import verifier_from_vkey
from weightvault.errors import (
    GrantExpiredError,
    GrantReplayError,
    GrantRevokedError,
    GrantScopeError,
    InvalidInputError,
)
from weightvault.keys import Identity, create_identity, load_identity, parse_recipient
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.grants import (
    ACCESSED,
    GRANT_PAYLOAD_TYPE,
    ISSUED,
    REKEY_NEEDED,
    REVOKED,
    access_grant,
    gc_grants,
    issue_grant,
    list_grants,
    revoke_grant,
    sync_grants,
)
from weightvault.lifecycle.incidents import detect
from weightvault.lifecycle.trust import load_root_file
from weightvault.records import verify_entry_proof
from weightvault.store import EmbeddedStore
from weightvault.store.layout import file_key, grant_files_prefix, grant_receipt_key

CLI = [sys.executable, "-m", "weightvault.cli"]
FILES = {
    "model.bin": weights(40 * 1024 + 7),  # three chunks
    "config.json": b'{"layers": 2}\n',
}


@dataclass
class Granted:
    settings: Settings
    vault: Vault
    artifact_id: str
    root: Path
    collab: Identity
    collab_env: dict[str, str]
    vault_env: dict[str, str]
    recipient: Path
    work: Path


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--json"], capture_output=True, text=True, cwd=REPO, env=env, check=False
    )


@pytest.fixture(scope="module")
def granted(s3_server: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory) -> Granted:
    work = tmp_path_factory.mktemp("grants")
    made_vault = cli_vault(s3_server, work)
    settings, vault, root = made_vault.settings, made_vault.vault, made_vault.root
    src = make_tree(work / "src", FILES)
    artifact_id = ingest.put(vault, src, "shared-model").artifact_id
    # The collaborator: its own identity directory, a home with nothing of the vault's.
    ids = work / "collab-ids"
    made = create_identity("collab", directory=ids)
    recipient = work / "collab.recipient.json"
    recipient.write_bytes(canonical_json(made.recipient()))
    collab_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(work / "collab-home"),
        "WEIGHTVAULT_IDENTITY_DIR": str(ids),
        "WEIGHTVAULT_IDENTITY": "collab",
    }
    vault_env = made_vault.env
    return Granted(
        settings,
        vault,
        artifact_id,
        root,
        load_identity(made.path),
        collab_env,
        vault_env,
        recipient,
        work,
    )


def _grant(g: Granted, **kwargs: Any) -> tuple[str, Path]:
    ttl = kwargs.pop("ttl", timedelta(minutes=15))
    issued = issue_grant(
        g.vault, g.artifact_id, parse_recipient(g.recipient.read_bytes(), "r"), ttl, **kwargs
    )
    path = g.work / f"{issued.grant_id}.json"
    path.write_bytes(issued.grant_file)
    return issued.grant_id, path


def _payload(grant_file: Path) -> dict[str, Any]:
    outer = json.loads(grant_file.read_text())
    return dict(json.loads(base64.b64decode(outer["grant"]["payload"])))


def _get(url: str) -> urllib3.BaseHTTPResponse:
    return urllib3.request("GET", url, timeout=30.0, retries=False)


def _access(g: Granted, grant: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return _run(g.collab_env, "access", str(grant), "--root", str(g.root), "--out", str(out))


def _refused(proc: subprocess.CompletedProcess[str], code: int, out: Path) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def used(granted: Granted) -> tuple[str, Path, subprocess.CompletedProcess[str]]:
    """A grant issued through the CLI and used once by the collaborator through the CLI."""
    g = granted
    grant = g.work / "used.grant.json"
    issued = _run(
        g.vault_env,
        "grant",
        g.artifact_id,
        "--to",
        str(g.recipient),
        "--ttl",
        "15m",
        "--out",
        str(grant),
    )
    assert issued.returncode == 0, issued.stderr
    grant_id = json.loads(issued.stdout)["grant_id"]
    return grant_id, grant, _access(g, grant, g.work / "used-out")


def test_a_collaborator_reads_the_artifact_with_no_store_credentials(
    granted: Granted, used: tuple[str, Path, subprocess.CompletedProcess[str]]
) -> None:
    g = granted
    grant_id, grant, proc = used
    assert not any(k.startswith("WEIGHTVAULT_S3") or k == "WEIGHTVAULT_HOME" for k in g.collab_env)
    assert proc.returncode == 0, proc.stderr
    out = g.work / "used-out"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == FILES
    shown = json.loads(proc.stdout)
    assert shown["files"] == 2
    assert shown["bytes"] == sum(len(v) for v in FILES.values())
    # Nothing in the grant file or the output is key material but the sealed DEK.
    assert g.settings.store.secret_key not in grant.read_text()
    # The receipt the collaborator keeps: the grant's log entry, proved under the log's keys.
    kept = json.loads(Path(shown["receipt"]).read_text())
    root = load_root_file(g.root)
    checkpoint = verify_entry_proof(
        kept["log_proof"].encode(),
        base64.b64decode(kept["log_entry"]),
        [verifier_from_vkey(v) for v in root.log],
    )
    assert checkpoint.size > kept["log_index"]
    # The signed receipt reached the store; sync logs who accessed, once.
    bucket = g.settings.store.bucket("grants")
    assert g.vault.store.exists(bucket, grant_receipt_key(grant_id))
    recorded = sync_grants(g.vault)
    assert [r["grant_id"] for r in recorded if r["outcome"] == "ok"] == [grant_id]
    assert sync_grants(g.vault) == []
    accessed = [
        e.event
        for e in g.vault.history(g.artifact_id, {ACCESSED})
        if e.event.details["grant_id"] == grant_id
    ]
    assert len(accessed) == 1
    assert accessed[0].details["recipient"] == "collab"
    assert accessed[0].details["grant_state"] == "valid"
    issued = [
        e.event
        for e in g.vault.history(g.artifact_id, {ISSUED})
        if e.event.details["grant_id"] == grant_id
    ]
    assert issued[0].details["recipient_keyid"] == g.collab.keyid
    assert "url" not in json.dumps(issued[0].details)


def test_an_expired_grant_is_refused_by_the_store_and_the_client(granted: Granted) -> None:
    g = granted
    past = g.vault.clock() - timedelta(hours=1)
    grant_id, grant = _grant(g, ttl=timedelta(minutes=15), now=past)
    doc = _payload(grant)
    # The store: the presigned URL is dead (S3 checks the expiry the signature covers).
    response = _get(doc["files"][0]["url"])
    assert response.status == 403
    # The client refuses it before asking the store.
    out = g.work / "expired-out"
    _refused(_access(g, grant, out), GrantExpiredError.exit_code, out)
    # A client whose clock lies still gets nothing: the store refuses the receipt and files.
    with pytest.raises(GrantExpiredError, match="the store refused"):
        access_grant(grant.read_bytes(), load_root_file(g.root), g.collab, out, now=past)
    assert not out.exists()
    bucket = g.settings.store.bucket("grants")
    assert not g.vault.store.exists(bucket, grant_receipt_key(grant_id))
    # gc deletes the copies of expired grants only, in one logged operation.
    assert gc_grants(g.vault) == [grant_id]
    assert not list(g.vault.store.list(bucket, grant_files_prefix(grant_id)))
    assert gc_grants(g.vault) == []
    assert {s.grant_id: s.state for s in list_grants(g.vault)}[grant_id] == "expired"


def test_a_revoked_grant_is_refused_at_the_store(granted: Granted) -> None:
    g = granted
    grant_id, grant = _grant(g)
    url = _payload(grant)["files"][0]["url"]
    assert _get(url).status == 200
    assert _run(g.vault_env, "revoke", grant_id).returncode == 0
    # The copies are gone: the URL (still validly signed) now fails at the store.
    assert _get(url).status == 404
    out = g.work / "revoked-out"
    _refused(_access(g, grant, out), GrantRevokedError.exit_code, out)
    # The refused access claimed nothing: no receipt was put for it.
    assert not g.vault.store.exists(g.settings.store.bucket("grants"), grant_receipt_key(grant_id))
    revoked = [
        e
        for e in g.vault.history(g.artifact_id, {REVOKED})
        if e.event.details["grant_id"] == grant_id
    ]
    assert revoked[0].event.details["used"] is False
    # An unused grant revoked: no rekey needed for it.
    assert not [
        e
        for e in g.vault.history(g.artifact_id, {REKEY_NEEDED})
        if e.event.details["grant_id"] == grant_id
    ]
    shown = _run(g.vault_env, "grants", "show", grant_id)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "revoked"
    assert "http" not in shown.stdout  # no presigned URL in the output
    # A recipient not trusted to put its receipt: --rekey marks the artifact regardless.
    distrusted, _ = _grant(g)
    assert revoke_grant(g.vault, distrusted, rekey=True)["used"] is False
    assert [
        e
        for e in g.vault.history(g.artifact_id, {REKEY_NEEDED})
        if e.event.details["grant_id"] == distrusted
    ]


def _edited(grant: Path, change: Any, signer: Any = None) -> bytes:
    outer = parse_canonical(grant.read_bytes(), "grant")
    doc = json.loads(base64.b64decode(outer["grant"]["payload"]))
    change(doc)
    payload = canonical_json(doc)
    if signer is None:
        outer["grant"]["payload"] = base64.b64encode(payload).decode()
    else:
        outer["grant"] = dsse.sign_envelope(payload, GRANT_PAYLOAD_TYPE, signer)
    return canonical_json(outer)


def test_a_grant_edited_or_pointed_outside_its_scope_is_refused(granted: Granted) -> None:
    g = granted
    grant_id, grant = _grant(g, files=["config.json"])
    root = load_root_file(g.root)
    other = "wv-20261202-" + "0" * 16
    edits = {
        "another artifact": lambda d: d.update(artifact_id=other),
        "another file": lambda d: d["files"].append(
            {**d["files"][0], "path": "model.bin", "url": d["files"][0]["url"]}
        ),
        "a later expiry": lambda d: d.update(expires_at="2099-01-01T00:00:00Z"),
    }
    out = g.work / "edited-out"
    for change in edits.values():
        with pytest.raises(GrantScopeError, match="signature does not verify"):
            access_grant(_edited(grant, change), root, g.collab, out)
        # Re-signed by a key the pinned root does not trust (the collaborator's own).
        with pytest.raises(GrantScopeError, match="signature does not verify"):
            access_grant(_edited(grant, change, g.collab.key), root, g.collab, out)
    assert not out.exists()
    # Through the CLI too: one line, the scope exit code.
    edited = g.work / "edited.grant.json"
    edited.write_bytes(_edited(grant, edits["another artifact"]))
    _refused(_access(g, edited, out), GrantScopeError.exit_code, out)
    # Only the granted file was copied out of the artifact.
    bucket = g.settings.store.bucket("grants")
    copied = [o.key for o in g.vault.store.list(bucket, grant_files_prefix(grant_id))]
    assert len(copied) == 1
    granted_idx = int(copied[0].rsplit("/", 1)[1].split(".")[0])
    other_idx = 1 - granted_idx
    # A URL of the grant pointed at an object outside it fails the store's signature check.
    url = _payload(grant)["files"][0]["url"]
    for outside in (
        url.replace(copied[0], grant_files_prefix(grant_id) + f"{other_idx:06d}.c2sp"),
        url.replace(
            f"/{bucket}/{copied[0]}",
            f"/{g.settings.store.bucket('hot')}/{file_key(g.artifact_id, other_idx)}",
        ),
    ):
        assert outside != url
        assert _get(outside).status == 403
    # A file the artifact does not have: refused, logged refused, nothing copied.
    before = {o.key for o in g.vault.store.list(bucket, "grants/")}
    with pytest.raises(InvalidInputError, match=r"no file 'nope\.bin'"):
        _grant(g, files=["nope.bin"])
    assert {o.key for o in g.vault.store.list(bucket, "grants/")} == before
    assert g.vault.catalog.log_search(artifact_id=g.artifact_id, kind=ISSUED, outcome="refused")
    # Another identity holding the grant file cannot use it (made to collab).
    stranger = load_identity(create_identity("stranger", directory=g.work / "s-ids").path)
    with pytest.raises(GrantScopeError, match="not to identity stranger"):
        access_grant(grant.read_bytes(), root, stranger, out)


def test_a_single_use_grant_is_refused_on_replay(granted: Granted) -> None:
    g = granted
    grant_id, grant = _grant(g, single_use=True)
    root = load_root_file(g.root)
    busy = make_tree(g.work / "busy-out", {"x": b"x"})
    with pytest.raises(InvalidInputError, match="not an empty directory"):
        access_grant(grant.read_bytes(), root, g.collab, busy)
    # That refusal did not spend the single use.
    first = access_grant(grant.read_bytes(), root, g.collab, g.work / "once-out")
    assert first.files == 2
    again = g.work / "twice-out"
    with pytest.raises(GrantReplayError):
        access_grant(grant.read_bytes(), root, g.collab, again)
    assert not again.exists()
    # Once the vault sees the receipt, the copies go: a client that skips the check
    # gets nothing from the store either.
    url = _payload(grant)["files"][0]["url"]
    assert _get(url).status == 200
    # The receipt object is written once: a second conditional PUT is refused.
    second = urllib3.request(
        "PUT",
        _payload(grant)["receipt"]["put"],
        body=b"{}",
        headers={"If-None-Match": "*"},
        timeout=30.0,
        retries=False,
    )
    assert second.status == 412
    assert any(r["grant_id"] == grant_id for r in sync_grants(g.vault))
    assert _get(url).status == 404
    assert {s.grant_id: s.state for s in list_grants(g.vault)}[grant_id] == "used"


def test_revoking_a_used_grant_marks_the_artifact_for_rekey(
    granted: Granted, used: tuple[str, Path, subprocess.CompletedProcess[str]]
) -> None:
    g = granted
    grant_id, grant, proc = used
    assert proc.returncode == 0, proc.stderr
    # A second grant to the same collaborator, still valid after the first is revoked.
    other_id, other = _grant(g)
    other_url = _payload(other)["files"][0]["url"]
    done = revoke_grant(g.vault, grant_id)
    assert done["used"] is True
    marked = [
        e.event
        for e in g.vault.history(g.artifact_id, {REKEY_NEEDED})
        if e.event.details["grant_id"] == grant_id
    ]
    assert len(marked) == 1
    assert "holds the DEK" in marked[0].details["reason"]
    assert REKEY_NEEDED in {e["kind"] for e in g.vault.show(g.artifact_id)["events"]}
    out = g.work / "after-revoke-out"
    _refused(_access(g, grant, out), GrantRevokedError.exit_code, out)
    # A rogue client puts a receipt again through the still-signed receipt URL: sync logs
    # it as a use of a revoked grant, and detection opens an incident on it.
    bucket = g.settings.store.bucket("grants")
    receipt = g.vault.store.get_bytes(bucket, grant_receipt_key(grant_id))
    put = urllib3.request(
        "PUT", _payload(grant)["receipt"]["put"], body=receipt + b"\n", timeout=30.0
    )
    assert put.status == 200
    (synced,) = [r for r in sync_grants(g.vault) if r["grant_id"] == grant_id]
    assert (synced["outcome"], synced["grant_state"]) == ("ok", "revoked")
    misuse = [i for i in detect(g.vault).opened if i.rule == "grant_misuse"]
    (incident,) = [i for i in misuse if grant_id in i.summary]
    assert {"revoke_grants", "rekey"} <= set(incident.actions)
    # The incident names the collaborator who used the grant, not who synced the receipt.
    assert incident.principals == ("collab",)
    assert _get(other_url).status == 200
    # `weightvault contain` (the incidents the log supports) revokes the collaborator's other
    # grant: found from the misused grant the evidence names; its URLs now fail at the store.
    contained = _run(g.vault_env, "contain")
    assert contained.returncode == 0, contained.stderr
    (result,) = [
        r
        for r in json.loads(contained.stdout)["incidents"]
        if r["incident"]["incident_id"] == incident.id
    ]
    (revoked_step,) = [s for s in result["steps"] if s["name"] == "revoke_grants"]
    assert revoked_step["status"] == "done", revoked_step
    parts = [p.split(": ", 1) for p in revoked_step["detail"].split("; ") if ": " in p]
    by_whom = dict(parts)
    assert other_id in by_whom["recipient collab"]
    assert {s.grant_id: s.state for s in list_grants(g.vault)}[other_id] == "revoked"
    assert _get(other_url).status == 404
    # Every grant operation of this module left a log that verifies, index included.
    report, _ = verify_audit(g.vault)
    assert not report.problems, report.problems
