"""On a terminal the CLI draws progress bars and tables (rich); piped, it prints plain text."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from weightvault.config import Settings

CLI = [sys.executable, "-m", "weightvault.cli"]


def _on_a_terminal(*args: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns its code and output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [*CLI, *args], stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, cwd=REPO, env=env
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                proc.kill()
                break
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_put_verify_get_draw_byte_progress_on_a_terminal(
    vault_settings: Settings, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "m", {"w.bin": weights(48 << 20)})
    code, out = _on_a_terminal("put", str(src), "--name", "big")
    assert code == 0, out
    assert "put big" in out
    assert "MB" in out  # the bytes column (rich DownloadColumn)
    ids = re.findall(r"wv-[0-9]{8}-[0-9a-f]{16}", out)
    assert ids, out
    artifact_id = ids[-1]
    code, out = _on_a_terminal("verify", artifact_id)
    assert code == 0, out
    assert f"verify {artifact_id}" in out
    code, out = _on_a_terminal("get", artifact_id, "--out", str(tmp_path / "out"))
    assert code == 0, out
    assert f"get {artifact_id}" in out
    assert (tmp_path / "out" / "w.bin").read_bytes() == (src / "w.bin").read_bytes()


def test_ls_is_a_table_on_a_terminal_and_plain_when_piped(
    vault_settings: Settings, tmp_path: Path
) -> None:
    put = subprocess.run(
        [*CLI, "put", str(make_tree(tmp_path / "a", {"x": b"x"})), "--name", "alpha", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    artifact_id = json.loads(put.stdout)["artifact_id"]
    assert put.stderr == ""  # no progress bar when not on a terminal
    code, out = _on_a_terminal("ls")
    assert code == 0, out
    assert "\x1b[" in out  # rich styled the header
    assert artifact_id in out
    assert "alpha" in out
    piped = subprocess.run([*CLI, "ls"], capture_output=True, text=True, cwd=REPO, check=True)
    assert "\x1b[" not in piped.stdout
    header, row = piped.stdout.splitlines()
    assert header.split() == ["ID", "NAMES", "CREATED", "TIER", "SIZE", "VALIDATION", "LABELS"]
    cells = row.split()
    assert cells[:2] == [artifact_id, "alpha"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[2]), row
    assert cells[4:] == ["hot", "1", "byte", "-", "-"]
