"""Run one function in several spawned processes at once, for the race tests."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def in_processes(count: int, target: Callable[..., None], *args: Any) -> list[Any]:
    """Run ``target(*args, barrier, out)`` in ``count`` spawned processes; what each put.

    The barrier lets every process start its race at the same moment; each puts one
    result on ``out``, and every process must exit cleanly.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, out)) for _ in range(count)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return results
