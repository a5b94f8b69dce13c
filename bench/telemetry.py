"""Benchmark: what Prefect events and OpenTelemetry add to one put (docs/events.md).

A dedicated vault on its own embedded SeaweedFS server (temporary home and identity,
stopped at the end). ``--ops`` puts of a ``--mib`` MiB file with telemetry off (no
Prefect URL, no OTLP endpoint: nothing installed), then as many with both on (an
in-process OTLP/HTTP receiver, tests/support/otlp.py, also standing in for the
Prefect events API). Prints the median and p90 of each in milliseconds.

    .venv/bin/python bench/telemetry.py [--ops 10] [--mib 4]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.otlp import otlp_receiver  # noqa: E402
from weightvault import telemetry  # noqa: E402
from weightvault.artifacts import Vault  # noqa: E402
from weightvault.config import load_settings  # noqa: E402
from weightvault.lifecycle import ingest  # noqa: E402
from weightvault.lifecycle.bootstrap import init_vault  # noqa: E402
from weightvault.store import EmbeddedStore  # noqa: E402


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"


def _puts(vault: Vault, source: Path, ops: int) -> list[float]:
    times = []
    for n in range(ops):
        source.write_bytes(secrets.token_bytes(source.stat().st_size))
        started = time.perf_counter()
        ingest.put(vault, source, f"bench-{n}")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    """Run the benchmark and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10)
    parser.add_argument("--mib", type=int, default=4)
    args = parser.parse_args()
    for name in ("PREFECT_API_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="wv-bench-telemetry-") as tmp:
        os.environ["WEIGHTVAULT_HOME"] = str(Path(tmp) / "home")
        os.environ["WEIGHTVAULT_IDENTITY_DIR"] = str(Path(tmp) / "identities")
        os.environ["WEIGHTVAULT_IDENTITY"] = "bench"
        os.environ["WEIGHTVAULT_CERTIFICATE_TIERS"] = "none"
        settings = load_settings(REPO / "config")
        source = Path(tmp) / "model.bin"
        source.write_bytes(b"\0" * (args.mib << 20))
        try:
            init_vault(settings)
            vault = Vault.open(settings)
            _puts(vault, source, 1)  # warm up: the log's keys, connections
            off = _puts(vault, source, args.ops)
            with otlp_receiver() as (endpoint, received):
                os.environ["PREFECT_API_URL"] = f"{endpoint}/api"
                telemetry.configure_telemetry(endpoint)
                on = _puts(vault, source, args.ops)
                telemetry.flush_telemetry()
                telemetry.flush_events(5)
                spans = len(received.spans())
        finally:
            EmbeddedStore(settings.store_dir).down()
    stats = telemetry.event_stats()
    print(f"put of {args.mib} MiB, {args.ops} each:")
    print(f"  telemetry off: {_ms(off)}")
    print(
        f"  telemetry on:  {_ms(on)}  ({spans} spans exported, "
        f"{stats.failed + stats.sent} events posted)"
    )


if __name__ == "__main__":
    main()
