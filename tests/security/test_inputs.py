"""Issue 10, bad input, crashes, loose files: each attack run against the real CLI and store.

Defects 7 (directories silently truncated), 9 (unverified plaintext left
behind), 10 (internal errors instead of one-line errors) and 11 (loose files).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import stat
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from tests.conftest import REPO, make_tree
from tests.support.inputs_helpers import (
    CLI,
    assert_one_line_error,
    cli,
    fill,
    incomplete_uploads,
    tmpfs,
    vault_objects,
)
from tests.support.payloads import weights
from tests.support.services import start_vault_store
from weightvault._fs import STAGING_MARKER
from weightvault.artifacts import Vault
from weightvault.cli._app import EXIT_BROKEN_PIPE
from weightvault.config import Settings, load_settings
from weightvault.errors import (
    ConfigError,
    DiskFullError,
    IntegrityError,
    InvalidInputError,
    OutputUnwritableError,
    QuarantinedError,
    SourceUnreadableError,
    StoreFullError,
    StoreUnavailableError,
    UnsafeNameError,
    UsageError,
)
from weightvault.lifecycle import ingest
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.quarantine import quarantine
from weightvault.store import EmbeddedStore, ObjectStore
from weightvault.store.layout import manifest_key


def _nothing_stored(vault: Vault, before: set[str]) -> None:
    assert vault_objects(vault) == before
    assert incomplete_uploads(vault) == []
    assert vault.catalog.list_artifacts() == []


# -- 7. directories silently truncated ------------------------------------------------


def test_put_refuses_a_directory_with_an_unreadable_subdirectory(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "model", {"a.bin": b"a" * 100, "sub/b.bin": b"b" * 100})
    (src / "sub").chmod(0)
    before = vault_objects(vault)
    try:
        proc = cli("put", str(src), "--name", "m", obey_modes=True)
    finally:
        (src / "sub").chmod(0o755)
    assert_one_line_error(
        proc, SourceUnreadableError.exit_code, f"cannot read {src / 'sub'}", "Permission denied"
    )
    _nothing_stored(vault, before)


def test_put_refuses_an_unreadable_file_and_leaves_no_envelope(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "model", {"a.bin": b"a" * 100, "b.bin": b"b" * 100})
    (src / "b.bin").chmod(0)
    before = vault_objects(vault)
    proc = cli("put", str(src), "--name", "m", obey_modes=True)
    assert_one_line_error(proc, SourceUnreadableError.exit_code, str(src / "b.bin"))
    _nothing_stored(vault, before)


@pytest.mark.parametrize("kind", ["dir-link", "file-link"])
def test_put_refuses_any_symlink_naming_it(vault: Vault, tmp_path: Path, kind: str) -> None:
    src = make_tree(tmp_path / "model", {"a.bin": b"a", "real/b.bin": b"b"})
    link = src / "link"
    if kind == "dir-link":
        link.symlink_to(src / "real", target_is_directory=True)
    else:
        link.symlink_to(src / "a.bin")
    before = vault_objects(vault)
    proc = cli("put", str(src), "--name", "m")
    assert_one_line_error(proc, InvalidInputError.exit_code, str(link), "symbolic link")
    _nothing_stored(vault, before)


# -- 10. one-line errors, and a failed put cleans up -------------------------------------


def test_put_of_proc_self_mem_is_an_io_error_and_stores_nothing(vault: Vault) -> None:
    before = vault_objects(vault)
    proc = cli("put", "/proc/self/mem", "--name", "mem")
    assert_one_line_error(
        proc, SourceUnreadableError.exit_code, "/proc/self/mem", "Input/output error"
    )
    _nothing_stored(vault, before)


def test_a_read_error_during_upload_discards_the_envelope(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file passes the checks at plan time, then reading it fails mid-put (it is gone
    # in between, as a file on a failing disk would be): the envelope goes too.
    src = make_tree(tmp_path / "model", {"a.bin": b"a" * 100})
    before = vault_objects(vault)
    real_plan = ingest.plan

    def plan_then_lose(*args: Any, **kwargs: Any) -> Any:
        found = real_plan(*args, **kwargs)
        (src / "a.bin").unlink()
        return found

    monkeypatch.setattr(ingest, "plan", plan_then_lose)
    with pytest.raises(SourceUnreadableError, match=r"cannot read .*a\.bin"):
        ingest.put(vault, src, "m")
    _nothing_stored(vault, before)


def test_every_failure_of_a_put_discards_what_it_stored(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not only VaultError: a bug (here a TypeError in the signing step) cleans up as well.
    src = make_tree(tmp_path / "model", {"a.bin": b"a" * 100, "b.bin": b"b" * 100})
    before = vault_objects(vault)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise TypeError("a bug in seal")

    monkeypatch.setattr(ingest, "seal", broken)
    with pytest.raises(TypeError):
        ingest.put(vault, src, "m")
    _nothing_stored(vault, before)


def test_get_into_a_read_only_directory_is_a_one_line_error(vault: Vault, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "model", {"a.bin": b"a" * 100})
    artifact_id = ingest.put(vault, src, "m").artifact_id
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        proc = cli("get", artifact_id, "--out", str(ro / "out"))
        assert_one_line_error(
            proc, OutputUnwritableError.exit_code, str(ro / "out"), "Read-only file system"
        )
        assert list(ro.iterdir()) == []
    # A directory the user may not write to (mode 0555, root without DAC override).
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    proc = cli("get", artifact_id, "--out", str(locked / "out"), obey_modes=True)
    assert_one_line_error(
        proc, OutputUnwritableError.exit_code, str(locked / "out"), "Permission denied"
    )
    assert list(locked.iterdir()) == []


def test_get_onto_a_full_disk_is_a_one_line_error_and_leaves_no_plaintext(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "model", {"w.bin": weights(3 << 20)})
    artifact_id = ingest.put(vault, src, "m").artifact_id
    with tmpfs(tmp_path / "small", "1m") as small:
        proc = cli("get", artifact_id, "--out", str(small / "out"))
        assert_one_line_error(proc, DiskFullError.exit_code, "no space left", str(small / "out"))
        assert list(small.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (b"w\xff.bin", "w\\xff.bin"),
        (b"new\nline.bin", "new\\nline.bin"),
        (b"bell\x07.bin", "bell\\x07.bin"),
        ("evil\u202etxt.exe".encode(), "evil\\u202etxt.exe"),
        ("isolate\u2066.bin".encode(), "isolate\\u2066.bin"),
    ],
)
def test_put_refuses_unsafe_file_names_naming_them_escaped(
    vault: Vault, tmp_path: Path, name: bytes, shown: str
) -> None:
    src = make_tree(tmp_path / "model", {"ok.bin": b"ok"})
    (Path(os.fsdecode(os.fsencode(src) + b"/" + name))).write_bytes(b"x")
    before = vault_objects(vault)
    proc = cli("put", str(src), "--name", "m")
    line = assert_one_line_error(proc, UnsafeNameError.exit_code, shown, "rename it")
    assert "\u202e" not in line
    assert "\u2066" not in line
    _nothing_stored(vault, before)


def test_put_refuses_a_single_file_with_an_unsafe_name(vault: Vault, tmp_path: Path) -> None:
    odd = tmp_path / "tab\tname.bin"
    odd.write_bytes(b"x")
    before = vault_objects(vault)
    proc = cli("put", str(odd), "--name", "m")
    assert_one_line_error(proc, UnsafeNameError.exit_code, "tab\\tname.bin")
    _nothing_stored(vault, before)


def test_a_corrupt_credentials_file_is_a_one_line_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    creds = home / "store" / "credentials.json"
    creds.parent.mkdir(parents=True)
    creds.write_text('{"access_key": "WV1", "secret_')
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    proc = cli("ls")
    assert_one_line_error(proc, ConfigError.exit_code, str(creds), "damaged")
    creds.write_text('{"access_key": "WV1"}')
    assert_one_line_error(cli("ls"), ConfigError.exit_code, str(creds))


def test_output_to_a_closed_pipe_ends_quietly(vault: Vault, tmp_path: Path) -> None:
    for i in range(3):
        ingest.put(vault, make_tree(tmp_path / f"m{i}", {"a.bin": weights(64)}), f"m{i}")
    # The reader is gone before the CLI writes: every write gets EPIPE (as after `| head -1`).
    proc = subprocess.Popen(
        [*CLI, "ls", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_BROKEN_PIPE == 141
    assert err == ""
    piped = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$@" ls | head -1', "sh", *CLI],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert piped.returncode in (0, EXIT_BROKEN_PIPE), piped.stderr
    assert "Traceback" not in piped.stderr
    assert "error" not in piped.stderr
    assert piped.stdout.startswith("ID")


def test_a_missing_manifest_is_reported_as_such(vault: Vault, tmp_path: Path) -> None:
    artifact_id = ingest.put(vault, make_tree(tmp_path / "m", {"a.bin": b"a"}), "m").artifact_id
    vault.store.remove(vault.bucket("hot"), manifest_key(artifact_id))
    proc = cli("get", artifact_id, "--out", str(tmp_path / "out"))
    line = assert_one_line_error(proc, IntegrityError.exit_code, "manifest")
    assert "signed statement" not in line
    assert not (tmp_path / "out").exists()


# The store's "full" answers: MinIO's XMinioStorageFull (HTTP 507), WebDAV's 507 without an
# S3 body, and an InternalError whose message says the disk is full (SeaweedFS).
def _s3_error(code: str, message: str, status: int) -> S3Error:
    response = urllib3.HTTPResponse(body=b"", status=status)
    return S3Error(response, code, message, "/b/k", "req", "host", "b", "k")


@pytest.mark.parametrize(
    "exc",
    [
        _s3_error("XMinioStorageFull", "Storage backend has reached its minimum free drive", 507),
        _s3_error("InternalError", "write failed: no space left on device", 500),
        _s3_error("InternalError", "failed to assign: no free volumes left", 500),
        _s3_error("QuotaExceeded", "bucket quota exceeded", 403),
        ServerError("server failed with HTTP status code 507", 507),
        InvalidResponseError(507, "text/plain", "Insufficient Storage"),
    ],
)
def test_a_full_store_is_reported_as_full_not_unavailable(exc: BaseException) -> None:
    store = ObjectStore("127.0.0.1:1", "a", "b")
    with (
        pytest.raises(StoreFullError, match="out of space or over quota") as caught,
        store._translate("put hot/x"),  # noqa: SLF001 - the translation under test
    ):
        raise exc
    assert caught.value.exit_code == 25


def test_a_busy_store_is_still_unavailable_and_transient() -> None:
    store = ObjectStore("127.0.0.1:1", "a", "b")
    with (
        pytest.raises(StoreUnavailableError, match="SlowDown"),
        store._translate("put hot/x"),  # noqa: SLF001 - the translation under test
    ):
        raise _s3_error("SlowDown", "reduce your request rate", 503)


def test_a_full_vault_home_refuses_the_put_before_storing_anything(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "home", "16m") as home:
        settings = _vault_on(s3_server, home, monkeypatch)
        vault = Vault.open(settings)
        before = vault_objects(vault)
        fill(home)
        src = make_tree(tmp_path / "m", {"a.bin": weights(1000)})
        proc = cli("put", str(src), "--name", "m")
        assert_one_line_error(proc, DiskFullError.exit_code, str(home))
        # Reading still works or says the disk is full; never "cannot open the catalog".
        listed = cli("ls")
        if listed.returncode != 0:
            assert_one_line_error(listed, DiskFullError.exit_code, "no space left")
        (home / "filler").unlink()
        assert vault_objects(vault) == before
        assert incomplete_uploads(vault) == []


def _vault_on(s3_server: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    import uuid

    creds = s3_server.credentials()
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", s3_server.endpoint())
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", creds.access_key)
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", creds.secret_key)
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", f"t{uuid.uuid4().hex[:10]}")
    settings = load_settings(REPO / "config")
    init_vault(settings)
    return settings


# -- 9. unverified plaintext left behind ---------------------------------------------


def _killed_mid_get(vault: Vault, tmp_path: Path, out: Path) -> tuple[str, Path, int]:
    """A real `get` SIGKILLed once its staging holds plaintext; returns id, staging, pid."""
    src = make_tree(tmp_path / "big", {"w.bin": weights(128 << 20)})
    artifact_id = ingest.put(vault, src, "big").artifact_id
    proc = subprocess.Popen(
        [*CLI, "get", artifact_id, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    deadline = time.monotonic() + 300
    staging = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in out.parent.glob(f".{out.name}.partial-*") if (p / "data").is_dir()]
        if found and any(f.stat().st_size > 0 for f in (found[0] / "data").rglob("*.bin")):
            staging = found[0]
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert staging is not None, "the get ended before its staging held plaintext"
    assert proc.returncode == -signal.SIGKILL
    return artifact_id, staging, proc.pid


@pytest.mark.parametrize("cleanup", ["next-get", "gc", "cli-start"])
def test_plaintext_staging_of_a_killed_get_is_private_and_removed(
    vault: Vault, tmp_path: Path, cleanup: str
) -> None:
    out = tmp_path / "restore" / "out"
    out.parent.mkdir()
    artifact_id, staging, pid = _killed_mid_get(vault, tmp_path, out)
    # What the kill left: unverified plaintext, but in a 0700 directory (nobody else may
    # enter it) marked with the dead writer and listed in the vault home's 0600 registry.
    assert any(f.stat().st_size > 0 for f in (staging / "data").rglob("*.bin"))
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700
    assert stat.S_IMODE((staging / "data").stat().st_mode) == 0o700
    assert json.loads((staging / STAGING_MARKER).read_text())["writer"]["pid"] == pid
    registry = vault.staging_registry
    assert stat.S_IMODE(registry.stat().st_mode) == 0o700
    entries = list(registry.glob("*.json"))
    assert len(entries) == 1
    assert stat.S_IMODE(entries[0].stat().st_mode) == 0o600
    if cleanup == "next-get":
        proc = cli("get", artifact_id, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        assert (out / "w.bin").stat().st_size == 128 << 20
    elif cleanup == "gc":
        # The engine's gc (as the flow runs it; the CLI would already sweep at start).
        assert f"staging {staging}" in vault.gc()
    else:
        proc = cli("ls")
        assert proc.returncode == 0, proc.stderr
    assert not staging.exists()
    assert list(out.parent.glob(".out.partial-*")) == []
    assert list(registry.glob("*.json")) == []


def test_staging_of_a_live_get_is_left_alone(vault: Vault, tmp_path: Path) -> None:
    from weightvault._fs import staged_output, sweep_stale_staging

    out = tmp_path / "out"
    with staged_output(out, vault.staging_registry) as data:
        (data / "f").write_bytes(b"partial")
        assert sweep_stale_staging(vault.staging_registry, out) == []
        assert vault.sweep_staging() == []
        assert (data / "f").exists()
    assert (out / "f").read_bytes() == b"partial"
    assert list(tmp_path.glob(".out.partial-*")) == []
    assert list(vault.staging_registry.glob("*.json")) == []


# -- 11. loose files -------------------------------------------------------------------


def test_a_loose_vault_home_is_tightened_and_the_catalog_is_private(
    vault: Vault, tmp_path: Path
) -> None:
    home = vault.settings.home
    catalog = home / "catalog.db"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(catalog.stat().st_mode) == 0o600
    # A home loosened by hand (or made before with the default umask) is tightened on the
    # next open, and so is its catalog.
    home.chmod(0o755)
    catalog.chmod(0o644)
    proc = cli("ls")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(catalog.stat().st_mode) == 0o600
    for name in ("catalog.db-wal", "catalog.db-shm"):
        if (home / name).exists():
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o600


def test_init_tightens_a_pre_existing_0755_home(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    _vault_on(s3_server, home, monkeypatch)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert cli("ls").returncode == 0
    assert stat.S_IMODE((home / "catalog.db").stat().st_mode) == 0o600


def test_the_demo_keeps_the_store_secret_in_a_0600_dvc_config(tmp_path: Path) -> None:
    from pipeline.workspace import configure_remote, run

    repo = tmp_path / "repo"
    repo.mkdir()
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "dvc", "init", "-q")
    from weightvault.store import DvcRemote

    remote = DvcRemote("s3://b-dvc/", "http://127.0.0.1:9", "WVACCESS", "s3cr3t-dvc-key")
    configure_remote(repo, remote)
    local = repo / ".dvc" / "config.local"
    assert "s3cr3t-dvc-key" in local.read_text()
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert "s3cr3t-dvc-key" not in (repo / ".dvc" / "config").read_text()


def test_escrow_split_refuses_to_print_every_share_to_a_pipe(
    vault: Vault, vault_settings: Settings
) -> None:
    from weightvault.lifecycle.escrow import has_escrow_key

    for extra in ([], ["--json"]):
        proc = cli("escrow", "split", "--threshold", "2", "--shares", "3", *extra)
        assert_one_line_error(proc, UsageError.exit_code, "--out-dir")
        assert proc.stdout == ""
    # Refused before anything was made: no escrow key whose shares nobody holds.
    assert not has_escrow_key(Vault.open(vault_settings).keys)


def _read_until(fd: int, needle: bytes, transcript: bytearray, start: int) -> int:
    """Read the terminal until ``needle`` appears after ``start``; returns the offset past it."""
    deadline = time.monotonic() + 120
    while (at := transcript.find(needle, start)) < 0:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out waiting for {needle!r}; got {bytes(transcript)[-400:]!r}"
        transcript += os.read(fd, 65536)
    return at + len(needle)


def test_escrow_split_on_a_terminal_shows_one_share_at_a_time(vault: Vault) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        [*CLI, "escrow", "split", "--threshold", "2", "--shares", "3"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(follower)
    clear = b"\x1b[2J\x1b[3J\x1b[H"
    transcript = bytearray()
    shares: list[str] = []
    pos = 0
    try:
        for i in range(1, 4):
            pos = _read_until(leader, f"press Enter to show share {i}.".encode(), transcript, pos)
            # The share is shown only once its custodian presses Enter.
            assert f"share {i}:".encode() not in transcript
            os.write(leader, b"\n")
            end = _read_until(leader, b"press Enter to clear the screen", transcript, pos)
            screen = bytes(transcript[pos:end])
            line = next(x for x in screen.splitlines() if f"share {i}:".encode() in x)
            shares.append(line.split(b":", 1)[1].strip().decode())
            os.write(leader, b"\n")
            pos = _read_until(leader, clear, transcript, end)
        _read_until(leader, b"3 shares shown once each", transcript, pos)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert len(set(shares)) == 3
    assert all(len(s.split()) >= 20 for s in shares)
    # Each share appears once, and the screen is cleared between one share and the next.
    text = transcript.decode(errors="replace")
    for i, share in enumerate(shares):
        assert text.count(share) == 1
        if i:
            assert clear.decode() in text[text.index(shares[i - 1]) : text.index(share)]


def test_a_duplicate_of_quarantined_content_is_refused(vault: Vault, tmp_path: Path) -> None:
    files = {"w.bin": weights(1000), "config.json": b"{}"}
    original = ingest.put(vault, make_tree(tmp_path / "a", files), "m").artifact_id
    quarantine(vault, original, reason="poisoned weights")
    before = vault_objects(vault)
    proc = cli("put", str(make_tree(tmp_path / "b", files)), "--name", "again")
    assert_one_line_error(proc, QuarantinedError.exit_code, original, "quarantined")
    assert vault_objects(vault) == before
    assert [r.id for r in vault.catalog.list_artifacts()] == [original]


def test_a_full_embedded_store_says_so_and_the_put_is_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real thing: SeaweedFS on a disk that fills up answers a plain InternalError (500);
    # the vault must say the store is full, not that it is unreachable, and undo the put.
    home = tmp_path / "home"
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    with tmpfs(home / "store", "192m") as store_disk:
        settings = load_settings(REPO / "config")
        start_vault_store(settings)
        try:
            vault = Vault.open(settings)
            before = vault_objects(vault)
            free = shutil.disk_usage(store_disk).free
            with (store_disk / "filler").open("wb") as fh:
                fh.truncate(0)
                for _ in range(max(0, free - (24 << 20)) // (1 << 20)):
                    fh.write(b"\0" * (1 << 20))
            src = make_tree(tmp_path / "m", {"w.bin": weights(64 << 20)})
            proc = cli("put", str(src), "--name", "too-big")
            assert_one_line_error(proc, StoreFullError.exit_code, "out of space")
            (store_disk / "filler").unlink()
            assert vault_objects(vault) == before
            assert vault.catalog.list_artifacts() == []
        finally:
            EmbeddedStore(settings.store_dir).down()


def test_escrow_split_into_a_read_only_directory_makes_no_key(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    from weightvault.lifecycle.escrow import has_escrow_key

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = locked / "custodians"
    proc = cli("escrow", "split", "--out-dir", str(out), obey_modes=True)
    assert_one_line_error(proc, OutputUnwritableError.exit_code, str(out), "Permission denied")
    assert not has_escrow_key(Vault.open(vault_settings).keys)


def test_a_catalog_on_a_full_disk_says_the_disk_is_full(tmp_path: Path) -> None:
    from weightvault.catalog import Catalog

    with tmpfs(tmp_path / "home", "1m") as home:
        fill(home)
        with pytest.raises(DiskFullError, match=f"no space left for the catalog {home}"):
            Catalog(f"sqlite:///{home / 'catalog.db'}")
