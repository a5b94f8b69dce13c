"""Benchmark: what the audit log adds to one operation (the intent and outcome appends).

A dedicated vault on its own embedded SeaweedFS server (temporary home, stopped
at the end). Timed, ``--ops`` times each:

- ``begin``: sequencing the intent entry (one conditional PUT, plus the catalog index);
- ``finish``: sequencing the outcome and integrating it (tiles, an Ed25519 +
  ML-DSA-44 signed checkpoint swapped by If-Match);
- ``operation``: the two together around an empty body, as every operation pays.

Prints the median and p90 of each in milliseconds; nothing is written to RESULTS.md.

    .venv/bin/python bench/auditlog.py [--ops 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rotation import bench_vault  # noqa: E402


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"


def main() -> None:
    """Run the benchmark and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50)
    args = parser.parse_args()
    with bench_vault() as vault:
        vault.record("store.gc")  # opens the log, creates its keys
        begins, finishes, whole = [], [], []
        for _ in range(args.ops):
            t0 = time.perf_counter()
            op = vault.begin("store.gc", details={"n": 1})
            t1 = time.perf_counter()
            vault.finish(op)
            t2 = time.perf_counter()
            begins.append(t1 - t0)
            finishes.append(t2 - t1)
            t3 = time.perf_counter()
            with vault.operation("store.gc"):
                pass
            whole.append(time.perf_counter() - t3)
        size = vault.tlog.checkpoint().checkpoint.size
    print(f"audit log appends, {args.ops} operations each (log size at the end {size}):")
    print(f"  begin (intent sequenced):            {_ms(begins)}")
    print(f"  finish (outcome + signed checkpoint): {_ms(finishes)}")
    print(f"  operation (both):                    {_ms(whole)}")


if __name__ == "__main__":
    main()
