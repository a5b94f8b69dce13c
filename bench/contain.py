"""Benchmark: time to contain a read spike, automation path and backstop (docs/containment.md).

A dedicated vault in a temporary home with its own identity, brought up by
`weightvault up` itself (`flows.services.up`: the embedded store, `prefect server
start`, the runner serving every deployment, the automations installed), with the
read-spike automation and the detector's rule set to ``--threshold`` reads in its
``weightvault.toml`` (tests/support/spike.py). Then:

- ``--runs`` times: put an artifact, read it ``--threshold`` times through the real
  CLI (`weightvault get`), wait until the signed log shows it quarantined; the time
  to contain is from the log's timestamp of the read that reached the threshold to
  the quarantine's, split into its phases from the log and the Prefect server
  (:class:`tests.support.spike.Timeline`);
- the backstop: a spike whose reads send no events (so no automation fires), then
  one run of the scheduled deployment that contains what the signed log shows
  (``contain/backstop``, else ``detect/detect``) created as its schedule would:
  its duration, and the worst case (the schedule's interval plus that run).

The runner polls as `weightvault up` runs it (``flows.deployments.RUNNER_POLL_SECONDS``)
unless ``--poll`` is given. The result replaces the "## Containment" section of
``bench/RESULTS.md``.

    .venv/bin/python bench/contain.py [--runs 3] [--threshold 3] [--poll SECONDS]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import write_section  # noqa: E402
from flows.deployments import RUNNER_POLL_SECONDS  # noqa: E402
from flows.detect import DEFAULT_CRON as DETECT_CRON  # noqa: E402
from flows.services import down, up  # noqa: E402
from tests.support.durable_store import cli  # noqa: E402
from tests.support.spike import (  # noqa: E402
    Timeline,
    api,
    timeline,
    wait_for_quarantine,
    wait_for_runs,
    write_spike_config,
)
from weightvault.artifacts import Vault  # noqa: E402
from weightvault.config import load_settings  # noqa: E402
from weightvault.keys import create_identity  # noqa: E402
from weightvault.lifecycle import ingest  # noqa: E402
from weightvault.lifecycle.trust import init_root  # noqa: E402
from weightvault.logs import configure_logging  # noqa: E402

SECTION = "## Containment: time to contain a read spike (`bench/contain.py`)"
TIMEOUT = 600.0
_VAULT_ENV = ("WEIGHTVAULT_S3_ENDPOINT", "WEIGHTVAULT_BUCKET_PREFIX", "PREFECT_API_URL")


def _put(vault: Vault, root: Path, name: str) -> str:
    src = root / name
    src.mkdir(parents=True)
    (src / "model.bin").write_bytes(os.urandom(64 << 10))
    return str(ingest.put(vault, src, name).artifact_id)


def _spike(vault: Vault, api_url: str, root: Path, n: int, threshold: int) -> Timeline:
    """One artifact read ``threshold`` times through the CLI, until quarantined."""
    artifact = _put(vault, root, f"spike-{n}")
    for i in range(threshold):
        got = cli("get", artifact, "--out", str(root / f"out-{n}-{i}"))
        if got.returncode != 0:
            raise RuntimeError(f"get {artifact} exited {got.returncode}: {got.stderr[-300:]}")
    logged = wait_for_quarantine(vault, artifact, timeout=TIMEOUT)
    wait_for_runs(api_url, [str(logged.event.client["flow_run"])], timeout=TIMEOUT)
    return timeline(vault, api_url, artifact, threshold)


def _backstop(vault: Vault, api_url: str, root: Path, threshold: int) -> dict[str, Any]:
    """A spike no event reports, contained by one run of the scheduled deployment."""
    quiet = Vault.open(replace(vault.settings, events_enabled=False))
    artifact = _put(quiet, root, "backstop")
    for i in range(threshold):
        quiet.get(artifact, root / f"backstop-{i}")
    candidates = {
        "contain/backstop": vault.settings.automations.backstop_minutes * 60,
        "detect/detect": _cron_minutes(DETECT_CRON) * 60,
    }
    served = [(n, api(api_url, f"/deployments/name/{n}")) for n in candidates]
    found = [(n, d) for n, d in served if d]
    if not found:
        raise RuntimeError("neither contain/backstop nor detect/detect is served")
    name, deployment = found[0]
    interval = candidates[name]
    created = api(api_url, f"/deployments/{deployment['id']}/create_flow_run", {})
    (run,) = wait_for_runs(api_url, [created["id"]], timeout=TIMEOUT)
    logged = vault.logged_quarantine(artifact)
    if run["state_type"] != "COMPLETED" or logged is None:
        raise RuntimeError(f"the {name} run ended {run['state_type']} without a quarantine")

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    made, start, end = at(run["created"]), at(run["start_time"]), at(run["end_time"])
    to_quarantine = (at(logged.event.ts) - made).total_seconds()
    return {
        "deployment": name,
        "interval": interval,
        "start": (start - made).total_seconds(),
        "duration": (end - start).total_seconds(),
        "to_quarantine": to_quarantine,
        "worst": interval + to_quarantine,
    }


def _cron_minutes(cron: str) -> int:
    minute = cron.split(maxsplit=1)[0]
    return int(minute.removeprefix("*/")) if minute.startswith("*/") else 60


def measure(runs: int, threshold: int, poll: int | None) -> dict[str, Any]:
    """Bring a vault up, contain ``runs`` spikes and one backstop spike; the timings."""
    saved = {k: os.environ.pop(k) for k in _VAULT_ENV if k in os.environ}
    with tempfile.TemporaryDirectory(prefix="wv-bench-contain-") as tmp:
        root = Path(tmp)
        home = root / "home"
        os.environ["WEIGHTVAULT_HOME"] = str(home)
        os.environ["WEIGHTVAULT_IDENTITY_DIR"] = str(root / "identities")
        os.environ["WEIGHTVAULT_IDENTITY"] = "bench"
        os.environ["WEIGHTVAULT_CERTIFICATE_TIERS"] = "none"
        if poll is not None:
            os.environ["PREFECT_RUNNER_POLL_FREQUENCY"] = str(poll)
        create_identity("bench", directory=root / "identities")
        write_spike_config(home, None, threshold=threshold)
        settings = load_settings(REPO / "config")
        started = time.monotonic()
        try:
            state = up(settings, timeout=TIMEOUT)
            up_seconds = time.monotonic() - started
            api_url = state["api_url"]
            os.environ["PREFECT_API_URL"] = api_url  # the CLI's events go there
            vault = Vault.open(settings)
            init_root(vault)
            spikes = [_spike(vault, api_url, root, n, threshold) for n in range(runs)]
            backstop = _backstop(vault, api_url, root, threshold)
        finally:
            down(settings)
            os.environ.update(saved)
    return {"up": up_seconds, "spikes": spikes, "backstop": backstop, "poll": poll}


def section(result: dict[str, Any], runs: int, threshold: int, when: str, load: Any) -> str:
    """The RESULTS.md section."""
    spikes: list[Timeline] = result["spikes"]
    totals = [t.total for t in spikes]
    poll = result["poll"]
    b = result["backstop"]
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python bench/contain.py --runs {runs} --threshold {threshold}"
        + (f" --poll {poll}" if poll is not None else "")
        + f"` on {when}, load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"(2-core machine, shared). `weightvault up` took {result['up']:.1f} s; the runner "
        f"polls every {poll if poll is not None else RUNNER_POLL_SECONDS:g} s.",
        "",
        f"**Automation path** (target < 30 s): median **{statistics.median(totals):.2f} s**, "
        f"worst **{max(totals):.2f} s** over {runs} spikes, from the log's timestamp of the "
        f"read that reached the threshold to the log's `artifact.quarantined`.",
        "",
        "| phase | " + " | ".join(f"run {n + 1}" for n in range(runs)) + " | median |",
        "|---|" + "---|" * (runs + 1),
    ]
    names = list(spikes[0].phases())
    for name in names:
        values = [t.phases()[name] for t in spikes]
        cells = " | ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {cells} | {statistics.median(values):.2f} |")
    cells = " | ".join(f"**{v:.2f}**" for v in totals)
    lines.append(f"| **time to contain** | {cells} | **{statistics.median(totals):.2f}** |")
    lines += [
        "",
        f"**Backstop** (`{b['deployment']}`, every {b['interval'] // 60} min): one run that "
        f"contains a spike no event reported started {b['start']:.2f} s after it was created, "
        f"ran {b['duration']:.2f} s and quarantined {b['to_quarantine']:.2f} s after it was "
        f"created; worst case = the interval + that = **{b['worst']:.0f} s**.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threshold", type=int, default=3)
    p.add_argument("--poll", type=int, default=None)
    args = p.parse_args(argv)
    configure_logging("WARNING")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    load = os.getloadavg()
    result = measure(args.runs, args.threshold, args.poll)
    for t in result["spikes"]:
        print(t.describe())
    text = section(result, args.runs, args.threshold, when, load)
    print(text)
    write_section(args.out, SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
