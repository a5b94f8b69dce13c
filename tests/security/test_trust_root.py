"""Red-team tests of the signed trust root (issue 11, item 6).

Each test reproduces an attack of the issue against the real store, the real
CLI and a real export bundle, and shows it now fails:

- ``offline-verify`` without ``--trust-root`` trusted the root the bundle
  carried, so a bundle re-signed by anyone (with its own root swapped in)
  verified;
- a statement re-signed with a compromised signing key, claiming a forged
  commit, verified;
- root rotation: too few old keys, a rollback of the store's chain, one key
  file given twice; offline custody of root keys; ``trust show`` never prints
  private material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.approvals import self_approved
from tests.support.artifacts import ingest_model
from tests.support.bundles import resign_index
from weightvault._json import canonical_json
from weightvault.artifacts import Vault
from weightvault.crypto import dsse
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import (
    IntegrityError,
    KeyStateError,
    NoTrustRootError,
    RollbackError,
    TrustRootError,
    UnloggedSignatureError,
)
from weightvault.lifecycle.compromise import compromise_key
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.export import export_bundle
from weightvault.lifecycle.promote import promote
from weightvault.lifecycle.trust import current_root, init_root
from weightvault.lifecycle.validate import validate_artifact
from weightvault.provenance import (
    SIGNING_KEY_ID,
    Root,
    SigningEntry,
    build_root,
    generate_root_key,
    sign_root,
)
from weightvault.store.layout import statement_key, trust_root_key

CLI = [sys.executable, "-m", "weightvault.cli"]
FORGED_COMMIT = "f" * 40


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in the test's environment (home, store, bucket prefix)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=dict(os.environ), cwd=REPO, check=False
    )


def refused(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The CLI failed with ``code`` and one error line naming every needle."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def cold_artifact(vault: Vault, model_repo: Path) -> str:
    """A validated artifact promoted to cold (what export accepts)."""
    split_escrow_key(vault.keys)
    artifact_id = ingest_model(vault, model_repo)
    assert validate_artifact(vault, artifact_id, model_repo).status == "passed"
    promote(vault, artifact_id, "warm", justification="staging")
    promote(self_approved(vault, artifact_id), artifact_id, "cold", justification="release")
    return artifact_id


def _payload(envelope: bytes) -> dict[str, Any]:
    doc = json.loads(envelope)
    result: dict[str, Any] = json.loads(base64.b64decode(doc["payload"]))
    return result


def _sign(statement: dict[str, Any], key: HybridSigningKey) -> bytes:
    return canonical_json(
        dsse.sign_envelope(canonical_json(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
    )


def resign_bundle(
    bundle: Path,
    key: HybridSigningKey,
    *,
    edit_statement: Callable[[dict[str, Any]], None] | None = None,
    attestations: bool = True,
    roots: list[Root] | None = None,
    exported_at: str | None = None,
    edit_attestation: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """What an attacker holding ``key`` does: re-sign what it edits (the statement, the
    attestations), relist, re-sign the index."""
    if edit_statement is not None:
        statement = _payload((bundle / "statement.dsse.json").read_bytes())
        edit_statement(statement)
        (bundle / "statement.dsse.json").write_bytes(_sign(statement, key))
    if attestations:
        previous = None
        for path in sorted((bundle / "attestations").glob("*.json")):
            att = _payload(path.read_bytes())
            if edit_attestation is not None:
                edit_attestation(att["predicate"])
            att["predicate"]["previous"] = previous
            data = _sign(att, key)
            path.write_bytes(data)
            previous = hashlib.sha256(data).hexdigest()
    if roots is not None:
        shutil.rmtree(bundle / "roots")
        (bundle / "roots").mkdir()
        for root in roots:
            (bundle / "roots" / f"{root.version}.json").write_bytes(root.to_bytes())
    resign_index(bundle, key, exported_at=exported_at)


def forge_commit(statement: dict[str, Any]) -> None:
    """Claim the model was built from another commit, finished now."""
    build = statement["predicate"]["buildDefinition"]
    build["externalParameters"]["source"]["commit"] = FORGED_COMMIT
    for dep in build["resolvedDependencies"]:
        if dep.get("name") == "source":
            dep["digest"]["gitCommit"] = FORGED_COMMIT
    metadata = statement["predicate"]["runDetails"]["metadata"]
    metadata["finishedOn"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backdated(when: datetime) -> Callable[[dict[str, Any]], None]:
    """:func:`forge_commit`, claiming to have finished at ``when`` (before a compromise)."""

    def edit(statement: dict[str, Any]) -> None:
        forge_commit(statement)
        metadata = statement["predicate"]["runDetails"]["metadata"]
        metadata["finishedOn"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return edit


def attacker_root(key: HybridSigningKey) -> Root:
    """A root an attacker made: their own root keys, their own signing key."""
    root_keys = [generate_root_key() for _ in range(3)]
    public = key.public_key()
    body = build_root(
        version=1,
        expires=datetime.now(UTC) + timedelta(days=30),
        root_keys=[k.public_key() for k in root_keys],
        threshold=2,
        signing=[SigningEntry(key.key_id, key.version, public.keyid, "active", None, public)],
        vault="attacker",
    )
    return sign_root(body, root_keys)


def test_a_bundle_resigned_by_another_key_with_its_own_root_is_refused_offline(
    vault: Vault, model_repo: Path, tmp_path: Path
) -> None:
    artifact_id = cold_artifact(vault, model_repo)
    assert cli("trust", "init").returncode == 0
    real = tmp_path / "root.json"
    exported = cli("trust", "export", str(real))
    assert exported.returncode == 0, exported.stderr
    bundle = export_bundle(vault, artifact_id, tmp_path / "bundle")
    good = cli("offline-verify", str(bundle), "--trust-root", str(real), "--json")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["root_version"] == 1

    # The attack, as it was: re-sign with any key and swap its root in.
    mallory = HybridSigningKey.generate(SIGNING_KEY_ID, 1)
    forged_root = attacker_root(mallory)
    swapped = tmp_path / "swapped"
    shutil.copytree(bundle, swapped)
    resign_bundle(swapped, mallory, edit_statement=forge_commit, roots=[forged_root])
    refused(cli("offline-verify", str(swapped)), NoTrustRootError.exit_code, "--trust-root")
    refused(
        cli("offline-verify", str(swapped), "--trust-root", str(real)),
        TrustRootError.exit_code,
        "is not the pinned v1",
    )
    # The same with this host's pin (trust pin --from-store).
    pinned = cli("trust", "pin", "--from-store")
    assert pinned.returncode == 0, pinned.stderr
    assert "pinned trust root v1" in pinned.stdout
    assert current_root(vault) is not None
    refused(cli("offline-verify", str(swapped)), TrustRootError.exit_code, "not the pinned v1")
    assert cli("offline-verify", str(bundle)).returncode == 0

    # Re-signed but keeping the vault's roots: the signature is by an unlisted key.
    kept = tmp_path / "kept"
    shutil.copytree(bundle, kept)
    resign_bundle(kept, mallory, edit_statement=forge_commit)
    refused(
        cli("offline-verify", str(kept), "--trust-root", str(real)),
        IntegrityError.exit_code,
        "untrusted key",
    )

    # Trust on first use accepts only when asked, and says loudly what it trusts:
    # a fingerprint that is not the vault's. The forged root names no transparency
    # log, so the bundle's log proofs cannot be checked and even TOFU refuses it.
    env = {k: v for k, v in os.environ.items() if k != "WEIGHTVAULT_HOME"}
    env["WEIGHTVAULT_HOME"] = str(tmp_path / "fresh-host")

    def tofu_verify(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "offline-verify", str(path), "--trust-on-first-use"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=False,
        )

    tofu = tofu_verify(swapped)
    assert "WARNING: trusting on first use" in tofu.stderr
    assert forged_root.fingerprint[:4] in tofu.stderr
    real_fp = json.loads(cli("trust", "show", "--json").stdout)["fingerprint"]
    assert real_fp != forged_root.fingerprint
    refused(tofu, TrustRootError.exit_code, "lists no log keys")
    honest = tofu_verify(bundle)
    assert honest.returncode == 0, honest.stderr
    assert "WARNING: trusting on first use" in honest.stderr
    assert "trusted on first use" in honest.stdout


def test_a_statement_resigned_with_a_compromised_key_claiming_a_forged_commit_is_refused(
    vault: Vault, model_repo: Path, tmp_path: Path
) -> None:
    artifact_id = cold_artifact(vault, model_repo)
    init_root(vault)
    old_root = tmp_path / "root-v1.json"
    assert cli("trust", "export", str(old_root)).returncode == 0
    stolen = vault.keys.active(SIGNING_KEY_ID)
    assert stolen is not None
    compromised = HybridSigningKey.from_private_bytes(
        stolen.key_id, stolen.version, stolen.material
    )
    report = compromise_key(vault, f"{SIGNING_KEY_ID}@v{stolen.version}")
    assert report.replacement == f"{SIGNING_KEY_ID}@v{stolen.version + 1}"
    root = current_root(vault)
    assert root is not None
    assert root.version == 2
    entry = next(e for e in root.signing if e.version == stolen.version)
    assert entry.state == "compromised"
    assert entry.compromised_at is not None
    bundle = export_bundle(vault, artifact_id, tmp_path / "bundle")
    ok = cli("offline-verify", str(bundle), "--trust-root", str(old_root), "--json")
    assert ok.returncode == 0, ok.stderr  # v1 pinned, walks up to v2
    assert json.loads(ok.stdout)["root_version"] == 2

    # The attack: the stolen key re-signs a statement claiming a forged commit.
    forged = tmp_path / "forged"
    shutil.copytree(bundle, forged)
    resign_bundle(forged, compromised, edit_statement=forge_commit, attestations=False)
    refused(
        cli("offline-verify", str(forged), "--trust-root", str(old_root)),
        KeyStateError.exit_code,
        f"{SIGNING_KEY_ID}@v{stolen.version}",
        "marks compromised since",
    )
    # The bundle index and the statement backdated to before the compromise: the times
    # they claim are never trusted, and the log's proven entries record the genuine
    # statement, not this one.
    older = tmp_path / "backdated"
    shutil.copytree(bundle, older)
    before = entry.compromised_at - timedelta(days=1)
    resign_bundle(
        older,
        compromised,
        edit_statement=backdated(before),
        attestations=False,
        exported_at=before.isoformat(),
    )
    refused(
        cli("offline-verify", str(older), "--trust-root", str(old_root)),
        RollbackError.exit_code,
        "its statement (sha256",
        "another statement was put in its place",
    )
    # The attestations re-signed with another approver, backdated with the bundle index:
    # judged at the time the log recorded them, and the log records only the genuine ones.
    approved = tmp_path / "approved"
    shutil.copytree(bundle, approved)

    def forge_approval(predicate: dict[str, Any]) -> None:
        predicate["approver"] = "mallory"
        predicate["at"] = before.isoformat()

    resign_bundle(
        approved, compromised, edit_attestation=forge_approval, exported_at=before.isoformat()
    )
    refused(
        cli("offline-verify", str(approved), "--trust-root", str(old_root)),
        UnloggedSignatureError.exit_code,
        "attestation",
        "is not recorded by the log",
    )
    # Dropping the root that records the compromise is a rollback for a host that saw it.
    stripped = tmp_path / "stripped"
    shutil.copytree(forged, stripped)
    (stripped / "roots" / "2.json").unlink()
    resign_bundle(stripped, compromised, attestations=False)
    new_root = tmp_path / "root-v2.json"
    assert cli("trust", "export", str(new_root)).returncode == 0
    refused(
        cli("offline-verify", str(stripped), "--trust-root", str(new_root)),
        TrustRootError.exit_code,
        "rollback refused",
    )


def _private_texts(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        secret = json.loads(path.read_bytes())["private_key"]
        raw = base64.b64decode(secret)
        out += [secret, raw.hex(), base64.b64encode(raw[6:38]).decode(), raw[6:38].hex()]
    return out


def test_offline_root_keys_rotation_with_key_files_and_no_private_output(
    vault: Vault, tmp_path: Path
) -> None:
    custody = tmp_path / "custody"
    init = cli("trust", "init", "--export", str(custody), "--json")
    assert init.returncode == 0, init.stderr
    files = sorted(custody.iterdir())
    assert len(files) == 3
    assert stat.S_IMODE(custody.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert not [r for r in vault.keys.records() if r.purpose == "trust-root"]
    secrets = _private_texts(files)

    shown = cli("trust", "show")
    shown_json = cli("trust", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert shown_json.returncode == 0, shown_json.stderr
    assert shown.stdout.count("offline") == 3
    for text in [init.stdout, shown.stdout, shown_json.stdout, shown.stderr]:
        for secret in secrets:
            assert secret not in text

    # A signing-key rotation makes the root stale; the offline keys must sign the next one.
    assert cli("keys", "rotate", "--signing").returncode == 0
    refused(cli("trust", "rotate"), TrustRootError.exit_code, "0 of v1's root keys, 2 required")
    refused(
        cli("trust", "rotate", "--root-key", str(files[0])),
        TrustRootError.exit_code,
        "1 of v1's root keys, 2 required",
    )
    refused(
        cli("trust", "rotate", "--root-key", str(files[0]), "--root-key", str(files[0])),
        TrustRootError.exit_code,
        "1 of v1's root keys",
    )
    stored = {o.key for o in vault.store.list(vault.bucket("audit"), "trust/root/")}
    assert stored == {trust_root_key(1)}
    rotated = cli("trust", "rotate", "--root-key", str(files[0]), "--root-key", str(files[1]))
    assert rotated.returncode == 0, rotated.stderr
    assert "published trust root v2" in rotated.stdout
    doc = json.loads(cli("trust", "show", "--json").stdout)
    assert doc["version"] == 2
    states = {e["key"]: e["state"] for e in doc["signing"]}
    assert states == {f"{SIGNING_KEY_ID}@v1": "decrypt-only", f"{SIGNING_KEY_ID}@v2": "active"}

    # New root keys and threshold: both the old and the new threshold must sign.
    label = json.loads(files[2].read_bytes())["label"]
    more = tmp_path / "custody-2"
    refused(
        cli(
            "trust",
            "rotate",
            "--root-key",
            str(files[0]),
            "--root-key",
            str(files[1]),
            "--add-root-keys",
            "1",
            "--threshold",
            "4",
            "--export",
            str(more),
        ),
        TrustRootError.exit_code,
        "3 of its own root keys, 4 required",
    )
    assert not more.exists() or not list(more.iterdir())
    grown = cli(
        "trust",
        "rotate",
        "--root-key",
        str(files[0]),
        "--root-key",
        str(files[1]),
        "--add-root-keys",
        "2",
        "--remove-root-key",
        label,
        "--threshold",
        "3",
        "--export",
        str(more),
        "--json",
    )
    assert grown.returncode == 0, grown.stderr
    summary = json.loads(grown.stdout)["root"]
    assert (summary["version"], summary["threshold"], len(summary["root_keys"])) == (3, 3, 4)
    assert len(list(more.iterdir())) == 2
    for secret in _private_texts(sorted(more.iterdir())):
        assert secret not in grown.stdout

    # The store's chain rolled back (newest version deleted): this host saw v3.
    vault.store.remove(vault.bucket("audit"), trust_root_key(3))
    refused(cli("trust", "show"), TrustRootError.exit_code, "v3 is pinned: rollback refused")
    with pytest.raises(TrustRootError, match="rollback refused"):
        current_root(vault)


def test_a_stored_statement_resigned_with_a_compromised_key_is_refused_by_verify_and_get(
    vault: Vault, model_repo: Path, tmp_path: Path
) -> None:
    artifact_id = ingest_model(vault, model_repo)
    stolen = vault.keys.active(SIGNING_KEY_ID)
    assert stolen is not None
    key = HybridSigningKey.from_private_bytes(stolen.key_id, stolen.version, stolen.material)
    compromise_key(vault, f"{SIGNING_KEY_ID}@v{stolen.version}")
    assert cli("verify", artifact_id).returncode == 0  # signed before the compromise
    bucket = vault.bucket("hot")
    genuine = vault.store.get_bytes(bucket, statement_key(artifact_id))
    statement = _payload(genuine)
    # Re-signed and backdated to a day before the compromise (marked just now).
    backdated(datetime.now(UTC) - timedelta(days=1))(statement)
    vault.store.put_bytes(bucket, statement_key(artifact_id), _sign(statement, key))
    # The time it claims is never trusted: the log recorded another statement at the put.
    refused(
        cli("verify", artifact_id),
        RollbackError.exit_code,
        "its statement (sha256",
        "another statement was put in its place",
    )
    out = tmp_path / "out"
    refused(cli("get", artifact_id, "--out", str(out)), RollbackError.exit_code, "statement")
    assert not out.exists()
