"""Prefect tasks of the witness flow: one per step of :mod:`weightvault.lifecycle.witness`.

Tasks take paths as strings and return the steps' frozen results; a round is
idempotent (the witness cosigns the same checkpoint again), so a retry of a
transient store error converges. A fork or a bad signature fails the run at
once and is never retried.
"""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact

from tasks.vault_tasks import vault_task
from weightvault.config import load_settings
from weightvault.lifecycle import witness as steps
from weightvault.records import WitnessRound


@vault_task("witness-home")
def resolve_home(home: str | None) -> str:
    """The witness home: the parameter, else WEIGHTVAULT_WITNESS_HOME."""
    return str(steps.witness_home(Path(home) if home else None))


@vault_task("cosign-checkpoint")
def cosign(home: str, vault_home: str | None) -> WitnessRound:
    """One round: verify the store's checkpoint, check consistency, cosign, publish."""
    witness = steps.open_witness(Path(home))
    settings = load_settings(home=Path(vault_home) if vault_home else None)
    store, bucket = steps.open_log_store(settings)
    return steps.cosign(witness, store, bucket)


@vault_task("publish-witness-report", retry=False)
def publish_report(markdown: str) -> str:
    """Publish the round's markdown report (:func:`steps.render_report`)."""
    create_markdown_artifact(
        markdown=markdown, key="witness-report", description="weightvault witness round"
    )
    return markdown
