"""Issue 14's automation path end to end: a read spike through the CLI is contained.

Real parts throughout: the session's `prefect server start`, the runner `weightvault up`
starts (`python -m flows.deployments`, serving `contain/contain` with its concurrency limit)
and the automations `up` installs, the real CLI and store. The vault's own
``weightvault.toml`` sets the read-spike automation and the detector's rule to the same small
threshold. The reads' Prefect events fire the automation, which runs the served contain flow;
its first task runs the detector over the signed log, which opens the read-spike incident;
the playbook quarantines the artifact. Everything is asserted from the signed log.

Then the race: two contain runs for one incident at once (two firings) quarantine it once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.conftest import REPO, make_tree
from tests.support.durable_store import cli
from tests.support.services import service_timeout
from tests.support.spike import (
    api,
    contain_deployment,
    contain_runs,
    served_runner,
    timeline,
    wait_for_quarantine,
    wait_for_runs,
    write_spike_config,
)
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.lifecycle import ingest
from weightvault.lifecycle.incidents import list_incidents
from weightvault.lifecycle.trust import init_root

THRESHOLD = 3


def _put(vault: Vault, root: Path, name: str) -> str:
    src = make_tree(root / name, {"model.bin": name.encode() * 4096})
    return str(ingest.put(vault, src, name).artifact_id)


def test_a_cli_read_spike_is_quarantined_by_the_automation_and_racing_runs_quarantine_once(
    vault_settings: Settings, prefect_api: str, tmp_path: Path
) -> None:
    write_spike_config(vault_settings.home, prefect_api, threshold=THRESHOLD)
    settings = load_settings(REPO / "config")  # now from <home>/weightvault.toml
    assert settings.automations.read_spike_threshold == THRESHOLD
    assert settings.detect_thresholds["read_spike_artifact"] == THRESHOLD
    vault = Vault.open(settings)
    init_root(vault)  # the incident bundle is signed under the trust root
    artifact = _put(vault, tmp_path, "spiked")
    timeout = service_timeout()
    with served_runner(settings, prefect_api, timeout=timeout, poll_seconds=2) as installed:
        assert "weightvault-read-spike" in installed
        deployment = contain_deployment(prefect_api)
        assert deployment is not None
        assert deployment["global_concurrency_limit"]["limit"] == 1

        # The spike: reads through the CLI up to the threshold.
        for n in range(THRESHOLD):
            got = cli("get", artifact, "--out", str(tmp_path / f"out-{n}"))
            assert got.returncode == 0, got.stderr
        logged = wait_for_quarantine(vault, artifact, timeout=3 * timeout)
        refused = cli("get", artifact, "--out", str(tmp_path / "out-after"))
        assert refused.returncode == 13, refused.stderr
        assert not (tmp_path / "out-after").exists()

        run_id = str(logged.event.client["flow_run"])  # the contain run that quarantined it
        (run,) = wait_for_runs(prefect_api, [run_id], timeout=3 * timeout)
        assert run["state_type"] == "COMPLETED", run["state"]
        (incident,) = [i for i in list_incidents(vault, "open") if artifact in i.artifacts]
        assert incident.rule == "read_spike_artifact"
        assert incident.contained_at is not None
        assert incident.contained_by is not None
        assert incident.contained_by["flow_run"] == run_id  # `incident show` names it
        assert incident.id in str(logged.event.details.get("reason"))
        spent = timeline(vault, prefect_api, artifact, THRESHOLD)
        print("\n" + spent.describe())
        assert spent.flow_run_parameters["trigger"] == "read-spike"
        assert spent.flow_run_parameters["resource"] == f"weightvault.artifact.{artifact}"
        assert spent.flow_run_id in {r["id"] for r in contain_runs(prefect_api, deployment["id"])}
        assert spent.total > 0
        assert abs(spent.total - sum(spent.phases().values())) < 1e-3
        assert len(vault.history(artifact, {"artifact.quarantined"})) == 1

        # The race: a second spike whose events fire nothing (the events are off for these
        # reads), then two contain runs at once as two firings would create them.
        quiet = Vault.open(replace(settings, events_enabled=False))
        second = _put(quiet, tmp_path, "raced")
        for n in range(THRESHOLD):
            quiet.get(second, tmp_path / f"raced-{n}")
        hint = {
            "trigger": "read-spike",
            "resource": f"weightvault.artifact.{second}",
            "event": "weightvault.artifact.read",
        }
        created = [
            api(
                prefect_api,
                f"/deployments/{deployment['id']}/create_flow_run",
                {"parameters": hint},
            )["id"]
            for _ in range(2)
        ]
        runs = wait_for_runs(prefect_api, created, timeout=3 * timeout)
        assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], runs
        first, then = sorted(runs, key=lambda r: r["start_time"])
        assert then["start_time"] >= first["end_time"], "the two contain runs overlapped"
        waited = api(prefect_api, f"/flow_run_states/?flow_run_id={then['id']}")
        assert "AwaitingConcurrencySlot" in {s["name"] for s in waited}  # queued by the limit
        quarantines = vault.history(second, {"artifact.quarantined"})
        assert len(quarantines) == 1
        assert quarantines[0].event.client["flow_run"] == first["id"]
        contained = [i for i in list_incidents(vault) if second in i.artifacts]
        assert len(contained) == 1
        assert contained[0].contained_at is not None
