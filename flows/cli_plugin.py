"""CLI commands that need Prefect, plugged into `weightvault` by entry point."""

from __future__ import annotations

import argparse
from typing import Any


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _demo(args: argparse.Namespace) -> int:
    from flows.demo import render, run_demo
    from weightvault.cli import emit, settings_for

    summary = run_demo(settings_for(args))
    emit(args, render(summary), summary)
    return 0


def _up(args: argparse.Namespace) -> int:
    from flows.services import up
    from weightvault.cli import emit, settings_for

    state = up(settings_for(args), workers=args.workers, worker_limit=args.worker_limit)
    runs = (
        f"deployments in the work pool {state['pool']!r}, run by {len(state['workers'])} "
        f"worker(s): {', '.join(state['worker_names'])}"
        if args.workers
        else "deployments served"
    )
    emit(
        args,
        f"weightvault is up: Prefect UI at {state['ui_url']} (API {state['api_url']}); "
        f"{runs}. Stop with `weightvault down`.",
        state,
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    from flows.services import down
    from weightvault.cli import emit, settings_for

    stopped = down(settings_for(args))
    emit(args, "stopped: " + (", ".join(stopped) or "nothing was running"), {"stopped": stopped})
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add demo, up and down to the CLI."""
    for name, func, text in (
        ("demo", _demo, "run the lifecycle end to end on embedded defaults"),
        ("up", _up, "start the store, the Prefect server and the deployments"),
        ("down", _down, "stop everything `up` started"),
    ):
        parser = sub.add_parser(name, help=text, description=text, parents=[common])
        parser.set_defaults(func=func)
        if name == "up":
            parser.add_argument(
                "--workers",
                type=_count,
                default=0,
                metavar="N",
                help="run the deployments on N Prefect workers of the process work pool "
                "'weightvault' instead of one serving process (default 0: serve)",
            )
            parser.add_argument(
                "--worker-limit",
                type=_positive,
                default=1,
                metavar="K",
                help="flow runs each worker runs at a time (default 1)",
            )
