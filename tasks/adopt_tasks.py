"""Prefect tasks of the adopt flow: each one step of :mod:`weightvault.lifecycle.adopt`."""

from __future__ import annotations

from tasks.vault_tasks import vault, vault_task
from weightvault.lifecycle import adopt as steps


@vault_task("adopt-inventory", retry=False)
def take_stock(source: steps.Source) -> steps.Inventory:
    """Recognise every candidate: files, formats by content, recovered provenance, gates."""
    return steps.inventory(vault(), source)


@vault_task("adopt-candidate")
def adopt_one(source: steps.Source, candidate: steps.Candidate) -> steps.Adopted:
    """Ingest one candidate with backfilled provenance (content already stored is skipped)."""
    return steps.adopt_candidate(vault(), source, candidate)
