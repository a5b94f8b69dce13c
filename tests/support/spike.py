"""A read spike contained end to end (issue 14): shared by tests/e2e/test_read_spike.py and
bench/contain.py.

- :func:`write_spike_config`: the vault's own ``<home>/weightvault.toml`` with small, consistent
  thresholds: the ``weightvault-read-spike`` automation (``[automations]``) and the detector's
  ``read_spike_artifact`` rule (``[detect]``) both fire at the same read, within the same window,
  and the vault's events go to the given Prefect server (``[events]``);
- :func:`served_runner`: ``python -m flows.deployments`` (the runner `weightvault up` starts)
  against that server, until it serves ``contain/contain``; then the automations are installed
  as `up` installs them; on exit the runner is stopped, the automations removed and the
  contain deployment's runs and the deployment deleted (the session server is shared);
- :func:`timeline`: from the signed log (the reads, the detect run, the quarantine, each at
  the time the log recorded it) and the Prefect server (when the event was received, when
  the automation created the flow run and when it started), where the time to contain went.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomlkit

from flows.automations import CONTAIN_DEPLOYMENT, PREFIX
from flows.services import install, prefect_env, stop_process, wait_until
from tests.support.ui_helpers import api
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.records import Event

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def write_spike_config(
    home: Path, api_url: str | None, *, threshold: int, window_seconds: int = 300
) -> Path:
    """``<home>/weightvault.toml``: the repository's, with the read-spike thresholds set
    and, when ``api_url`` is given, the Prefect server the vault's events go to."""
    doc = tomlkit.parse((REPO / "config" / "weightvault.toml").read_text())
    automations: Any = doc["automations"]
    automations["read_spike_threshold"] = threshold
    automations["read_spike_within_seconds"] = window_seconds
    detect: Any = doc["detect"]
    detect["read_spike_artifact"] = threshold
    detect["window_seconds"] = window_seconds
    if api_url is not None:
        events = tomlkit.table()
        events["prefect_api_url"] = api_url
        doc["events"] = events
    home.mkdir(parents=True, exist_ok=True)
    path = home / "weightvault.toml"
    path.write_text(tomlkit.dumps(doc))
    return path


def contain_deployment(api_url: str) -> dict[str, Any] | None:
    """The ``contain/contain`` deployment the server knows, if any."""
    found = api(api_url, f"/deployments/name/{urllib.parse.quote(CONTAIN_DEPLOYMENT)}")
    return dict(found) if found else None


def contain_runs(api_url: str, deployment_id: str) -> list[dict[str, Any]]:
    """Every flow run of the contain deployment, oldest first."""
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    return list(api(api_url, "/flow_runs/filter", body))


def _drop_contain_runs(api_url: str) -> dict[str, Any] | None:
    deployment = contain_deployment(api_url)
    if deployment is not None:
        for run in contain_runs(api_url, deployment["id"]):
            api(api_url, f"/flow_runs/{run['id']}", method="DELETE")
    return deployment


def _polled_since(api_url: str, since: datetime) -> bool:
    found = contain_deployment(api_url)
    polled = found.get("last_polled") if found else None
    return bool(polled) and datetime.fromisoformat(str(polled)) >= since


@contextlib.contextmanager
def served_runner(
    settings: Settings, api_url: str, *, timeout: float, poll_seconds: int | None = None
) -> Iterator[list[str]]:
    """The deployments served against ``api_url`` and the automations installed; their names.

    Runs of ``contain/contain`` left on the server by others are deleted first (a runner
    would run them). ``poll_seconds`` sets PREFECT_RUNNER_POLL_FREQUENCY (Prefect's default,
    what `weightvault up` runs with, when None).
    """
    _drop_contain_runs(api_url)
    prefect_home = settings.home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = prefect_home / "serve.log"
    env = {
        **prefect_env(prefect_home, api_url),
        "WEIGHTVAULT_HOME": str(settings.home),
        "PYTHONPATH": str(REPO),
    }
    if poll_seconds is not None:
        env["PREFECT_RUNNER_POLL_FREQUENCY"] = str(poll_seconds)
    else:
        env.pop("PREFECT_RUNNER_POLL_FREQUENCY", None)
    since = datetime.now(UTC) - timedelta(seconds=1)
    with log_path.open("ab") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "flows.deployments"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    installed: list[str] = []
    try:
        wait_until(
            "the deployment runner (python -m flows.deployments)",
            lambda: _polled_since(api_url, since),
            timeout=timeout,
            proc=runner,
            log_path=log_path,
        )
        installed = install(settings, api_url)
        yield installed
    finally:
        stop_process(runner)
        with contextlib.suppress(OSError):
            for automation in api(api_url, "/automations/filter", {}) or []:
                if automation["name"].startswith(PREFIX):
                    api(api_url, f"/automations/{automation['id']}", method="DELETE")
            deployment = _drop_contain_runs(api_url)
            if deployment is not None:
                api(api_url, f"/deployments/{deployment['id']}", method="DELETE")


def wait_for_runs(api_url: str, run_ids: list[str], *, timeout: float) -> list[dict[str, Any]]:
    """The flow runs once each reached a terminal state (polls the server with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [api(api_url, f"/flow_runs/{run_id}") for run_id in run_ids]
        if all(r and r.get("state_type") in TERMINAL for r in runs):
            return [dict(r) for r in runs]
        if time.monotonic() > deadline:
            states = [r.get("state_type") if r else "missing" for r in runs]
            raise TimeoutError(f"flow runs {run_ids} still {states} after {timeout:.0f}s")
        time.sleep(0.5)


def wait_for_quarantine(vault: Vault, artifact_id: str, *, timeout: float) -> Any:
    """The log entry that quarantined the artifact, once the signed log shows one."""
    deadline = time.monotonic() + timeout
    while True:
        found = vault.logged_quarantine(artifact_id)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"the log shows no quarantine of {artifact_id} after {timeout:.0f}s")
        time.sleep(0.5)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Timeline:
    """Where the time to contain one read spike went (every instant as recorded)."""

    artifact_id: str
    flow_run_id: str
    flow_run_parameters: dict[str, Any]
    #: the read that brought the count to the threshold, as the log recorded it
    over_threshold: datetime
    #: the Prefect server received that read's event
    event_received: datetime
    #: the automation's action created the contain flow run
    run_created: datetime
    #: the runner picked it up (Pending: its poll found it)
    run_pending: datetime
    #: the flow run's process started it (Running)
    run_started: datetime
    #: the detect run inside it (``detect.run`` outcome, opened the incident)
    detected: datetime
    #: the quarantine's ok outcome in the log
    quarantined: datetime
    quarantine_index: int

    @property
    def total(self) -> float:
        """Seconds from the read over the threshold to the quarantine's log entry."""
        return (self.quarantined - self.over_threshold).total_seconds()

    def phases(self) -> dict[str, float]:
        """Seconds per phase, in order; they add up to :attr:`total`."""
        points = [
            ("event delivery (log -> Prefect server)", self.over_threshold, self.event_received),
            ("automation (event -> flow run created)", self.event_received, self.run_created),
            ("runner poll (created -> pending)", self.run_created, self.run_pending),
            ("flow process start (pending -> running)", self.run_pending, self.run_started),
            ("detect (running -> incident opened)", self.run_started, self.detected),
            ("quarantine (incident -> quarantined)", self.detected, self.quarantined),
        ]
        return {name: (b - a).total_seconds() for name, a, b in points}

    def describe(self) -> str:
        """One line per phase and the total."""
        lines = [f"time to contain {self.artifact_id}: {self.total:.2f} s"]
        lines += [f"  {name:<44} {s:7.2f} s" for name, s in self.phases().items()]
        return "\n".join(lines)


def _read_events(api_url: str, artifact_id: str) -> list[dict[str, Any]]:
    body = {
        "filter": {
            "event": {"name": ["weightvault.artifact.read"]},
            "resource": {"id": [f"weightvault.artifact.{artifact_id}"]},
            "order": "ASC",
        },
        "limit": 50,
    }
    return list(api(api_url, "/events/filter", body)["events"])


def timeline(
    vault: Vault, api_url: str, artifact_id: str, threshold: int, *, timeout: float = 30.0
) -> Timeline:
    """The containment of ``artifact_id``'s read spike, from the log and the Prefect server."""
    reads = vault.history(artifact_id, {"artifact.read"})
    if len(reads) < threshold:
        raise AssertionError(f"the log holds {len(reads)} reads of {artifact_id}, not {threshold}")
    over = reads[threshold - 1]
    quarantined = vault.logged_quarantine(artifact_id)
    if quarantined is None:
        raise AssertionError(f"the log shows no quarantine of {artifact_id}")
    run_id = str(quarantined.event.client.get("flow_run") or "")
    run = api(api_url, f"/flow_runs/{run_id}") if run_id else None
    if not run:
        raise AssertionError(f"the quarantine of {artifact_id} names no flow run ({run_id!r})")
    detected = _detect_outcome(vault, over.index, quarantined.index, run_id)
    # Events are delivered asynchronously: the one of the read over the threshold must
    # have arrived (the automation fired on it), poll briefly for the server's page.
    deadline = time.monotonic() + timeout
    events = _read_events(api_url, artifact_id)
    while len(events) < threshold and time.monotonic() < deadline:
        time.sleep(0.5)
        events = _read_events(api_url, artifact_id)
    by_index = {e["payload"].get("log_index"): e for e in events}
    event = by_index.get(over.index)
    if event is None:
        raise AssertionError(f"no Prefect event for the read at log index {over.index}")
    return Timeline(
        artifact_id=artifact_id,
        flow_run_id=run_id,
        flow_run_parameters=dict(run["parameters"]),
        over_threshold=_at(over.event.ts),
        event_received=_at(event["received"]),
        run_created=_at(run["created"]),
        run_pending=_pending_at(api_url, run_id),
        run_started=_at(run["start_time"]),
        detected=detected,
        quarantined=_at(quarantined.event.ts),
        quarantine_index=quarantined.index,
    )


def _pending_at(api_url: str, run_id: str) -> datetime:
    """When the flow run entered Pending (the last time, after any wait for a slot)."""
    states = api(api_url, f"/flow_run_states/?flow_run_id={run_id}") or []
    pending = sorted(_at(s["timestamp"]) for s in states if s["type"] == "PENDING")
    if not pending:
        raise AssertionError(f"flow run {run_id} never was Pending")
    return pending[-1]


def _detect_outcome(vault: Vault, start: int, end: int, run_id: str) -> datetime:
    """When the log recorded the outcome of the flow run's detect run (between two indexes)."""
    found = None
    for index in range(start, end, 64):
        for entry in vault.tlog.entries(index, min(end, index + 64)):
            event = Event.parse(entry)
            if (
                event.kind == "detect.run"
                and event.phase == "outcome"
                and event.client.get("flow_run") == run_id
            ):
                found = _at(event.ts)
    if found is None:
        raise AssertionError(f"flow run {run_id} logged no detect run before its quarantine")
    return found
