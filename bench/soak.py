"""Soak: several workers ingesting, validating, promoting and reading while a rotation runs.

Issue 16 item 5. One vault as a team past one machine would run it:

- a throwaway PostgreSQL cluster (Debian's server binaries, ``tests/support/postgres.py``)
  holding the catalog (``WEIGHTVAULT_CATALOG_URL``) and the shared keystore
  (``WEIGHTVAULT_KEYSTORE_URL``);
- the embedded store (``--nodes N`` volume servers when the store supports it);
- ``--workers`` worker processes, each with a vault home of its own (a host), the
  master key from the environment, acting as one enrolled identity.

Each worker takes its share of ``--artifacts`` and, per artifact: **put** (a few files,
``--size-kib`` in all), **validate** (format scan, provenance suite, signed report),
**promote** every second one to warm (under an admit-everything admission policy:
the gates are not what is measured), **get** (download, decrypt, verify). When a
third of the artifacts are in, the main process runs a whole key rotation (every
tier's KEK forced) while the workers go on.

Afterwards, checked: every artifact verifies; ``catalog rebuild`` into a fresh
database reproduces the catalog row for row; the audit log verifies; no envelope is
on a retired key. Reported: throughput and p50/p99 latency per operation, and the
pipeline throughput with 1 worker against ``--workers`` (a first, smaller phase with
one worker). Results are printed and written to ``bench/RESULTS.md`` under "Soak".

    .venv/bin/python bench/soak.py [--artifacts 500] [--workers 4] [--single 60]
"""

from __future__ import annotations

import argparse
import base64
import functools
import multiprocessing
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import write_section  # noqa: E402
from bench.rotation import git_rev  # noqa: E402
from tests.support.artifacts import rebuildable_rows  # noqa: E402
from tests.support.postgres import PostgresServer, postgres_server  # noqa: E402
from tests.support.tiers import permissive  # noqa: E402
from weightvault.artifacts import Vault  # noqa: E402
from weightvault.config import load_settings  # noqa: E402
from weightvault.keys import KeyState, create_identity  # noqa: E402
from weightvault.lifecycle import ingest, rotation  # noqa: E402
from weightvault.lifecycle.audit import verify_audit  # noqa: E402
from weightvault.lifecycle.bootstrap import init_vault  # noqa: E402
from weightvault.lifecycle.promote import promote  # noqa: E402
from weightvault.lifecycle.rebuild import rebuild_catalog  # noqa: E402
from weightvault.lifecycle.validate import validate_artifact  # noqa: E402
from weightvault.logs import configure_logging  # noqa: E402
from weightvault.store import EmbeddedStore  # noqa: E402

OPS = ("put", "validate", "promote", "get")


def _safetensors(size: int) -> bytes:
    """A safetensors file of about ``size`` bytes: one random F32 tensor."""
    import numpy as np
    from safetensors.numpy import save

    weight = np.frombuffer(os.urandom(max(4, size // 4 * 4)), dtype=np.float32)
    return save({"weight": weight}, metadata={"format": "np"})


def _artifact_files(root: Path, index: int, size_kib: int) -> Path:
    """A small model folder: weights, a config and a tokenizer file; distinct per index."""
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(_safetensors(max(1, size_kib - 2) * 1024))
    (root / "config.json").write_text(f'{{"index": {index}, "layers": 4}}\n')
    (root / "tokenizer.json").write_text('{"model": {"vocab": {"a": 1, "b": 2}}}\n' + " " * 900)
    return root


def worker(
    env: dict[str, str],
    indexes: list[int],
    size_kib: int,
    scratch: str,
    progress: Any,
    out: Any,
) -> None:
    """One worker process: its own home; put, validate, promote, get each of ``indexes``."""
    os.environ.update(env)
    configure_logging("WARNING")
    settings = load_settings(REPO / "config")
    vault = Vault.open(settings)
    gated = permissive(vault)
    timings: list[tuple[str, float]] = []
    ids: list[str] = []
    errors: list[str] = []
    for index in indexes:
        src = _artifact_files(Path(scratch) / f"src-{index}", index, size_kib)
        try:
            t = time.perf_counter()
            artifact_id = ingest.put(vault, src, f"soak-{index % 50}").artifact_id
            timings.append(("put", time.perf_counter() - t))
            ids.append(artifact_id)
            t = time.perf_counter()
            validate_artifact(vault, artifact_id, None)
            timings.append(("validate", time.perf_counter() - t))
            if index % 2 == 0:
                t = time.perf_counter()
                promote(gated, artifact_id, "warm", justification="soak")
                timings.append(("promote", time.perf_counter() - t))
            t = time.perf_counter()
            got = Path(scratch) / f"got-{index}"
            vault.get(artifact_id, got)
            timings.append(("get", time.perf_counter() - t))
            shutil.rmtree(got, ignore_errors=True)
        except Exception as exc:  # reported, and the soak fails
            errors.append(f"artifact {index}: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(src, ignore_errors=True)
            with progress.get_lock():
                progress.value += 1
    out.put({"timings": timings, "ids": ids, "errors": errors})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_phase(
    env: dict[str, str],
    workers: int,
    indexes: list[int],
    size_kib: int,
    scratch: Path,
    rotate_vault: Vault | None,
) -> dict[str, Any]:
    """``workers`` processes over ``indexes``; with ``rotate_vault`` a rotation runs midway."""
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Value("i", 0)
    out = ctx.Queue()
    shares = [indexes[i::workers] for i in range(workers)]
    procs = []
    for number, share in enumerate(shares):
        home = scratch / f"worker-{len(indexes)}-{number}"
        proc_env = {**env, "WEIGHTVAULT_HOME": str(home)}
        work = scratch / f"work-{len(indexes)}-{number}"
        work.mkdir(parents=True)
        procs.append(
            ctx.Process(target=worker, args=(proc_env, share, size_kib, str(work), progress, out))
        )
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    rotation_run: dict[str, Any] | None = None
    if rotate_vault is not None:
        while progress.value < len(indexes) // 3 and any(p.is_alive() for p in procs):
            time.sleep(0.2)
        t = time.perf_counter()
        report = rotation.rotate(
            rotate_vault, datetime.now(UTC), force_tiers=("hot", "warm", "cold")
        )
        rotation_run = {
            "seconds": time.perf_counter() - t,
            "rewrapped": sum(t.stats.rewrapped for t in report.tiers),
            "at_progress": progress.value,
        }
    results = [out.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join(timeout=120)
    wall = time.perf_counter() - started
    timings: dict[str, list[float]] = {op: [] for op in OPS}
    ids: list[str] = []
    errors: list[str] = []
    for res in results:
        for op, seconds in res["timings"]:
            timings[op].append(seconds)
        ids += res["ids"]
        errors += res["errors"]
    return {
        "workers": workers,
        "artifacts": len(indexes),
        "wall": wall,
        "ids": ids,
        "errors": errors,
        "rotation": rotation_run,
        "ops": {
            op: {
                "count": len(v),
                "per_s": len(v) / wall,
                "p50": _percentile(v, 0.5),
                "p99": _percentile(v, 0.99),
            }
            for op, v in timings.items()
            if v
        },
    }


def check_after(vault: Vault, ids: list[str], pg: PostgresServer) -> dict[str, Any]:
    """Every artifact verifies; the rebuilt catalog equals the live one; the log verifies."""
    t = time.perf_counter()
    failed = []
    for artifact_id in ids:
        try:
            vault.verify(artifact_id)
        except Exception as exc:
            failed.append(f"{artifact_id}: {type(exc).__name__}: {exc}")
    verify_s = time.perf_counter() - t
    live = {(r.key_id, r.version) for r in vault.keys.records() if r.state != KeyState.RETIRED}
    on_retired = [k for k in vault.catalog.envelope_counts() if k not in live]
    t = time.perf_counter()
    report, counts = verify_audit(vault)  # before the rebuild, which logs into its own catalog
    audit_s = time.perf_counter() - t
    t = time.perf_counter()
    rebuilt = Vault.open(
        replace(vault.settings, catalog_url=pg.create_database("rebuilt_" + uuid.uuid4().hex[:8]))
    )
    rebuild_catalog(rebuilt)
    rebuild_s = time.perf_counter() - t
    before, after = rebuildable_rows(vault), rebuildable_rows(rebuilt)
    differing = sorted(t for t in before if before[t] != after.get(t))
    return {
        "verified": len(ids) - len(failed),
        "verify_failures": failed[:5],
        "verify_s": verify_s,
        "rebuild_s": rebuild_s,
        "rebuild_rows": {t: len(r) for t, r in before.items()},
        "rebuild_differs": differing,
        "audit_ok": report.ok,
        "audit_problems": [str(p) for p in report.problems][:5],
        "audit_entries": report.size,
        "index_rows": counts.get("rows"),
        "audit_s": audit_s,
        "envelopes_on_retired_keys": on_retired,
    }


def markdown(res: dict[str, Any], command: str) -> str:
    """The RESULTS.md section."""
    single, multi, checks = res["single"], res["multi"], res["checks"]
    lines = [
        f"Command: `{command}`  ",
        f"Date: {res['date']}; machine: {res['machine']}; commit {res['commit']}  ",
        f"Setup: PostgreSQL {res['postgres']} (catalog and shared keystore), "
        f"store with {res['nodes']} node(s), artifacts of {res['size_kib']} KiB "
        "(3 files), every second one promoted to warm.",
        "",
        f"| operation | {multi['workers']} workers: ops/s | p50 s | p99 s | "
        "1 worker: ops/s | p50 s | p99 s |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in OPS:
        m, s = multi["ops"].get(op), single["ops"].get(op)
        if m is None or s is None:
            continue
        lines.append(
            f"| {op} | {m['per_s']:.2f} | {m['p50']:.3f} | {m['p99']:.3f} | "
            f"{s['per_s']:.2f} | {s['p50']:.3f} | {s['p99']:.3f} |"
        )
    one = single["artifacts"] / single["wall"]
    many = multi["artifacts"] / multi["wall"]
    rot = multi["rotation"] or {}
    lines += [
        "",
        f"Pipeline throughput (put + validate + promote/2 + get per artifact): "
        f"{one:.2f} artifacts/s with 1 worker ({single['artifacts']} artifacts, "
        f"{single['wall']:.0f} s), {many:.2f} artifacts/s with {multi['workers']} workers "
        f"({multi['artifacts']} artifacts, {multi['wall']:.0f} s): x{many / one:.2f}.",
        f"Rotation during the run: every tier forced, {rot.get('rewrapped', 0)} envelopes "
        f"rewrapped in {rot.get('seconds', 0):.1f} s, started when "
        f"{rot.get('at_progress', 0)} artifacts were done.",
        f"Errors: {len(single['errors']) + len(multi['errors'])}.",
        "",
        f"Afterwards: {checks['verified']} of {len(res['ids'])} artifacts verify "
        f"({checks['verify_s']:.0f} s); catalog rebuild into a fresh database "
        f"({checks['rebuild_s']:.0f} s) differs in tables: "
        f"{', '.join(checks['rebuild_differs']) or 'none'} (rows: "
        + ", ".join(f"{t} {n}" for t, n in checks["rebuild_rows"].items())
        + f"); audit log of {checks['audit_entries']} entries verifies: {checks['audit_ok']} "
        f"({checks['audit_s']:.0f} s); "
        f"envelopes on a retired key: {len(checks['envelopes_on_retired_keys'])}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 when every check after it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--single", type=int, default=60, help="artifacts of the 1-worker phase")
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--nodes", type=int, default=3, help="store volume servers")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="wv-soak-") as tmp, postgres_server() as pg:
        scratch = Path(tmp)
        identities = scratch / "identities"
        create_identity("soak", directory=identities)
        env = {
            "WEIGHTVAULT_IDENTITY_DIR": str(identities),
            "WEIGHTVAULT_IDENTITY": "soak",
            "WEIGHTVAULT_CERTIFICATE_TIERS": "none",
            "WEIGHTVAULT_BUCKET_PREFIX": f"soak{uuid.uuid4().hex[:6]}",
            "WEIGHTVAULT_CATALOG_URL": pg.create_database("catalog"),
            "WEIGHTVAULT_KEYSTORE_URL": pg.create_database("keystore"),
            "WEIGHTVAULT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        os.environ.update(env)
        os.environ["WEIGHTVAULT_HOME"] = str(scratch / "main")
        settings = load_settings(REPO / "config")
        store = EmbeddedStore(settings.store_dir)
        up = functools.partial(store.up, nodes=args.nodes)
        try:
            up()
            creds = store.credentials()
            env |= {
                "WEIGHTVAULT_S3_ENDPOINT": store.endpoint(),
                "WEIGHTVAULT_S3_ACCESS_KEY": creds.access_key,
                "WEIGHTVAULT_S3_SECRET_KEY": creds.secret_key,
            }
            os.environ.update(env)
            settings = load_settings(REPO / "config")
            init_vault(settings)
            vault = Vault.open(settings)
            total = args.single + args.artifacts
            single = run_phase(env, 1, list(range(args.single)), args.size_kib, scratch, None)
            multi = run_phase(
                env, args.workers, list(range(args.single, total)), args.size_kib, scratch, vault
            )
            ids = single["ids"] + multi["ids"]
            checks = check_after(vault, ids, pg)
        finally:
            store.down()
        res = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}",
            "commit": git_rev(),
            "postgres": pg.bin_dir.parent.name,
            "nodes": args.nodes,
            "size_kib": args.size_kib,
            "single": single,
            "multi": multi,
            "checks": checks,
            "ids": ids,
        }
    command = "python bench/soak.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = markdown(res, command.strip())
    print(text)
    heading = "## Soak: workers, PostgreSQL, rotation (issue 16)"
    write_section(args.out, heading, f"{heading}\n\n{text}")
    ok = (
        not single["errors"]
        and not multi["errors"]
        and checks["verified"] == len(ids)
        and not checks["rebuild_differs"]
        and checks["audit_ok"]
        and not checks["envelopes_on_retired_keys"]
    )
    for problem in (single["errors"] + multi["errors"])[:10] + checks["audit_problems"]:
        print("error:", problem, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
