"""Prefect tasks over the vault core.

Tasks retry only on StoreUnavailableError (transient); integrity, policy and
input errors fail at once. Results are never persisted and never carry key
material: the DEK is wrapped before any task sees the artifact and each
upload task unwraps it for itself.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task

from weightvault.artifacts import PutPlan, PutResult, Sealed, SourceFile, Vault
from weightvault.config import load_settings
from weightvault.errors import StoreUnavailableError
from weightvault.lifecycle import ingest
from weightvault.provenance import Provenance, capture_provenance
from weightvault.records import FileEntry, set_flow_run_source
from weightvault.telemetry import set_api_url_source


def only_transient(_task: Task[Any, Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: the failure was a StoreUnavailableError."""
    try:
        state.result(raise_on_failure=True)
    except StoreUnavailableError:
        return True
    except Exception:
        return False
    return False


P = ParamSpec("P")
R = TypeVar("R")

RETRY_DELAYS: tuple[int, ...] = (1, 2, 4)
"""Seconds before each retry of a transient store error (one retry per delay)."""


def vault_task(
    name: str, *, task_run_name: str | None = None, retry: bool = True
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """``@task`` with the vault's options: results never persisted, never cached.

    With ``retry`` the task is retried on StoreUnavailableError only, after each of
    :data:`RETRY_DELAYS`; without it Prefect never retries it (a task inside a
    transaction, or one that is not worth a retry).
    """
    if retry:
        return task(
            name=name,
            task_run_name=task_run_name,
            retries=len(RETRY_DELAYS),
            retry_delay_seconds=list(RETRY_DELAYS),
            retry_condition_fn=only_transient,
            persist_result=False,
            cache_policy=NO_CACHE,
        )
    return task(name=name, task_run_name=task_run_name, persist_result=False, cache_policy=NO_CACHE)


def _live_api_url() -> str | None:
    """The Prefect API this process' flows report to (its settings, not only the environment)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return str(url) if url else None


def _live_flow_run() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


@functools.cache
def _vault(env_key: str) -> Vault:
    return Vault.open(load_settings())


def vault() -> Vault:
    """The process' vault for the current settings; its log entries name the live flow run."""
    set_flow_run_source(_live_flow_run)
    set_api_url_source(_live_api_url)
    settings = load_settings()
    identity = os.environ.get("WEIGHTVAULT_IDENTITY", "")
    key = "|".join(
        (str(settings.home), settings.store.endpoint, settings.store.bucket_prefix, identity)
    )
    return _vault(key)


@vault_task("capture-provenance")
def capture(
    repo: str | None,
    run_id: str | None,
    creator: str | None,
    parent: str | None,
    allow_incomplete: bool,
) -> Provenance:
    """Record git, datasets, stages, run and training environment of the model repo."""
    root = Path(repo) if repo else Path.cwd()
    return capture_provenance(
        root,
        run_id=run_id,
        creator=creator,
        lock_file=None,
        parent=parent,
        allow_incomplete=allow_incomplete,
    )


@vault_task("plan")
def plan(path: str, name: str, tier: str, labels: dict[str, str]) -> PutPlan:
    """List the files and assign the artifact id."""
    return ingest.plan(vault(), Path(path), name, tier, labels)


@vault_task("rebuild-kit")
def rebuild_kit(p: PutPlan, repo: str | None, provenance: Provenance, path: str) -> PutPlan:
    """Add the rebuild kit (git bundle, lock files) to the plan's files."""
    root = Path(repo) if repo else Path.cwd()
    return ingest.rebuild_kit(vault(), p, root, provenance, Path(path))


@vault_task("drop-kit", retry=False)
def drop_kit(p: PutPlan) -> None:
    """Remove the rebuild kit's private working files."""
    ingest.drop_kit(p)


@vault_task("format-scan")
def screen(p: PutPlan) -> ingest.Screening:
    """Scan each model file's format by content before anything is uploaded."""
    return ingest.screen(vault(), p)


@vault_task("write-envelope")
def write_envelope(p: PutPlan) -> ingest.KekRef:
    """Draw and wrap the DEK; returns only the KEK reference."""
    return ingest.write_envelope(vault(), p)


@vault_task("encrypt-upload", task_run_name="encrypt-upload {src.path}")
def upload(p: PutPlan, src: SourceFile, envelope: ingest.KekRef) -> FileEntry:
    """Hash, encrypt and upload one file in one pass."""
    del envelope  # ordering dependency only
    return ingest.upload(vault(), p, src)


@vault_task("sign-manifest")
def sign(
    p: PutPlan,
    entries: list[FileEntry],
    provenance: Provenance,
    screening: ingest.Screening | None = None,
) -> Sealed | PutResult:
    """Sign the in-toto statement; a duplicate returns the original artifact."""
    return ingest.seal(vault(), p, entries, provenance, screening)


@vault_task("commit")
def commit(sealed: Sealed | PutResult) -> PutResult:
    """Write the manifest (the commit point), record and emit the event, index."""
    return ingest.commit(vault(), sealed)


@vault_task("discard", retry=False)
def discard(p: PutPlan) -> int:
    """Remove the objects of an uncommitted put."""
    return ingest.discard(vault(), p)
