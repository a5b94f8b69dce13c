"""The service starters: readiness deadlines and failures that name the service and its log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows import services
from tests.conftest import REPO
from tests.support.services import TIMEOUT_ENV, service_timeout
from weightvault.config import load_settings
from weightvault.processes import ProcessRef, is_running


def test_served_names_every_deployment() -> None:
    from flows.deployments import deployments

    served = {f"{d.flow_name}/{d.name}": d for d in deployments()}
    assert set(served) == set(services.SERVED)
    # The DR drill is served on its weekly schedule (docs/disaster-recovery.md "DR drill").
    from flows.drill import DEFAULT_CRON

    drill = served["dr-drill/dr-drill"]
    assert [s.schedule.cron for s in drill.schedules] == [DEFAULT_CRON]  # type: ignore[union-attr]
    assert DEFAULT_CRON.split()[2:] == ["*", "*", "0"]  # weekly: every Sunday
    assert [s.schedule.timezone for s in drill.schedules] == ["UTC"]  # type: ignore[union-attr]
    # Detection is served every five minutes: the backstop (docs/incidents.md).
    from flows.detect import DEFAULT_CRON as DETECT_CRON

    detect = served["detect/detect"]
    assert [s.schedule.cron for s in detect.schedules] == [DETECT_CRON]  # type: ignore[union-attr]
    assert DETECT_CRON == "*/5 * * * *"


def test_service_timeout_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert service_timeout() == 180.0
    monkeypatch.setenv(TIMEOUT_ENV, "42.5")
    assert service_timeout() == 42.5
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=TIMEOUT_ENV):
        service_timeout()


def test_a_service_that_exits_is_named_with_its_log_tail(tmp_path: Path) -> None:
    log_path = tmp_path / "thing.log"
    script = "print('\\n'.join(f'line {i}' for i in range(100))); print('port in use'); exit(3)"
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=log)
    with pytest.raises(services.ServiceStartError) as caught:
        services.wait_until("the thing", lambda: False, timeout=60, proc=proc, log_path=log_path)
    message = str(caught.value)
    assert message.startswith("the thing did not come up: it exited with code 3")
    assert str(log_path) in message
    assert "port in use" in message
    assert "line 99" in message
    assert "line 0\n" not in message  # only the tail
    assert caught.value.exit_code == 7


def test_a_service_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    log_path = tmp_path / "slow.log"
    log_path.write_text("still warming up\n")
    with pytest.raises(
        services.ServiceStartError, match=r"the slow one did not come up: not ready within 1s"
    ):
        services.wait_until("the slow one", lambda: False, timeout=1, log_path=log_path)
    with pytest.raises(services.ServiceStartError, match="still warming up"):
        services.wait_until("the slow one", lambda: False, timeout=0.1, log_path=log_path)


# -- stopping only what was started --------------------------------------------------------


def test_down_never_signals_a_process_it_did_not_start(
    impostor: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    settings = load_settings(REPO / "config", home=tmp_path / "home")
    settings.home.mkdir(parents=True)
    real = ProcessRef.of(impostor.pid)
    recycled = {"pid": impostor.pid, "started": real.started - 3600.0}
    state = {
        "server_pid": impostor.pid,
        "server": recycled,
        "runner_pid": impostor.pid,
        "runner": recycled,
        "api_url": "http://127.0.0.1:9/api",
        "ui_url": "",
    }
    (settings.home / "services.json").write_text(json.dumps(state))
    assert services.read_state(settings) is None
    assert services.down(settings) == []
    assert impostor.poll() is None, "down signalled a process it never started"
    # The same process recorded with its own start time is the one `up` started: stopped.
    (settings.home / "services.json").write_text(json.dumps({**state, "server": real.to_dict()}))
    assert services.down(settings) == ["server"]
    assert not is_running(real)
