"""`weightvault identity create|show|list|export`, in-process (no store needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weightvault.cli import main
from weightvault.keys import load_identity, parse_public_key


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_show_list_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    where = str(tmp_path / "ids")
    code, out, _ = _run(capsys, "identity", "create", "ops-bot", "--dir", where, "--json")
    assert code == 0
    made = json.loads(out)
    assert made["name"] == "ops-bot"
    assert made["protection"] == "none"
    assert "private_key" not in out
    code, out, _ = _run(capsys, "identity", "show", "ops-bot", "--dir", where, "--json")
    assert code == 0
    assert json.loads(out)["keyid"] == made["keyid"]
    code, out, _ = _run(capsys, "identity", "list", "--dir", where, "--json")
    assert [i["name"] for i in json.loads(out)] == ["ops-bot"]
    code, out, _ = _run(capsys, "identity", "export", "ops-bot", "--dir", where, "--line")
    assert code == 0
    assert out.startswith(f"ops-bot+{made['keyid']}+")
    assert parse_public_key(out.encode(), "stdout").keyid == made["keyid"]
    key = load_identity(Path(made["path"])).key.private_bytes()
    assert key.hex() not in out


def test_errors_are_one_line_with_exit_41(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = str(tmp_path / "ids")
    code, _, err = _run(capsys, "identity", "show", "nobody", "--dir", where)
    assert code == 41
    assert err.count("\n") == 1
    assert "no identity file" in err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, _, err = _run(
        capsys, "identity", "create", "x", "--dir", where, "--passphrase-file", str(empty)
    )
    assert code == 41
    assert "empty" in err
    assert not (tmp_path / "ids" / "x.key").exists()
    code, _, err = _run(capsys, "identity", "create", "Bad Name", "--dir", where)
    assert code == 41
