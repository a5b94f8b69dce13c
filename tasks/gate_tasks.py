"""Prefect tasks for validation and promotion (adapters over the core).

The promotion tasks take ids and immutable values only (a frozen
:class:`PromotionPlan`, the :class:`Claim`, gates, digests) and call the core's
named steps; every one of them is idempotent, so a retried task converges.

The moving steps (claim, copy, rewrap, commit) run inside the promote flow's
Prefect transaction. Their ``on_rollback`` hooks call the core's compensation
steps. They retry transient store errors *inside* the task
(:func:`retry_transient`), not with Prefect's ``retries``: in Prefect 3 a
failed attempt of a task inside a transaction rolls the enclosing transaction
back at once, before the retry runs, which would undo the claim and copies
of a promotion that then goes on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Failed
from prefect.tasks import Task
from prefect.transactions import Transaction, get_transaction

from tasks.vault_tasks import RETRY_DELAYS, vault, vault_task
from weightvault.errors import PolicyError, StoreUnavailableError, VaultError
from weightvault.gates import ModelChecks, ScanResult, ValidationReport
from weightvault.lifecycle import promote as promotion
from weightvault.lifecycle import validate as admission
from weightvault.lifecycle.approvals import ApprovalCheck, check_approvals
from weightvault.lifecycle.certificate import CertificateCheck, check_certificate, required_for
from weightvault.lifecycle.promote import Claim, Gate, PromotionPlan, PromotionResult
from weightvault.lifecycle.validate import ValidationOutcome

P = ParamSpec("P")
R = TypeVar("R")


@vault_task("decrypt-for-validation")
def decrypt(artifact_id: str) -> Path:
    """Decrypt and verify into a private temporary directory."""
    return admission.decrypt_to(vault(), artifact_id)


@vault_task("scan-formats", retry=False)
def scan(root: Path) -> list[ScanResult]:
    """Content-based format checks; pickle is never loaded."""
    return admission.scan(root)


@vault_task("gx-provenance-record")
def gx_record(artifact_id: str, root: Path) -> ValidationReport:
    """Great Expectations (a Checkpoint) over the signed provenance and manifest."""
    return admission.check_record(vault(), artifact_id, admission.docs_dir(root))


@vault_task("gx-model-checks", retry=False)
def gx_model(model_repo: str | None, root: Path) -> ModelChecks:
    """The datasets and metrics checks the model repository configures (Checkpoints)."""
    return admission.check_model(
        vault(), Path(model_repo) if model_repo else None, root, admission.docs_dir(root)
    )


@vault_task("record-validation")
def record(
    artifact_id: str,
    scans: list[ScanResult],
    reports: list[ValidationReport | None],
    model: ModelChecks,
    root: Path,
) -> ValidationOutcome:
    """Store the Data Docs, keep the evidence, index its hash, quarantine unsafe content."""
    return admission.record(vault(), artifact_id, scans, reports, model, admission.docs_dir(root))


@vault_task("cleanup", retry=False)
def cleanup(root: Path) -> None:
    """Remove the decrypted copy."""
    admission.cleanup(root)


def retry_transient(fn: Callable[P, R]) -> Callable[P, R]:
    """Retry ``fn`` on StoreUnavailableError after each of RETRY_DELAYS, within one task run."""

    @functools.wraps(fn)
    def attempt(*args: P.args, **kwargs: P.kwargs) -> R:
        delays = list(RETRY_DELAYS)
        while True:
            try:
                return fn(*args, **kwargs)
            except StoreUnavailableError as exc:
                if not delays:
                    raise
                delay = delays.pop(0)
                get_run_logger().warning(
                    "transient store error (%s); retrying in %ss", exc.message, delay
                )
                time.sleep(delay)

    return attempt


# In a transaction: no Prefect retries (``retry=False``, see the module docstring).


def _keep(**values: object) -> None:
    """Keep immutable values in the task's transaction for its rollback hook."""
    txn = get_transaction()
    if txn is not None:
        for name, value in values.items():
            txn.set(name, value)


def _compensate(step: Callable[[], object], what: str) -> None:
    """Run one compensation; a store failure leaves orphans for gc and is logged."""
    try:
        step()
    except VaultError as exc:
        get_run_logger().warning("%s failed (%s): orphans are left for gc", what, exc.message)


@vault_task("plan-promotion")
def plan(artifact_id: str, target: str, justification: str, legal_hold: bool) -> PromotionPlan:
    """Resolve the artifact and check the move is allowed."""
    return promotion.plan(
        vault(),
        artifact_id,
        target,
        justification=justification,
        legal_hold=legal_hold,
    )


@vault_task("list-approvals")
def approvals(p: PromotionPlan) -> ApprovalCheck:
    """The approvals the signed log backs for this move (what the review form lists)."""
    return check_approvals(vault(), p.artifact_id, p.target)


@vault_task("check-certificate")
def certificate(p: PromotionPlan) -> CertificateCheck:
    """The reproducibility certificate the signed log backs for this move (the review form)."""
    v = vault()
    manifest, dek = v.load_manifest(p.artifact_id, p.source)
    del dek
    return check_certificate(v, p.artifact_id, manifest, required=required_for(v, p.target))


class GateRefusedError(Exception):
    """A gate that did not pass; the failed state of its task carries it to the flow."""

    def __init__(self, gate: Gate, digest: str = "") -> None:
        super().__init__(f"gate {gate.name} refused: " + ("; ".join(gate.reasons) or "-"))
        self.gate = gate
        self.digest = digest


def _failed(gate: Gate, digest: str = "") -> Any:
    """The failed state a refusing gate task returns: red in the UI, no traceback."""
    refused = GateRefusedError(gate, digest)
    return Failed(message=str(refused), data=refused)


@vault_task("gate-integrity-signature")
def integrity(p: PromotionPlan) -> Gate:
    """Decrypt and hash every file, verify the signed statement; fails when it refuses."""
    gate = promotion.check_integrity(vault(), p)
    return gate if gate.passed else cast(Gate, _failed(gate))


@vault_task("gate-policy")
def policy(p: PromotionPlan, integrity_gate: Gate) -> tuple[Gate, str]:
    """Rego policy with the validation result, for the target tier; fails when it refuses."""
    gate, digest = promotion.check_policy(vault(), p, integrity_gate)
    return (gate, digest) if gate.passed else cast(tuple[Gate, str], _failed(gate, digest))


def _refusal(state: State[Any]) -> GateRefusedError | None:
    """The refusal a gate task's failed state carries (None: it failed otherwise)."""
    if not state.is_failed():
        return None
    # The engine keeps the returned state's exception as its result (not as ``data``).
    raised = state.result(raise_on_failure=False)
    return raised if isinstance(raised, GateRefusedError) else None


def run_gate(gate_task: Task[[PromotionPlan], Gate], p: PromotionPlan) -> Gate:
    """Run a gate task; its Gate whether it passed or refused (other failures raise)."""
    state = gate_task(p, return_state=True)
    refused = _refusal(state)
    return refused.gate if refused is not None else state.result()


def run_policy_gate(p: PromotionPlan, integrity_gate: Gate) -> tuple[Gate, str]:
    """Run the policy gate task; its Gate and bundle digest whether it passed or refused."""
    state = policy(p, integrity_gate, return_state=True)
    refused = _refusal(state)
    return (refused.gate, refused.digest) if refused is not None else state.result()


@vault_task("record-refusal", retry=False)
def refuse_move(p: PromotionPlan, gates: Sequence[Gate]) -> str:
    """Record the refusal in the signed log; returns its one-line message with every reason."""
    try:
        promotion.refuse(vault(), p, gates)
    except PolicyError as exc:
        return exc.message
    raise PolicyError(f"promotion of {p.artifact_id} refused")  # refuse() always raises


@vault_task("claim", retry=False)
def claim(p: PromotionPlan) -> Claim:
    """Take the artifact; exactly one concurrent promotion wins."""
    held = promotion.claim(vault(), p)
    _keep(plan=p, claim=held)
    return held


@claim.on_rollback
def _abandon(txn: Transaction) -> None:
    """Undo everything the claim allowed (the failing step's partial work too)."""
    p, held = txn.get("plan"), txn.get("claim")
    _compensate(lambda: promotion.abandon(vault(), p, held), "abandon promotion")


@vault_task("copy-ciphertext", retry=False)
@retry_transient
def copy(p: PromotionPlan, held: Claim) -> int:
    """Server-side copy to the target bucket; idempotent."""
    _keep(plan=p, claim=held)
    return promotion.copy(vault(), p, held)


@copy.on_rollback
def _discard_copies(txn: Transaction) -> None:
    _compensate(
        lambda: promotion.discard_copies(vault(), txn.get("plan"), txn.get("claim", None)),
        "discard copies",
    )


@vault_task("rewrap-dek", retry=False)
@retry_transient
def rewrap(p: PromotionPlan, held: Claim) -> str:
    """Wrap the DEK for the target tier; no re-encryption; idempotent."""
    _keep(plan=p, claim=held)
    return promotion.rewrap(vault(), p, held)


@rewrap.on_rollback
def _discard_envelope(txn: Transaction) -> None:
    _compensate(
        lambda: promotion.discard_envelope(vault(), txn.get("plan"), txn.get("claim", None)),
        "discard envelope",
    )


@vault_task("commit-promotion", retry=False)
@retry_transient
def commit(p: PromotionPlan, held: Claim, gates: Sequence[Gate], digest: str) -> PromotionResult:
    """Manifest (commit point), retention, attestation, event, catalog; idempotent."""
    return promotion.commit(vault(), p, held, gates, digest)
