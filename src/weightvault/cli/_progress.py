"""Progress bars and reports on a terminal (rich); silent when piped or with --json."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def interactive(args: argparse.Namespace) -> bool:
    """Whether to draw: stderr is a terminal and the output is not --json."""
    return not getattr(args, "json", False) and sys.stderr.isatty()


class _Bar:
    """One rich task as the engines' TransferProgress (thread-safe: rich locks)."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)


class _Silent:
    def start(self, total: int) -> None:
        del total

    def advance(self, amount: int) -> None:
        del amount


@contextlib.contextmanager
def transfer(args: argparse.Namespace, description: str) -> Iterator[_Bar | _Silent]:
    """A bytes bar with rate and ETA for put, get and verify."""
    if not interactive(args):
        yield _Silent()
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _Bar(progress, progress.add_task(description, total=None))


class Counter:
    """Counted progress (envelopes rewrapped, artifacts re-encrypted), one bar per stage."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def plan(self, stage: str, total: int) -> None:
        """Start a bar for ``stage`` with ``total`` items."""
        if self._progress is not None:
            self._tasks[stage] = self._progress.add_task(stage, total=total)

    def done(self, stage: str, completed: int) -> None:
        """``completed`` items of ``stage`` are done so far."""
        if self._progress is not None and stage in self._tasks:
            self._progress.update(self._tasks[stage], completed=completed)


@contextlib.contextmanager
def counting(args: argparse.Namespace) -> Iterator[Counter]:
    """Bars with counts, rate and ETA for rotation and rekey."""
    if not interactive(args):
        yield Counter(None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield Counter(progress)


def show_markdown(text: str) -> None:
    """Render a markdown report on the terminal (stdout)."""
    Console().print(Markdown(text))
