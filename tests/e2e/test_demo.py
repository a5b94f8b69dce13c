"""`weightvault demo` as a user runs it: its flow runs are in the Prefect server it leaves up.

The demo must report to the same Prefect server as `weightvault up` (never an
ephemeral one): the first run starts and records one, a second run reuses it, and
every run id the demo prints exists on that server's API. `weightvault down` then
stops everything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.services import service_timeout
from tests.support.ui_helpers import api

WEIGHTVAULT = Path(sys.executable).parent / "weightvault"
RUN_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def weightvault(home: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["WEIGHTVAULT_HOME"] = str(home)
    return subprocess.run(
        [str(WEIGHTVAULT), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Each demo may take 4 service deadlines; the test runs it twice and `down` once, so its
# pytest-timeout follows the same deadline instead of the suite's 600 s default.
DEMO_TIMEOUT = 4 * service_timeout()
TEST_TIMEOUT = 2 * DEMO_TIMEOUT + service_timeout()


def demo(home: Path) -> tuple[str, dict[str, str]]:
    """Run the demo; the Prefect UI address and the flow runs it printed."""
    done = weightvault(home, "demo", timeout=DEMO_TIMEOUT)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "Timed out while attempting to connect to ephemeral" not in done.stderr
    ui = re.search(r"^  Prefect UI\s+(http://127\.0\.0\.1:\d+)", out, re.MULTILINE)
    assert ui, out
    runs = dict(
        re.findall(
            rf"^  (?:prefect runs)?\s+(ingest|validate|promote)\s+({RUN_ID})$", out, re.MULTILINE
        )
    )
    assert {"ingest", "validate"} <= set(runs), out
    assert re.search(r"^  store \(SeaweedFS S3\) at http://127\.0\.0\.1:\d+$", out, re.MULTILINE), (
        out
    )
    assert f"  Prefect server at {ui.group(1)} " in out
    assert "`weightvault down`" in out
    return ui.group(1), runs


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT)
def test_demo_runs_are_on_the_prefect_server_it_leaves_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        ui_url, runs = demo(home)
        state = json.loads((home / "services.json").read_text())
        assert state["ui_url"] == ui_url
        assert set(runs) == {"ingest", "validate", "promote"}
        for name, run_id in runs.items():
            found = api(f"{ui_url}/api", f"/flow_runs/{run_id}")
            assert found, f"the {name} run {run_id} is not on {ui_url}"
            assert found["state_type"] == "COMPLETED", found["state"]
            flow = api(f"{ui_url}/api", f"/flows/{found['flow_id']}")
            assert flow["name"] == name
        # The model repo's DVC remote pushed with the dvc role's credential, never the admin's.
        admin = json.loads((home / "store" / "credentials.json").read_text())
        dvc = json.loads((home / "store" / "role-credentials.json").read_text())["dvc"]
        dvc_dir = home / "demo-model-repo" / ".dvc"
        assert dvc["access_key"] in (dvc_dir / "config.local").read_text()
        for config in (dvc_dir / "config", dvc_dir / "config.local"):
            assert admin["access_key"] not in config.read_text()
            assert admin["secret_key"] not in config.read_text()

        # Again: the running server is reused, and the new runs are on it too.
        again_url, again = demo(home)
        assert again_url == ui_url
        assert json.loads((home / "services.json").read_text())["server_pid"] == state["server_pid"]
        for run_id in again.values():
            assert api(f"{ui_url}/api", f"/flow_runs/{run_id}"), run_id
    finally:
        stopped = weightvault(home, "down", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "stopped: server, store"
    assert not (home / "services.json").exists()
