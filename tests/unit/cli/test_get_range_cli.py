"""``get ID --file F --tensor NAME | --range START:END --out FILE`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_tree
from tests.support.safetensors import safetensors
from tests.unit.cli.test_cli import assert_one_line_error, run
from weightvault.artifacts import Vault
from weightvault.errors import InvalidInputError, NotFoundError, QuarantinedError, UsageError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.quarantine import quarantine


def test_get_tensor_and_range(vault: Vault, tmp_path: Path) -> None:
    body, tensors = safetensors({"a": ("F32", [16, 300]), "b": ("F16", [5, 3])})
    src = make_tree(tmp_path / "m", {"model.safetensors": body})
    artifact_id = ingest.put(vault, src, "cli-range").artifact_id

    out = tmp_path / "b.bin"
    proc = run(
        "get", artifact_id, "--file", "model.safetensors", "--tensor", "b", "--out", str(out),
        "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["dtype"] == "F16"
    assert doc["shape"] == [5, 3]
    assert body[doc["start"] : doc["end"]] == tensors["b"]
    assert out.read_bytes() == tensors["b"]

    out2 = tmp_path / "r.bin"
    proc = run("get", artifact_id, "--file", "model.safetensors", "--range", "100:19000",
               "--out", str(out2))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out2.read_bytes() == body[100:19000]

    # An existing output file is refused, and left alone.
    proc = run("get", artifact_id, "--file", "model.safetensors", "--range", "0:5",
               "--out", str(out2))  # fmt: skip
    assert_one_line_error(proc, InvalidInputError.exit_code, "exists")
    assert out2.read_bytes() == body[100:19000]

    bad = tmp_path / "bad.bin"
    proc = run("get", artifact_id, "--file", "model.safetensors", "--tensor", "zzz",
               "--out", str(bad))  # fmt: skip
    assert_one_line_error(proc, NotFoundError.exit_code, "'a', 'b'")
    assert not bad.exists()
    assert not list(tmp_path.glob(".bad.bin.*"))
    for args, code, needle in [
        (["--range", "5:2"], InvalidInputError.exit_code, "END is before START"),
        (["--range", "x:2"], InvalidInputError.exit_code, "START:END"),
        (["--range", f"0:{len(body) + 1}"], InvalidInputError.exit_code, "outside"),
        (["--tensor", "a", "--range", "0:1"], UsageError.exit_code, "not allowed with"),
    ]:
        proc = run("get", artifact_id, "--file", "model.safetensors", *args, "--out", str(bad))
        assert_one_line_error(proc, code, needle)
    proc = run("get", artifact_id, "--tensor", "a", "--out", str(bad))
    assert_one_line_error(proc, UsageError.exit_code, "--file")
    proc = run("get", artifact_id, "--file", "model.safetensors", "--out", str(bad))
    assert_one_line_error(proc, UsageError.exit_code, "--tensor")
    assert not bad.exists()

    quarantine(vault, artifact_id, reason="test")
    proc = run("get", artifact_id, "--file", "model.safetensors", "--tensor", "a",
               "--out", str(bad))  # fmt: skip
    assert_one_line_error(proc, QuarantinedError.exit_code, "quarantined")
    assert not bad.exists()
