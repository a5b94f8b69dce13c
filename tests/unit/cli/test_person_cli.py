"""The CLI a person expects: aliases and labels, candidates, confirmations, bad paths."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import (
    AliasNotFoundError,
    AmbiguousIdError,
    ConfirmationError,
    InvalidInputError,
    LocalPathError,
    NotFoundError,
    OutputUnwritableError,
)

CLI = [sys.executable, "-m", "weightvault.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def error_lines(proc: subprocess.CompletedProcess[str], code: int) -> list[str]:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("weightvault: error: ") for line in lines), proc.stderr
    return lines


def put(src: Path, name: str, *extra: str) -> str:
    proc = run("put", str(src), "--name", name, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["artifact_id"])


def test_aliases_labels_candidates_and_an_empty_catalog(
    vault_settings: Settings, tmp_path: Path
) -> None:
    v1 = put(make_tree(tmp_path / "v1", {"w.bin": weights(3000)}), "digits", "--label", "a=1")
    v2 = put(make_tree(tmp_path / "v2", {"w.bin": weights(3000)}), "digits")
    # An ambiguous prefix: one line, then a line per candidate, its own exit code.
    lines = error_lines(run("show", "wv-"), AmbiguousIdError.exit_code)
    assert "ambiguous" in lines[0]
    assert sorted(line.split()[3] for line in lines[1:]) == sorted([v1, v2])
    unset = error_lines(run("get", "digits@champion", "--out", str(tmp_path / "o")), 64)
    assert "alias digits@champion points at no artifact" in unset[0]
    assert not (tmp_path / "o").exists()
    assert run("alias", "set", "digits@champion", v1).returncode == 0
    assert run("label", "digits@champion", "license=MIT", "--remove", "a").returncode == 0
    got = run("get", "digits@champion", "--out", str(tmp_path / "out"))
    assert got.returncode == 0, got.stderr
    assert v1 in got.stdout
    shown = run("show", "digits@champion")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    for needle in ("names: digits", "labels: license=MIT", "aliases: digits@champion"):
        assert needle in text
    assert "provenance: verified statement signed by" in text
    assert "artifact.labeled by alice" in text
    listed = run("ls")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(v1))
    assert "digits@champion" in row
    assert "license=MIT" in row
    assert "kB" in row  # a size people read, not a byte count
    rows = {a["id"]: a for a in json.loads(run("ls", "--json").stdout)}
    assert rows[v1]["labels"] == {"license": "MIT"}
    assert rows[v1]["aliases"] == ["digits@champion"]
    aliases = json.loads(run("alias", "ls", "--json").stdout)
    assert [(a["alias"], a["artifact_id"]) for a in aliases] == [("digits@champion", v1)]
    assert run("alias", "rm", "digits@champion").returncode == 0
    error_lines(run("verify", "digits@champion"), AliasNotFoundError.exit_code)
    # Without a terminal a delete is refused unless --yes; nothing is deleted.
    refused = error_lines(run("delete", v2), ConfirmationError.exit_code)
    assert "--yes" in refused[0]
    assert v2 in run("ls").stdout
    # An empty catalog over a store that holds artifacts says how to index them.
    Vault.open(vault_settings).catalog.clear()
    hint = run("ls")
    assert "holds 2" in hint.stdout
    assert "weightvault catalog rebuild" in hint.stdout
    assert run("catalog", "rebuild").returncode == 0
    assert v1 in run("ls").stdout
    assert run("delete", v2, "--yes").returncode == 0
    assert v2 not in run("ls").stdout


def _delete_on_a_terminal(artifact_id: str, answer: bytes) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "delete", artifact_id], stdin=follower, stdout=follower, stderr=follower, cwd=REPO
    )
    os.close(follower)
    out = b""
    try:
        while b"[y/N]" not in out:
            ready, _, _ = select.select([leader], [], [], 120)
            assert ready, out
            out += os.read(leader, 4096)
        os.write(leader, answer)
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            try:
                data = os.read(leader, 4096) if ready else b""
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        os.close(leader)
    return proc.wait(timeout=60), out.decode(errors="replace")


def test_delete_asks_on_a_terminal_naming_the_artifact(
    vault_settings: Settings, tmp_path: Path
) -> None:
    artifact_id = put(make_tree(tmp_path / "m", {"w.bin": weights(5000)}), "doomed")
    code, out = _delete_on_a_terminal(artifact_id, b"n\n")
    assert code == ConfirmationError.exit_code, out
    assert f"delete artifact {artifact_id} (doomed, 5.0 kB, tier hot)?" in out
    assert "nothing was deleted" in out
    assert artifact_id in run("ls").stdout
    code, out = _delete_on_a_terminal(artifact_id, b"y\n")
    assert code == 0, out
    assert f"deleted {artifact_id}" in out
    assert artifact_id not in run("ls").stdout


def test_bad_paths_are_one_line_errors_with_their_exit_code(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """Every path argument of the commands, given what it cannot use."""
    artifact_id = put(make_tree(tmp_path / "m", {"w.bin": b"w"}), "paths")
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    full = make_tree(tmp_path / "full", {"x": b"1"})
    os.mkfifo(tmp_path / "fifo")
    missing = tmp_path / "missing"
    cases = {
        "put: missing source": (("put", str(missing), "--name", "x"), InvalidInputError),
        "put: a fifo": (("put", str(tmp_path / "fifo"), "--name", "x"), InvalidInputError),
        "get --out: missing parent": (
            ("get", artifact_id, "--out", str(missing / "out")),
            OutputUnwritableError,
        ),
        "get --out: parent is a file": (
            ("get", artifact_id, "--out", str(a_file / "out")),
            OutputUnwritableError,
        ),
        "get --out: a file": (("get", artifact_id, "--out", str(a_file)), InvalidInputError),
        "get --out: a full directory": (
            ("get", artifact_id, "--out", str(full)),
            InvalidInputError,
        ),
        "export --to: missing parent": (
            ("export", artifact_id, "--to", str(missing / "b")),
            OutputUnwritableError,
        ),
        "--home: a file": (("ls", "--home", str(a_file)), InvalidInputError),
        "offline-verify: missing": (("offline-verify", str(missing)), InvalidInputError),
        "offline-verify: a file": (("offline-verify", str(a_file)), InvalidInputError),
        "trust pin: missing": (("trust", "pin", str(missing)), InvalidInputError),
        "escrow recover --share: missing": (
            ("escrow", "recover", "--share", str(missing)),
            InvalidInputError,
        ),
        "contain --incident-file: missing": (
            ("contain", "--incident-file", str(missing)),
            InvalidInputError,
        ),
        "access: missing grant": (
            ("access", str(missing), "--root", str(a_file), "--out", str(tmp_path / "o")),
            InvalidInputError,
        ),
        "show: unknown id": (("show", "wv-00000000-0000"), NotFoundError),
        "export --oci: missing parent": (
            ("export", artifact_id, "--oci", str(missing / "layout")),
            OutputUnwritableError,
        ),
        "dvc-remote: missing repo": (("dvc-remote", str(missing)), InvalidInputError),
        "dvc-remote: not a DVC repo": (("dvc-remote", str(full)), InvalidInputError),
        "audit prove --out: missing parent": (
            ("audit", "prove", "#0", "--out", str(missing / "p")),
            OutputUnwritableError,
        ),
        "audit check-proof: missing proof": (
            ("audit", "check-proof", str(missing), "--entry", str(a_file), "--vkey", "v"),
            InvalidInputError,
        ),
        "validate --model-repo: missing": (
            ("validate", artifact_id, "--model-repo", str(missing)),
            InvalidInputError,
        ),
        "policy eval --input: a directory": (
            ("policy", "eval", "--input", str(full)),
            LocalPathError,
        ),
        "keys --cbom: parent is a file": (
            ("keys", "inventory", "--cbom", str(a_file / "cbom.json")),
            LocalPathError,
        ),
        "label: not KEY=VALUE": (("label", artifact_id, "license"), InvalidInputError),
        "alias set: no alias name": (("alias", "set", "paths@", artifact_id), InvalidInputError),
    }
    wrong = {}
    for what, (args, error) in cases.items():
        proc = run(*args)
        lines = proc.stderr.strip().splitlines()
        if (
            proc.returncode != error.exit_code
            or len(lines) != 1
            or not lines[0].startswith("weightvault: error: ")
        ):
            wrong[what] = (proc.returncode, proc.stderr.strip()[:200])
    assert wrong == {}
