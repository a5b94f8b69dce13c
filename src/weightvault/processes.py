"""The services the vault starts (the embedded store, the Prefect server and runner), by identity.

A pid alone is not an identity: after a crash or a reboot the OS hands it to
an unrelated process. A :class:`ProcessRef` adds the process' start time
(from psutil), and nothing is reported as running, nor signalled, unless both
match. Services run in sessions of their own, so stopping one stops its group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

__all__ = ["ProcessRef", "is_running", "stop"]

# create_time() is derived from boot time and clock ticks: equal within rounding.
_SAME_START = 0.05


@dataclass(frozen=True)
class ProcessRef:
    """A process as it was when the vault started it: pid and start time."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        """The reference of a live process (NoSuchProcess if it is gone)."""
        return cls(pid, psutil.Process(pid).create_time())

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for a state file."""
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_dict(cls, raw: Any) -> ProcessRef | None:
        """Parse :meth:`to_dict` output; None for anything else (old or damaged state)."""
        if not isinstance(raw, dict):
            return None
        pid, started = raw.get("pid"), raw.get("started")
        if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(started, float):
            return None
        return cls(pid, started)


def _process(ref: ProcessRef) -> psutil.Process | None:
    try:
        proc = psutil.Process(ref.pid)
        if abs(proc.create_time() - ref.started) > _SAME_START:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc


def is_running(ref: ProcessRef | None, *, check: Callable[[list[str]], bool] | None = None) -> bool:
    """Whether the very process ``ref`` names still runs (and ``check`` accepts its argv)."""
    if ref is None:
        return False
    proc = _process(ref)
    if proc is None:
        return False
    if check is None:
        return True
    try:
        return check(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _signal(pid: int, group: bool, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(
    ref: ProcessRef | None, *, grace: float = 15.0, check: Callable[[list[str]], bool] | None = None
) -> bool:
    """Stop the process ``ref`` names and its group: SIGTERM, then SIGKILL after ``grace``.

    Returns False, signalling nothing, unless it is the very process (same pid
    and start time, and ``check`` accepts its argv).
    """
    if ref is None or not is_running(ref, check=check):
        return False
    try:
        group = os.getpgid(ref.pid) == ref.pid
    except ProcessLookupError:
        return False
    _signal(ref.pid, group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _process(ref) is not None:
        _reap(ref.pid)
        time.sleep(0.1)
    # Whatever is left of the group (the leader or children it started) is killed.
    _signal(ref.pid, group, signal.SIGKILL)
    for _ in range(50):
        _reap(ref.pid)
        if _process(ref) is None:
            break
        time.sleep(0.1)
    return True
