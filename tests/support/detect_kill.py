"""`weightvault detect` killed with SIGKILL right after it opened its first incident.

Run as ``python -m tests.support.detect_kill``: a deterministic crash point for the
resume test (the incident's ``incident.opened`` outcome is in the log; the run's own
outcome, with its cursor, never is).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from weightvault.cli import main
from weightvault.lifecycle import incidents

_open = incidents.open_incident


def _open_then_die(*args: Any, **kwargs: Any) -> incidents.Incident:
    opened = _open(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return opened


if __name__ == "__main__":
    incidents.open_incident = _open_then_die  # type: ignore[assignment]
    raise SystemExit(main(["detect", "--json"]))
