"""Red-team tests of restoring a lost vault home (issue 13, item 3).

Each test works against the real SeaweedFS store and the real CLI:

- the vault home (master key, keystore, catalog) is deleted; the store plus
  k master-key shares bring it back, and hot and warm artifacts come out
  bit-identical;
- k-1 shares, a share set of another key and mixed splits fail with one line
  and exit 32, writing nothing;
- an attacker with write access to the store puts an older keystore backup
  back as the newest (deleting the newer ones, or copying it under a newer
  version): refused with exit 33 (a rollback would bring back retired or
  compromised keys);
- no share ever appears in the logs, the output or the audit bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import LoggedEvent, StoreKeystoreBackups, Vault, trusted_statement
from weightvault.config import Settings, load_settings
from weightvault.errors import ConflictError
from weightvault.keys import LocalKeyStore, split_seed
from weightvault.records import Event
from weightvault.store.layout import keystore_backup_key

CLI = [sys.executable, "-m", "weightvault.cli"]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line with debug logs on (so a leaked share would show)."""
    env = dict(os.environ, WEIGHTVAULT_LOG_LEVEL="DEBUG")
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        input=stdin if stdin is not None else "",
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The CLI failed with ``code`` and one line naming every needle; returns that line."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("weightvault: error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def split(tmp_path: Path, threshold: int = 3, shares: int = 5) -> list[str]:
    """`dr split-master --out-dir`: the shares, read back from their 0600 files."""
    out = tmp_path / "custodians"
    proc = cli(
        "dr", "split-master", "--threshold", str(threshold), "--shares", str(shares),
        "--out-dir", str(out), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert len(files) == shares
    for name in files:
        assert Path(name).stat().st_mode & 0o777 == 0o600
    return [Path(name).read_text().strip() for name in files]


def assert_no_share_leaked(shares: list[str], *texts: str) -> None:
    """No share, nor any run of four of its words, appears in ``texts``."""
    for share in shares:
        words = share.split()
        for text in texts:
            assert share not in text
            for i in range(len(words) - 3):
                assert " ".join(words[i : i + 4]) not in text


def audit_text(vault: Vault) -> str:
    """Every small object of the audit bucket, as text."""
    bucket = vault.bucket("audit")
    parts = []
    for obj in vault.store.list(bucket, ""):
        if obj.key.startswith("keystore/backups/"):
            continue  # sealed (AES-GCM under the master key): checked apart
        parts.append(vault.store.get_bytes(bucket, obj.key).decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture
def artifacts(vault: Vault, tmp_path: Path) -> dict[str, dict[str, bytes]]:
    """A hot and a warm artifact: id -> their files."""
    out = {}
    for tier in ("hot", "warm"):
        files = {"model.bin": weights(70_000) + tier.encode(), "sub/config.json": b"{}"}
        src = make_tree(tmp_path / f"src-{tier}", files)
        out[stored_in(vault, src, f"model-{tier}", tier)] = files
    return out


def lose_home(settings: Settings) -> None:
    """The disaster: the whole vault home is gone."""
    shutil.rmtree(settings.home)
    assert not settings.home.exists()


def test_home_restored_from_store_and_k_shares(
    vault: Vault,
    vault_settings: Settings,
    artifacts: dict[str, dict[str, bytes]],
    tmp_path: Path,
) -> None:
    shares = split(tmp_path)
    lose_home(vault_settings)
    new_home = tmp_path / "new-home"

    # Any 3 of the 5 shares, from stdin, one per line.
    chosen = [shares[4], shares[1], shares[2]]
    proc = cli("dr", "restore-home", "--home", str(new_home), "--json", stdin="\n".join(chosen))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["catalog"]["artifacts"] == 2
    assert report["catalog"]["damaged"] == 0
    assert (new_home / "master.key").stat().st_mode & 0o777 == 0o600
    assert (new_home / "keystore.sealed").stat().st_mode & 0o777 == 0o600

    listed = json.loads(cli("ls", "--home", str(new_home), "--json").stdout)
    assert {row["id"] for row in listed} == set(artifacts)
    logs = [proc.stdout, proc.stderr]
    for artifact_id, files in artifacts.items():
        check = cli("verify", artifact_id, "--home", str(new_home), "--json")
        assert check.returncode == 0, check.stderr
        out = tmp_path / f"out-{artifact_id}"
        got = cli("get", artifact_id, "--out", str(out), "--home", str(new_home))
        assert got.returncode == 0, got.stderr
        for rel, data in files.items():
            assert (out / rel).read_bytes() == data
        logs += [check.stdout, check.stderr, got.stdout, got.stderr]

    # The restored vault keeps working: a new put and its backup.
    src = make_tree(tmp_path / "after", {"w.bin": b"after restore"})
    put = cli("put", str(src), "--name", "after", "--home", str(new_home), "--json")
    assert put.returncode == 0, put.stderr
    assert_no_share_leaked(shares, *logs, put.stdout, put.stderr, audit_text(vault))
    events = {
        entry["kind"]
        for entry in (json.loads(raw) for _, raw in vault.tlog.iter_entries())
        if entry["phase"] == "outcome" and entry["outcome"] == "ok"
    }
    assert {"dr.master_split", "dr.home_restored"} <= events
    # The recovery certificate: a signed statement the restore's outcome names.
    again = Vault.open(load_settings(REPO / "config", home=new_home))
    (restored,) = [
        LoggedEvent(index, event, raw)
        for index, raw in again.tlog.iter_entries()
        if (event := Event.parse(raw)).kind == "dr.home_restored" and event.phase == "outcome"
    ]
    certificate = trusted_statement(again, restored, kind="recovery", what="certificate")
    assert certificate.predicate["backup_version"] == report["keystore_version"]
    assert certificate.predicate["shares_checked"] is True
    assert certificate.predicate["catalog_rebuilt"]["artifacts"] == 2


def test_share_file_input_and_split_refused_twice(
    vault_settings: Settings, artifacts: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    shares = split(tmp_path, threshold=2, shares=3)
    again = cli("dr", "split-master", "--out-dir", str(tmp_path / "again"))
    assert_one_line_error(again, 9, "already split", "--replace")
    assert not (tmp_path / "again").exists()
    replaced = cli(
        "dr", "split-master", "--threshold", "2", "--shares", "2", "--replace",
        "--out-dir", str(tmp_path / "replaced"),
    )  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr

    lose_home(vault_settings)
    files = []
    for i, share in enumerate(shares[:2]):
        path = tmp_path / f"share-{i}.txt"
        path.write_text(share + "\n")
        files += ["--share-file", str(path)]
    new_home = tmp_path / "restored"
    proc = cli("dr", "restore-home", "--home", str(new_home), *files)
    assert proc.returncode == 0, proc.stderr
    assert "2 artifact(s)" in proc.stdout
    for artifact_id in artifacts:
        assert cli("verify", artifact_id, "--home", str(new_home)).returncode == 0


def test_too_few_or_wrong_shares_fail_and_write_nothing(
    vault_settings: Settings, artifacts: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    shares = split(tmp_path)
    lose_home(vault_settings)
    new_home = tmp_path / "new-home"

    few = cli("dr", "restore-home", "--home", str(new_home), stdin="\n".join(shares[:2]))
    assert_one_line_error(few, 32, "too few", "2 distinct given, 3 required")

    # Three valid shares of another key (another vault's split).
    other = split_seed(os.urandom(32), threshold=3, shares=5)
    wrong = cli("dr", "restore-home", "--home", str(new_home), stdin="\n".join(other[:3]))
    assert_one_line_error(wrong, 32, "not this vault's master key")

    mixed = cli(
        "dr", "restore-home", "--home", str(new_home), stdin="\n".join([*shares[:2], other[0]])
    )
    assert_one_line_error(mixed, 32, "different split")

    words = shares[0].split()
    words[3] = "academic" if words[3] != "academic" else "acid"
    bad = cli("dr", "restore-home", "--home", str(new_home), stdin="\n".join([" ".join(words)]))
    assert_one_line_error(bad, 32, "share 1")

    for proc in (few, wrong, mixed, bad):
        assert_no_share_leaked(shares + other, proc.stdout, proc.stderr)
    assert not new_home.exists()

    # The same shares still restore: nothing was spent or changed by the failures.
    ok = cli("dr", "restore-home", "--home", str(new_home), stdin="\n".join(shares[2:]))
    assert ok.returncode == 0, ok.stderr


def test_restore_into_an_existing_vault_home_is_refused(
    vault_settings: Settings, artifacts: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    shares = split(tmp_path)
    before = vault_settings.keystore_path.read_bytes()
    proc = cli(
        "dr", "restore-home", "--home", str(vault_settings.home), stdin="\n".join(shares[:3])
    )
    assert_one_line_error(proc, 9, "exists")
    assert vault_settings.keystore_path.read_bytes() == before


def _bump_keystore(vault: Vault, times: int) -> LocalKeyStore:
    keys = vault.keys
    assert isinstance(keys, LocalKeyStore)
    for _ in range(times):
        keys.rotate_kek("hot")
    return keys


def test_every_change_is_backed_up_and_never_overwritten(vault: Vault) -> None:
    backups = StoreKeystoreBackups(vault.store, vault.bucket("audit"))
    keys = _bump_keystore(vault, 2)
    version = keys.version
    assert backups.versions()[-1] == version
    assert set(range(1, version + 1)) <= set(backups.versions())
    assert backups.get(version) == vault.settings.keystore_path.read_bytes()

    older = backups.get(version - 1)
    with pytest.raises(ConflictError, match="kept"):
        backups.backup(version, older)
    assert backups.get(version) == vault.settings.keystore_path.read_bytes()
    backups.backup(version, backups.get(version))  # the same bytes again: a no-op


def test_older_backup_put_back_as_newest_is_refused(
    vault: Vault, vault_settings: Settings, artifacts: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    shares = split(tmp_path)
    keys = _bump_keystore(vault, 2)
    newest = keys.version
    audit = vault.bucket("audit")
    backups = StoreKeystoreBackups(vault.store, audit)
    older = backups.get(newest - 2)
    lose_home(vault_settings)
    new_home = tmp_path / "new-home"
    stdin = "\n".join(shares[:3])

    # Attack 1: delete the two newest backups, so an older one is the newest left.
    for version in (newest, newest - 1):
        vault.store.remove(audit, keystore_backup_key(version))
    assert backups.versions()[-1] == newest - 2
    proc = cli("dr", "restore-home", "--home", str(new_home), stdin=stdin)
    assert_one_line_error(proc, 33, f"version {newest - 2}", "rolled-back")
    assert not new_home.exists()

    # Attack 2: the older sealed file copied under a version above every record.
    vault.store.put_bytes(audit, keystore_backup_key(newest + 5), older)
    proc = cli("dr", "restore-home", "--home", str(new_home), stdin=stdin)
    assert_one_line_error(proc, 33, f"version {newest + 5}", "rolled-back")
    assert not new_home.exists()
