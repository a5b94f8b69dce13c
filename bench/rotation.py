"""Benchmark: KEK rotation of 10,000 artifacts vs. a full re-encryption.

ARCHITECTURE.md section 9: "Rotation of 10,000 artifacts <= 30 s, zero
ciphertext bytes rewritten".

1. A dedicated vault on its own embedded SeaweedFS server (temporary home,
   stopped at the end). ``--count`` artifacts are created *envelopes only*:
   an envelope object (a random DEK wrapped under ``kek-hot@v1``) and the
   catalog rows (artifact, placement, envelope), written with the core, no
   files uploaded. Setup is not timed.
2. Timed: :func:`weightvault.lifecycle.rotation.rotate_tier` for the hot tier with the
   sample verification off (there are no files to verify): new KEK version,
   catalog listing, rewrap of every envelope in batches with a thread pool
   (one catalog transaction per batch), store double-check (listing of the
   envelope bucket) and retirement of ``kek-hot@v1``. Phases are timed too.
3. Checked: every envelope object and catalog row is on v2, v1 is retired, a
   sample of envelopes unwraps to the same DEK as before, and the tier
   bucket holds exactly the objects it held before (no ciphertext written).
4. Re-encryption for comparison, on a smaller sample (``--reencrypt-sample``
   real artifacts of ``--reencrypt-mib`` MiB each, put with ``Vault.put``):
   :func:`weightvault.lifecycle.rekey.reencrypt_artifact` per artifact, extrapolated
   linearly to ``--count`` artifacts (the extrapolation is reported as such).

Results are printed and appended to ``bench/RESULTS.md`` under "Key
rotation" (that section is replaced on a re-run; the rest of the file is
left as it is).

    .venv/bin/python bench/rotation.py [--count 10000] [--workers 8] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import write_section  # noqa: E402
from weightvault._json import canonical_json  # noqa: E402
from weightvault.artifacts import Vault  # noqa: E402
from weightvault.config import load_settings  # noqa: E402
from weightvault.keys import KeyState  # noqa: E402
from weightvault.lifecycle import ingest, rotation  # noqa: E402
from weightvault.lifecycle.bootstrap import init_vault  # noqa: E402
from weightvault.logs import configure_logging  # noqa: E402
from weightvault.store import EmbeddedStore  # noqa: E402
from weightvault.store.layout import envelope_key  # noqa: E402

TARGET_S = 30.0
VAULT_ENV = (
    "WEIGHTVAULT_HOME",
    "WEIGHTVAULT_S3_ENDPOINT",
    "WEIGHTVAULT_S3_ACCESS_KEY",
    "WEIGHTVAULT_S3_SECRET_KEY",
    "WEIGHTVAULT_BUCKET_PREFIX",
    "WEIGHTVAULT_MASTER_KEY",
    "WEIGHTVAULT_CONFIG",
    "WEIGHTVAULT_CATALOG_URL",
)


@contextlib.contextmanager
def bench_vault() -> Iterator[Vault]:
    """A fresh vault with its own embedded store in a temporary home."""
    saved = {k: os.environ.pop(k) for k in VAULT_ENV if k in os.environ}
    with tempfile.TemporaryDirectory(prefix="wv-bench-rotation-") as tmp:
        os.environ["WEIGHTVAULT_HOME"] = str(Path(tmp) / "home")
        settings = load_settings(REPO / "config")
        try:
            init_vault(settings)
            yield Vault.open(settings)
        finally:
            EmbeddedStore(settings.store_dir).down()
            os.environ.pop("WEIGHTVAULT_HOME", None)
            os.environ.update(saved)


def make_envelopes(vault: Vault, count: int, workers: int) -> dict[str, bytes]:
    """``count`` artifacts with an envelope object and catalog rows, no files."""
    stamp = datetime.now(UTC)
    ids = [f"wv-{stamp:%Y%m%d}-{secrets.token_hex(8)}" for _ in range(count)]
    deks = {a: secrets.token_bytes(32) for a in ids}
    bucket = vault.bucket("envelopes")
    keys = rotation.rotating_keys(vault)
    kek = keys.active_kek("hot")
    keys.reserve_wraps(kek, count)  # one count for all, as a rotation batch does

    def put(artifact_id: str) -> tuple[str, int]:
        wrapped = keys.wrap_with(kek, "hot", artifact_id, deks[artifact_id])
        vault.store.put_bytes(
            bucket, envelope_key(artifact_id, "hot"), canonical_json(wrapped.to_dict())
        )
        return wrapped.kek_id, wrapped.kek_version

    with ThreadPoolExecutor(max_workers=workers) as pool:
        refs = list(pool.map(put, ids))
    now = stamp.isoformat()
    with vault.catalog.transaction() as conn:
        for artifact_id, (kek, version) in zip(ids, refs, strict=True):
            vault.catalog.add_artifact(
                conn,
                {
                    "id": artifact_id,
                    "name": f"bench-{artifact_id[-6:]}",
                    "content_digest": "sha256:" + secrets.token_hex(32),
                    "manifest_sha256": secrets.token_hex(32),
                    "created_at": now,
                    "creator": "bench",
                    "tier": "hot",
                    "file_count": 0,
                    "total_size": 0,
                    "signed_by": None,
                    "validation_status": None,
                    "validation_sha256": None,
                },
                [],
                {
                    "artifact_id": artifact_id,
                    "tier": "hot",
                    "bucket": vault.bucket("hot"),
                    "since": now,
                    "retain_until": None,
                    "legal_hold": 0,
                    "generation": 0,
                },
                {
                    "artifact_id": artifact_id,
                    "tier": "hot",
                    "kek_id": kek,
                    "kek_version": version,
                    "object_key": envelope_key(artifact_id, "hot"),
                },
            )
    return deks


def tier_objects(vault: Vault) -> dict[str, str]:
    """key -> ETag of every object in the hot bucket."""
    return {o.key: o.etag for o in vault.store.list(vault.bucket("hot"), "")}


def machine_busy() -> float:
    """CPU-seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU-seconds of ``procs`` (processes that exited count 0)."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def server_processes(vault: Vault) -> list[psutil.Process]:
    """The embedded store's process tree."""
    pid = EmbeddedStore(vault.settings.store_dir).status().pid
    if pid is None:
        return []
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def timed_rotation(vault: Vault, batch_size: int, workers: int) -> dict[str, Any]:
    """rotate_tier's steps, each timed (the same calls rotate_tier makes), with CPU accounting."""
    me, server = [psutil.Process()], server_processes(vault)
    c0, s0, m0 = cpu_seconds(me), cpu_seconds(server), machine_busy()
    t0 = time.perf_counter()
    rot = rotation.start_rotation(vault, "hot")
    t1 = time.perf_counter()
    refs = rotation.pending_envelopes(vault, rot)
    t2 = time.perf_counter()
    stats = rotation.rewrap_all(vault, rot, refs, batch_size=batch_size, workers=workers)
    t3 = time.perf_counter()
    retire = rotation.retire_drained(vault, rot, workers=workers)
    t4 = time.perf_counter()
    client, store = cpu_seconds(me) - c0, cpu_seconds(server) - s0
    other = max(0.0, machine_busy() - m0 - client - store)
    return {
        "client_cpu_s": client,
        "server_cpu_s": store,
        "other_cpu_s": other,
        "total_s": t4 - t0,
        "start_s": t1 - t0,
        "list_s": t2 - t1,
        "rewrap_s": t3 - t2,
        "retire_s": t4 - t3,
        "rewrapped": stats.rewrapped,
        "already": stats.already,
        "missing": stats.missing,
        "retired": list(retire.retired),
        "store_listed": retire.store_listed,
        "strays": retire.strays_rewrapped,
        "target": rot.target_version,
    }


def check(vault: Vault, deks: dict[str, bytes], target: int, sample: int) -> dict[str, Any]:
    """Everything on the new version, v1 retired, DEKs unchanged on a sample."""
    keys = rotation.rotating_keys(vault)
    on_old = len(vault.catalog.envelopes_on("kek-hot", 1))
    on_new = len(vault.catalog.envelopes_on("kek-hot", target))
    chosen = random.sample(sorted(deks), min(sample, len(deks)))
    same = 0
    for artifact_id in chosen:
        wrapped = vault.load_envelope(artifact_id, "hot")
        assert wrapped.kek_version == target, artifact_id
        same += keys.unwrap_dek(wrapped) == deks[artifact_id]
    return {
        "catalog_on_old": on_old,
        "catalog_on_new": on_new,
        "sample": len(chosen),
        "sample_same_dek": same,
        "v1_state": str(keys.get("kek-hot", 1).state),
    }


def put_sample(vault: Vault, count: int, mib: float) -> list[str]:
    """``count`` real artifacts (``mib`` MiB + one small file each), put with Vault.put."""
    size = int(mib * (1 << 20))
    ids = []
    with tempfile.TemporaryDirectory(prefix="wv-bench-src-") as tmp:
        for i in range(count):
            src = Path(tmp) / f"m{i}"
            src.mkdir()
            (src / "model.safetensors").write_bytes(os.urandom(size))
            (src / "config.json").write_bytes(b'{"i": %d}' % i)
            ids.append(ingest.put(vault, src, f"sample-{i}", "hot").artifact_id)
    return ids


def reencrypt_sample(vault: Vault, ids: list[str], mib: float) -> dict[str, Any]:
    """Time re-encrypting each of ``ids`` (real artifacts) under a fresh DEK."""
    from weightvault.lifecycle import rekey

    times = []
    for artifact_id in ids:
        t = time.perf_counter()
        rekey.reencrypt_artifact(vault, artifact_id)
        times.append(time.perf_counter() - t)
    for artifact_id in ids[:3]:
        vault.verify(artifact_id)
    return {
        "count": len(ids),
        "mib": mib,
        "per_artifact_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
        "min_s": min(times),
        "max_s": max(times),
    }


def git_rev() -> str:
    """Short commit, with a note when the tree has changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (with uncommitted changes under src/)" if dirty else "")


def markdown(res: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    """The "Key rotation" section of RESULTS.md."""
    r, c, e = res["rotation"], res["check"], res["reencrypt"]
    n = r["rewrapped"]
    per_rotation = r["total_s"] / n
    extrapolated = e["per_artifact_s"] * n
    cpu = r["client_cpu_s"] + r["server_cpu_s"]
    idle_estimate = max(r["client_cpu_s"], cpu / (os.cpu_count() or 1))
    ok = r["total_s"] <= TARGET_S and res["ciphertext_unchanged"]
    lines = [
        "## Key rotation",
        "",
        "Generated by `bench/rotation.py` (re-running it replaces only this section).",
        "",
        f"- Command: `{command}`",
        f"- Date: {res['date']}; code {res['code']}; {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; load average at start "
        f"{res['load_start']}, at end {res['load_end']}",
        f"- Store: dedicated embedded SeaweedFS on 127.0.0.1 (minio SDK); catalog: SQLite; "
        f"{args.workers} rewrap threads, batches of {args.batch_size}",
        f"- Setup (not timed): {args.count} artifacts as envelopes only (a random DEK "
        "wrapped under kek-hot@v1, plus catalog rows, no files), and "
        f"{e['count']} real artifacts put with Vault.put ({e['mib']:g} MiB + 1 small file "
        f"each): {n} artifacts in the hot tier in all",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| rotation of {n} artifacts (rotate_tier, hot) | **{r['total_s']:.1f} s** "
        f"({1000 * per_rotation:.2f} ms/artifact, {n / r['total_s']:.0f} artifacts/s) "
        f"| <= {TARGET_S:.0f} s: {'met' if r['total_s'] <= TARGET_S else 'NOT met'} |",
        f"| ciphertext bytes rewritten | {0 if res['ciphertext_unchanged'] else 'CHANGED'} "
        f"(tier bucket: {res['objects_before']} ciphertext, manifest and statement objects, "
        "same keys and ETags before and after) | 0 |",
        f"| CPU during the rotation | this process {r['client_cpu_s']:.1f} s, store "
        f"{r['server_cpu_s']:.1f} s ({1000 * cpu / n:.2f} ms/artifact); other processes on "
        f"the machine {r['other_cpu_s']:.1f} s | - |",
        f"| estimate on an otherwise idle machine | ~{idle_estimate:.0f} s (CPU-bound: "
        f"max(this process, (this process + store) / {os.cpu_count()} cores)) | <= "
        f"{TARGET_S:.0f} s |",
        f"| full re-encryption, per artifact ({e['mib']:g} MiB + 1 small file) | "
        f"{e['per_artifact_s']:.3f} s median (min {e['min_s']:.3f}, max {e['max_s']:.3f}, "
        f"n={e['count']}) | - |",
        f"| full re-encryption of {n} such artifacts | ~{extrapolated:.0f} s "
        f"(**extrapolated** from the {e['count']}-artifact sample; "
        f"{extrapolated / r['total_s']:.0f}x the rotation) | - |",
        "",
        "Rotation phases: "
        f"new KEK version {r['start_s']:.2f} s, catalog listing {r['list_s']:.2f} s, "
        f"rewrap {r['rewrap_s']:.1f} s ({r['rewrapped']} envelopes: GET + unwrap + wrap + PUT, "
        f"one catalog transaction per batch), store double-check and retirement "
        f"{r['retire_s']:.1f} s ({r['store_listed']} envelope objects listed, "
        f"{r['strays']} strays); retired {', '.join(r['retired']) or 'nothing'}.",
        "",
        f"Checks: catalog rows on v1 after: {c['catalog_on_old']}, on v{r['target']}: "
        f"{c['catalog_on_new']}; kek-hot@v1 is {c['v1_state']}; "
        f"{c['sample_same_dek']}/{c['sample']} sampled envelopes unwrap to their original DEK.",
        "",
        f"Verdict: {'target met' if ok else 'target NOT met'}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--reencrypt-sample", type=int, default=20)
    p.add_argument("--reencrypt-mib", type=float, default=4.0)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    command = "cd /work/main && .venv/bin/python bench/rotation.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    configure_logging("WARNING")
    res: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": git_rev(),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    with bench_vault() as vault:
        t = time.perf_counter()
        deks = make_envelopes(vault, args.count, args.workers)
        print(f"setup: {args.count} envelopes in {time.perf_counter() - t:.1f} s", flush=True)
        sample = put_sample(vault, args.reencrypt_sample, args.reencrypt_mib)
        before = tier_objects(vault)
        res["rotation"] = timed_rotation(vault, args.batch_size, args.workers)
        print(f"rotation: {res['rotation']}", flush=True)
        after = tier_objects(vault)
        res["objects_before"] = len(before)
        res["ciphertext_unchanged"] = before == after
        res["check"] = check(vault, deks, res["rotation"]["target"], 200)
        print(f"check: {res['check']}", flush=True)
        assert res["check"]["catalog_on_old"] == 0
        assert res["check"]["v1_state"] == str(KeyState.RETIRED)
        for artifact_id in sample[:3]:
            vault.verify(artifact_id)  # rotated real artifacts still decrypt
        res["reencrypt"] = reencrypt_sample(vault, sample, args.reencrypt_mib)
        print(f"re-encrypt: {res['reencrypt']}", flush=True)
    res["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    section = markdown(res, args, command)
    print(section)
    if not args.no_write:
        write_section(args.out, "## Key rotation", section)
        print(f"written to {args.out}")
    return 0 if res["rotation"]["total_s"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
