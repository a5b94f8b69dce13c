"""CLI commands that need Prefect, plugged into `weightvault` by entry point."""

from __future__ import annotations

import argparse
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    from flows.demo import render, run_demo
    from weightvault.cli import emit, settings_for

    summary = run_demo(settings_for(args))
    emit(args, render(summary), summary)
    return 0


def _up(args: argparse.Namespace) -> int:
    from flows.services import up
    from weightvault.cli import emit, settings_for

    state = up(settings_for(args))
    emit(
        args,
        f"weightvault is up: Prefect UI at {state['ui_url']} (API {state['api_url']}); "
        "deployments served. Stop with `weightvault down`.",
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
