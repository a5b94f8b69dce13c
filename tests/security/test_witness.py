"""A witness against a split-view attacker who holds the log keys or the store (SeaweedFS).

The attacker rewrites the audit bucket's log to another history, signed with the
log's own keys. The witness refuses to cosign it and keeps the evidence; a vault
that requires the witness refuses the forked checkpoint; ``weightvault witness
run`` exits 29 naming the sizes. Concurrent rounds never corrupt the witness.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.rfc6962 import ref_mth
from tests.support.tlog_writers import ORIGIN, log_keys, open_log
from tests.support.witness_logs import (
    entries_of,
    fill,
    new_bucket,
    rewrite_log,
    server_args,
    witness_rounds,
)
from weightvault.config import load_settings
from weightvault.errors import LogForkError, LogVerificationError
from weightvault.lifecycle import witness as steps
from weightvault.lifecycle.witness import check_log
from weightvault.records import (
    Witness,
    prove_entry,
    read_witnessed,
    verify_entry_proof,
    verify_log,
    witness_log,
)
from weightvault.store import EmbeddedStore, ObjectStore
from weightvault.store.layout import log_witness_key

CLI = [sys.executable, "-m", "weightvault.cli"]
WITNESS = "witness.test/w1"


@pytest.fixture
def store_args(s3_server: EmbeddedStore) -> dict[str, Any]:
    return server_args(s3_server)


@pytest.fixture
def seeds() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


@pytest.fixture
def prefix() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bucket(store_args: dict[str, Any], prefix: str) -> str:
    return new_bucket(store_args, f"{prefix}-audit")


@pytest.fixture
def witness(tmp_path: Path, seeds: tuple[bytes, bytes]) -> Witness:
    w = Witness.create(tmp_path / "witness", WITNESS)
    signers, _ = log_keys(*seeds)
    w.add_log(ORIGIN, [s.vkey for s in signers])  # type: ignore[attr-defined]
    return w


def _cli_env(store_args: dict[str, Any], prefix: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTVAULT_")}
    env.update(
        WEIGHTVAULT_HOME=str(tmp_path / "vault-home"),
        WEIGHTVAULT_S3_ENDPOINT=store_args["endpoint"],
        WEIGHTVAULT_S3_ACCESS_KEY=store_args["access_key"],
        WEIGHTVAULT_S3_SECRET_KEY=store_args["secret_key"],
        WEIGHTVAULT_BUCKET_PREFIX=prefix,
    )
    return env


@pytest.mark.parametrize("forged_size", [20, 30], ids=["same size", "larger"])
def test_a_forked_log_is_refused_by_the_witness_and_by_verification(
    store_args: dict[str, Any],
    bucket: str,
    seeds: tuple[bytes, bytes],
    witness: Witness,
    forged_size: int,
) -> None:
    log = open_log(store_args, bucket, seeds)
    genuine = entries_of("genuine", 20)
    fill(log, genuine)
    first = witness_log(witness, ObjectStore(**store_args), bucket)
    assert (first.old_size, first.size) == (0, 20)
    published = ObjectStore(**store_args).get_bytes(bucket, log_witness_key(WITNESS))
    report = verify_log(log, witnesses=[witness.verifier()])
    assert report.ok, report.problems
    assert report.witnesses[0]["size"] == 20

    # The attack: another history, signed with the log's own keys.
    forged = rewrite_log(store_args, bucket, seeds, entries_of("forged", forged_size))
    assert forged.checkpoint().checkpoint.size == forged_size  # it verifies on its own
    with pytest.raises(LogForkError) as caught:
        witness_log(witness, ObjectStore(**store_args), bucket)
    assert caught.value.exit_code == 29
    assert f"size {forged_size}" in caught.value.message
    assert "20" in caught.value.message
    latest = witness.latest(ORIGIN)
    assert latest is not None
    assert (latest.size, latest.root) == (20, ref_mth(genuine))
    assert len(witness.forks()) == 1
    assert ObjectStore(**store_args).get_bytes(bucket, log_witness_key(WITNESS)) == published

    # A vault that requires the witness refuses the forked checkpoint.
    report = verify_log(forged, witnesses=[witness.verifier()])
    assert [p.kind for p in report.problems] == ["fork"]
    assert f"witness {WITNESS}" in report.problems[0].detail
    with pytest.raises(LogForkError):
        report.raise_for_problems()
    # Without a witness (and with no checkpoint seen before) the forged log looks fine:
    # that is what the witness is for.
    assert verify_log(forged).ok


def test_entry_proofs_under_the_witnessed_checkpoint_carry_its_cosignature(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], witness: Witness
) -> None:
    log = open_log(store_args, bucket, seeds)
    entries = entries_of("proved", 30)
    fill(log, entries)
    witness_log(witness, ObjectStore(**store_args), bucket)
    fill(log, entries_of("later", 5))  # the log moved on since the witness's round
    seen = read_witnessed(log, witness.verifier())
    proof = prove_entry(log, 17, seen.signed())
    _, verifiers = log_keys(*seeds)
    checkpoint = verify_entry_proof(proof, entries[17], [*verifiers, witness.verifier()])
    assert checkpoint.size == 30
    assert checkpoint.root == ref_mth(entries)
    # A proof under the log's own newer checkpoint lacks the witness: refused when required.
    with pytest.raises(LogVerificationError, match=r"not signed by witness\.test/w1"):
        verify_entry_proof(prove_entry(log, 17), entries[17], [*verifiers, witness.verifier()])


def test_a_rolled_back_log_is_refused_and_a_deleted_cosignature_is_named(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], witness: Witness
) -> None:
    log = open_log(store_args, bucket, seeds)
    fill(log, entries_of("genuine", 20))
    witness_log(witness, ObjectStore(**store_args), bucket)
    rolled = rewrite_log(store_args, bucket, seeds, entries_of("genuine", 15))
    with pytest.raises(
        LogForkError, match=r"size 15 but witness witness\.test/w1 cosigned size 20"
    ):
        witness_log(witness, ObjectStore(**store_args), bucket)
    report = verify_log(rolled, witnesses=[witness.verifier()])
    assert [p.kind for p in report.problems] == ["rollback"]
    # The attacker deletes the published cosignature too: the missing cosignature is named.
    ObjectStore(**store_args).remove(bucket, log_witness_key(WITNESS))
    report = verify_log(rolled, witnesses=[witness.verifier()])
    assert [(p.kind, p.where) for p in report.problems] == [("witness", f"log/witness/{WITNESS}")]


def test_witness_run_cli_cosigns_then_exits_29_on_a_fork(
    store_args: dict[str, Any],
    bucket: str,
    prefix: str,
    seeds: tuple[bytes, bytes],
    tmp_path: Path,
) -> None:
    env = _cli_env(store_args, prefix, tmp_path)
    home = str(tmp_path / "cli-witness")
    init = subprocess.run(
        [*CLI, "witness", "init", "--home", home, "--name", WITNESS, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    signers, _ = log_keys(*seeds)
    vkeys = [arg for s in signers for arg in ("--vkey", s.vkey)]  # type: ignore[attr-defined]
    added = subprocess.run(
        [*CLI, "witness", "add-log", "--home", home, "--origin", ORIGIN, *vkeys],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    fill(open_log(store_args, bucket, seeds), entries_of("genuine", 7))
    run = subprocess.run(
        [*CLI, "witness", "run", "--home", home, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert '"size": 7' in run.stdout
    rewrite_log(store_args, bucket, seeds, entries_of("forged", 7))
    run = subprocess.run(
        [*CLI, "witness", "run", "--home", home],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 29, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("weightvault: error: ")
    assert "size 7 has root" in lines[0]
    assert "a forked log" in lines[0]
    assert "Traceback" not in run.stderr


def test_a_vault_that_lists_the_witness_requires_it(
    store_args: dict[str, Any],
    bucket: str,
    prefix: str,
    seeds: tuple[bytes, bytes],
    witness: Witness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _cli_env(store_args, prefix, tmp_path).items():
        if name.startswith("WEIGHTVAULT_"):
            monkeypatch.setenv(name, value)
    log = open_log(store_args, bucket, seeds)
    fill(log, entries_of("genuine", 6))
    settings = load_settings(REPO / "config")
    assert check_log(log, settings).ok  # no witness required yet
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", witness.vkey)
    settings = load_settings(REPO / "config")
    report = check_log(log, settings)
    assert [p.kind for p in report.problems] == ["witness"]  # it has cosigned nothing yet
    steps.run(witness.home, settings)
    assert check_log(log, settings).ok
    assert settings.last_checkpoint_path.read_bytes() == log.checkpoint().note
    forked = rewrite_log(store_args, bucket, seeds, entries_of("forged", 6))
    with pytest.raises(LogForkError):
        check_log(forked, settings).raise_for_problems()


def test_concurrent_witness_rounds_keep_one_consistent_state(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], witness: Witness
) -> None:
    log = open_log(store_args, bucket, seeds)
    entries = entries_of("grow", 3)
    fill(log, entries)
    ctx = multiprocessing.get_context("spawn")
    workers, rounds = 3, 4
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(
            target=witness_rounds,
            args=(store_args, bucket, str(witness.home), rounds, barrier, out),
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    for i in range(12):  # the log grows while the rounds run
        entry = f'{{"grow":"late","n":{i}}}'.encode()
        log.append(entry)
        entries.append(entry)
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    final = witness_log(witness, ObjectStore(**store_args), bucket)
    assert final.size == len(entries)
    for seen in results:
        sizes = [size for _, size, _ in seen]
        assert sizes == sorted(sizes)  # one process never sees the witness go back
        for old, size, root in seen:
            assert old <= size
            assert root == __import__("base64").b64encode(ref_mth(entries[:size])).decode()
    assert witness.forks() == []
    published = read_witnessed(log, witness.verifier())
    assert published.checkpoint.size == len(entries)
    leftovers = [p.name for p in (witness.home / "state").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
