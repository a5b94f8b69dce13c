"""Markdown reports published as Prefect artifacts (never any key material)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypedDict

from prefect.artifacts import create_markdown_artifact

from tasks.vault_tasks import vault_task
from weightvault.artifacts import PutResult
from weightvault.lifecycle.adopt import AdoptReport
from weightvault.lifecycle.approvals import ApprovalCheck
from weightvault.lifecycle.certificate import CertificateCheck
from weightvault.lifecycle.promote import Gate, PromotionResult
from weightvault.lifecycle.validate import ValidationOutcome
from weightvault.provenance import Provenance


def report_key(kind: str, artifact_id: str) -> str:
    """The artifact key of one report kind for one artifact, e.g. ``promotion-01j...``.

    One key per artifact and kind, so the UI's artifact page lists that artifact's
    reports as a history (Prefect keys allow lowercase letters, digits and dashes).
    """
    return f"{kind}-" + re.sub(r"[^a-z0-9-]+", "-", artifact_id.lower()).strip("-")


class IngestSummary(TypedDict):
    """What the ingest flow returns: ids, digests and counts, never key material."""

    artifact_id: str
    content_digest: str
    files: int
    bytes: int
    tier: str
    signed_by: str | None
    duplicate_of: str | None
    git_commit: str | None
    git_dirty: bool | None
    run_id: str | None


def ingest_markdown(result: PutResult, provenance: Provenance) -> str:
    """The ingest report."""
    row = result.artifact
    lines = [
        f"# Ingested `{row.name}`",
        "",
        "| field | value |",
        "|---|---|",
        f"| artifact id | `{row.id}` |",
        f"| content digest | `{row.content_digest}` |",
        f"| files | {row.file_count} |",
        f"| bytes | {row.total_size} |",
        f"| tier | {row.tier} |",
        f"| signer | `{row.signed_by}` |",
        f"| git commit | `{provenance.git_commit}` (dirty: {provenance.git_dirty}) |",
        f"| training run | `{provenance.run_id}` |",
        f"| creator | {provenance.creator} |",
        f"| parent | {provenance.parent or '-'} |",
        f"| missing provenance | {', '.join(provenance.missing) or 'none'} |",
    ]
    if result.duplicate_of:
        lines.insert(
            2, f"Same content as existing artifact `{result.duplicate_of}`: not stored again."
        )
    if provenance.datasets:
        lines += ["", "## Datasets", "", "| path | DVC md5 | sha256 | bytes |", "|---|---|---|---|"]
        lines += [
            f"| {d.path} | `{d.dvc_md5}` | `{d.sha256}` | {d.size} |" for d in provenance.datasets
        ]
    env = provenance.environment
    if env:
        lines += ["", "## Environment", ""]
        lines += [f"- {k}: `{v}`" for k, v in sorted(env.items())]
    return "\n".join(lines)


@vault_task("publish-report", retry=False)
def publish_ingest_report(result: PutResult, provenance: Provenance) -> IngestSummary:
    """Publish the ingest report; returns a secret-free summary."""
    create_markdown_artifact(
        markdown=ingest_markdown(result, provenance),
        key=report_key("ingest", result.artifact.id),
        description=f"weightvault ingest of {result.artifact.name}",
    )
    row = result.artifact
    return {
        "artifact_id": row.id,
        "content_digest": row.content_digest,
        "files": row.file_count,
        "bytes": row.total_size,
        "tier": row.tier,
        "signed_by": row.signed_by,
        "duplicate_of": result.duplicate_of,
        "git_commit": provenance.git_commit,
        "git_dirty": provenance.git_dirty,
        "run_id": provenance.run_id,
    }


def promotion_markdown(
    artifact_id: str, target: str, gates: Sequence[Gate], result: PromotionResult | None
) -> str:
    """The promotion report: gates with every reason, and the outcome."""
    verdict = "promoted" if result else "refused"
    lines = [f"# Promotion of `{artifact_id}` to {target}: {verdict}", ""]
    lines += ["| gate | result | reasons |", "|---|---|---|"]
    for g in gates:
        reasons = "<br>".join(g.reasons) or "-"
        lines.append(f"| {g.name} | {'pass' if g.passed else 'FAIL'} | {reasons} |")
    if result:
        lines += [
            "",
            f"- from **{result.source}** to **{result.target}**",
            f"- attestation `{result.attestation}`",
            f"- policy bundle `{result.policy_digest}`",
            f"- retained until {result.retain_until or '-'}; legal hold: {result.legal_hold}",
        ]
        if (line := result.certificate_line()) is not None:
            lines.append(f"- {line}")
    return "\n".join(lines)


@vault_task("publish-promotion-report", retry=False)
def publish_promotion_report(
    artifact_id: str, target: str, gates: Sequence[Gate], result: PromotionResult | None
) -> None:
    """Publish the promotion report."""
    create_markdown_artifact(
        markdown=promotion_markdown(artifact_id, target, gates, result),
        key=report_key("promotion", artifact_id),
        description=f"weightvault promotion of {artifact_id}",
    )


def validation_markdown(outcome: ValidationOutcome) -> str:
    """The validation report."""
    lines = [
        f"# Validation of `{outcome.artifact_id}`: {outcome.status}",
        "",
        f"- report `{outcome.report_key}` (sha256 `{outcome.report_sha256}`)",
        f"- quarantined: {outcome.quarantined}",
    ]
    if outcome.failures:
        lines += ["", "## Failures", ""] + [f"- {f}" for f in outcome.failures]
    if outcome.skipped:
        lines += ["", "## Skipped (partial never satisfies a promotion)", ""]
        lines += [f"- {s}" for s in outcome.skipped]
    if outcome.data_docs:
        lines += ["", "## Data Docs (in the audit bucket, sha256 in the signed report)", ""]
        lines += [f"- {d['suite']}: `{d['key']}`" for d in outcome.data_docs]
    return "\n".join(lines)


@vault_task("publish-validation-report", retry=False)
def publish_validation_report(outcome: ValidationOutcome) -> None:
    """Publish the validation report."""
    create_markdown_artifact(
        markdown=validation_markdown(outcome),
        key=report_key("validation", outcome.artifact_id),
        description=f"weightvault validation of {outcome.artifact_id}",
    )


def approvals_markdown(check: ApprovalCheck) -> str:
    """The approvals the signed log backs for one purpose: who, until when, what is missing.

    Shown on the promote run's review form and published as its ``approvals-<id>``
    artifact; names and public keyid prefixes only.
    """
    have, need = len(check.approvers), check.required
    state = "met" if check.satisfied else f"{need - have} more needed"
    what = {
        "cold": "cold promotion",
        "warm": "warm promotion (adopted provenance)",
        "release": "release",
        "break-glass": "break-glass read",
    }
    lines = [
        f"# Approvals for the {what.get(check.purpose, check.purpose)} of `{check.artifact_id}`",
        "",
        f"**needs {need}, has {have}** ({state}): distinct enrolled approvers, "
        "not the creator, within the approval window, as the signed log records them.",
        "",
    ]
    if check.accepted:
        lines += [
            "| approver | key | approved (log time) | expires | log entry |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {a.approver} | `{a.keyid[:16]}` | {a.logged_at} | {a.expires_at} | {a.index} |"
            for a in check.accepted
        ]
    else:
        lines.append("No approval the log backs yet.")
    if check.rejected:
        lines += ["", "## Not counted", "", "| log entry | why |", "|---|---|"]
        lines += [f"| {i} | {why.replace('|', '/')} |" for i, why in check.rejected]
    lines += [
        "",
        f"Each approver gives theirs with their own key: `weightvault approve "
        f"{check.artifact_id} --to {check.purpose} --justification TEXT`. Nothing "
        "typed into this form counts as an approval: on submit the gates check the "
        "signed log again.",
    ]
    return "\n".join(lines)


def certificate_markdown(check: CertificateCheck, artifact_id: str) -> str:
    """The reproducibility certificate status a cold promotion's review form shows.

    What ``lifecycle.certificate`` finds in the signed log: found (which, log
    entry, issued), missing or not valid (with why), or not required.
    """
    head = f"## Reproducibility certificate of `{artifact_id}`"
    if check.valid and check.statement is not None:
        state = (
            f"**found**: `{check.statement.get('key')}` (log entry {check.index}, issued "
            f"{check.issued_at})" + ("" if check.required else "; not required")
        )
    elif not check.required:
        state = "**not required** for this tier by the `[policy]` settings"
        if check.present:
            state += f"; the log names one that is not valid: {check.reason}"
    elif check.present:
        state = f"**not valid** (log entry {check.index}): {check.reason}"
    else:
        state = (
            f"**missing**: {check.reason or 'the log records no certificate'}; the gates "
            f"refuse cold without one (run `weightvault recover {artifact_id}`)"
        )
    return f"{head}\n\n{state.replace('|', '/')}\n"


@vault_task("publish-approvals", retry=False)
def publish_approvals(check: ApprovalCheck) -> str:
    """Publish the approvals listing as a markdown artifact; returns the markdown."""
    markdown = approvals_markdown(check)
    create_markdown_artifact(
        markdown=markdown,
        key=report_key("approvals", check.artifact_id),
        description=f"weightvault approvals for {check.purpose} of {check.artifact_id}",
    )
    return markdown


class AdoptSummary(TypedDict):
    """What the adopt flow returns: counts and ids, never key material or local paths."""

    source: str
    candidates: int
    dry_run: bool
    counts: dict[str, int]
    artifact_ids: list[str]


def adopt_markdown(report: AdoptReport) -> str:
    """The adoption report: each candidate, what was recovered, what the gates say, its fate."""
    found = report.inventory
    results = {r.key: r for r in report.results}
    lines = [
        f"# {'Inventory' if report.dry_run else 'Adoption'} of `{found.location}` ({found.kind})",
        "",
        "| candidate | recognised | files | bytes | provenance recovered | missing | ingest "
        "| warm today | outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in found.candidates:
        done = results.get(c.key)
        outcome = (
            f"{done.status} `{done.artifact_id or '-'}`"
            if done
            else (f"stored as `{c.stored_as}`" if c.stored_as else "not adopted (dry run)")
        )
        warm = "; ".join(c.warm_gate) or "would pass"
        lines.append(
            f"| `{c.key}` | {c.recognised} | {len(c.files)} | {c.total_size} "
            f"| {', '.join(sorted(c.recovered)) or 'none'} | {', '.join(c.missing) or 'none'} "
            f"| {c.problem or c.ingest_gate} | {warm} | {outcome} |"
        )
    return "\n".join(lines) + "\n"


def publish_adopt_report(report: AdoptReport) -> AdoptSummary:
    """Publish the adoption report; returns a secret-free summary."""
    create_markdown_artifact(
        markdown=adopt_markdown(report),
        key="adopt-report",
        description=f"weightvault adopt of {report.inventory.location}",
    )
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {
        "source": report.inventory.location,
        "candidates": len(report.inventory.candidates),
        "dry_run": report.dry_run,
        "counts": counts,
        "artifact_ids": [r.artifact_id for r in report.results if r.artifact_id],
    }
