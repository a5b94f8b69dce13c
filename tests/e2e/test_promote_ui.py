"""The promote deployment as an operator starts it: from the Prefect UI.

The tests run the real services of `weightvault up` (`prefect server start` and
the runner serving the deployments) against the real store; nothing is mocked.
The first creates the flow run through the API exactly as the UI's Run button
does; the second fills the deployment's form in headless Chromium, then goes on,
on the same deployment and artifact, with the two-person rule as the UI offers
it: a cold promotion pauses for review with a form that lists the approvals the
signed log backs and has no field to name an approver; one approval, free text
typed into the form, the creator's approval, an expired one and one by a
principal who lost the approver role are refused; two valid ones promote.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from tasks.reports import report_key
from tests.support.approvals import approved
from tests.support.artifacts import ingest_model
from tests.support.ui_helpers import (
    CHROMIUM,
    UI_TIMEOUT_MS,
    api,
    choose,
    chromium_page,
    fill_form,
    flow_runs_of,
    form_field,
    open_custom_run,
    served,
    service_logs,
    submit_run,
    wait_for_flow_run,
)
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.keys import create_identity
from weightvault.lifecycle.approvals import approve, check_approvals
from weightvault.lifecycle.trust import enrol_principal
from weightvault.lifecycle.validate import validate_artifact
from weightvault.records import Event

if TYPE_CHECKING:
    from playwright.sync_api import Page

RUN_TIMEOUT = 300.0


@pytest.fixture
def ready(vault: Vault, model_repo: Path) -> str:
    """An ingested, validated artifact in hot: ready for promotion to warm."""
    artifact_id = ingest_model(vault, model_repo)
    outcome = validate_artifact(vault, artifact_id, model_repo)
    assert outcome.status == "passed", outcome.failures
    assert vault.catalog.artifact(artifact_id).tier == "hot"
    return artifact_id


@pytest.fixture
def services(vault_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """`weightvault up` for this vault; the runner inherits the WEIGHTVAULT_* env."""
    monkeypatch.setenv("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    # A 503 from the server is a retryable SQLite error (database locked): log it.
    monkeypatch.setenv("PREFECT_SERVER_LOG_RETRYABLE_ERRORS", "true")
    with served(vault_settings) as state:
        yield state


def tier_of(settings: Settings, artifact_id: str) -> str:
    """The tier in the catalog, read by a fresh vault."""
    return Vault.open(settings).catalog.artifact(artifact_id).tier


def test_promote_deployment_via_api(
    vault_settings: Settings, ready: str, services: dict[str, Any]
) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    params = {
        "artifact_id": ready,
        "target_tier": "warm",
        "justification": "staging, triggered through the API",
    }
    with temporary_settings(updates={PREFECT_API_URL: services["api_url"]}):
        flow_run = run_deployment(
            name="promote/promote",
            parameters=params,
            timeout=RUN_TIMEOUT,
            poll_interval=1,
            as_subflow=False,
        )
    assert flow_run.deployment_id == UUID(services["deployment"]["id"])
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\n{service_logs(vault_settings)}"
    stored = api(services["api_url"], f"/flow_runs/{flow_run.id}")
    assert stored["parameters"] == params
    assert stored["name"] == f"promote-{ready}-to-warm"
    assert tier_of(vault_settings, ready) == "warm"
    vault = Vault.open(vault_settings)
    assert vault.committed_ids("hot") == set()
    vault.verify(ready)
    # `up` installed the containment automations, each running the served contain
    # deployment (docs/containment.md).
    contain = api(services["api_url"], "/deployments/name/contain/contain")
    installed = [
        a
        for a in api(services["api_url"], "/automations/filter", {})
        if a["tags"][:1] == ["weightvault"]
    ]
    assert sorted(a["name"] for a in installed) == sorted(services["automations"])
    assert len(installed) == 5
    assert {a["actions"][0]["deployment_id"] for a in installed} == {contain["id"]}


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is not installed (run .ci/install-tools)",
)
def test_promote_form_in_browser(
    vault_settings: Settings, vault: Vault, ready: str, services: dict[str, Any], tmp_path: Path
) -> None:
    """Warm from the form; then, on the same deployment and artifact, the cold review."""
    from playwright.sync_api import expect

    api_url = services["api_url"]
    deployment_id = services["deployment"]["id"]
    shots = tmp_path / "screenshots"
    with chromium_page(shots) as page:
        open_custom_run(page, services["ui_url"], "promote")
        fill_form(
            page,
            texts={
                "Artifact": ready,
                "Justification": "staging, from the UI form",
            },
            choices={"Target tier": "warm"},
        )
        page.screenshot(path=str(shots / "form.png"), full_page=True)
        assert (shots / "form.png").stat().st_size > 0
        check_operator_form(page)
        flow_run_id = submit_run(page, api_url, deployment_id)["id"]
        assert [r["id"] for r in flow_runs_of(api_url, deployment_id)] == [flow_run_id]
        run = wait_for_flow_run(api_url, flow_run_id, timeout=RUN_TIMEOUT)
        assert run["state_type"] == "COMPLETED", f"{run['state']}\n{service_logs(vault_settings)}"
        assert run["parameters"] == {
            "artifact_id": ready,
            "target_tier": "warm",
            "justification": "staging, from the UI form",
            "legal_hold": False,
        }
        assert run["name"] == f"promote-{ready}-to-warm"
        page.goto(f"{services['ui_url']}/runs/flow-run/{flow_run_id}")
        expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.locator(".page-heading").first).to_contain_text(f"promote-{ready}-to-warm")
        page.screenshot(path=str(shots / "completed.png"), full_page=True)
    assert tier_of(vault_settings, ready) == "warm"
    Vault.open(vault_settings).verify(ready)
    cold_review_cases(vault_settings, vault, ready, services, tmp_path / "cold-review")


def check_operator_form(page: Page) -> None:
    """The promote form as an operator reads it: flat, titled fields with plain defaults."""
    labels = [t.strip() for t in page.locator(".schema-form-property__label").all_inner_texts()]
    # The UI marks a field with a default "(Optional)"; the default itself is plain.
    assert labels == ["Artifact", "Target tier", "Justification", "Legal hold (Optional)"], labels
    shown = page.locator("body").inner_text()
    assert "str | None" not in shown, shown
    assert "None" not in labels
    assert not [t for t in labels if t.lower() == "params"], labels
    assert "Artifact id (or a unique prefix of it) to promote" in shown, shown


def settled_logs(api_url: str, flow_run_id: str, *, quiet_s: float = 8.0) -> list[dict[str, Any]]:
    """The run's log lines once the flow-run process wrote its last (none new for quiet_s).

    The process logs its exit after the run is terminal, so waiting for the state
    alone would miss a traceback logged on the way out.
    """
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    deadline = time.monotonic() + RUN_TIMEOUT
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        logs = list(api(api_url, "/logs/filter", body))
        if len(logs) != seen:
            seen, quiet_since = len(logs), time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return logs
        time.sleep(1)
    raise TimeoutError(f"the log of {flow_run_id} did not settle")


def check_refused_run(
    page: Page, services: dict[str, Any], run: dict[str, Any], name: str, shots: Path
) -> None:
    """A refused run's page: named from its parameters, the policy gate the failed task,
    one warning with the reasons in its log and no traceback (screenshots in ``shots``)."""
    from playwright.sync_api import expect

    assert run["state_type"] == "FAILED", run["state"]
    assert run["name"] == name, run["name"]
    logs = settled_logs(services["api_url"], run["id"])
    warnings = [g["message"] for g in logs if g["level"] == logging.WARNING]
    assert len([w for w in warnings if "refused" in w]) == 1, warnings
    assert not [g["message"] for g in logs if "Traceback" in g["message"]]
    ui_url = services["ui_url"]
    page.goto(f"{ui_url}/runs/flow-run/{run['id']}")
    expect(page.locator(".page-heading").first).to_contain_text(name, timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    refusal = page.get_by_text(re.compile(r"refused.*two_person")).first
    expect(refusal).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    page.screenshot(path=str(shots / "refused-log.png"), full_page=True)
    page.locator("li.p-tab", has_text="Task Runs").click()
    failed = page.locator(".state-list-item--failed")
    expect(failed.filter(has_text="gate-policy")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(failed).to_have_count(1)
    passed = page.locator(".state-list-item--completed", has_text="gate-integrity-signature")
    expect(passed).to_have_count(1)
    page.screenshot(path=str(shots / "refused-tasks.png"), full_page=True)
    assert (shots / "refused-tasks.png").stat().st_size > 0


def paused_review(api_url: str, flow_run_id: str, *, timeout: float = RUN_TIMEOUT) -> str:
    """The review form's description once the run paused and saved its input schema."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(api_url, f"/flow_runs/{flow_run_id}")
        state = (run or {}).get("state") or {}
        if state.get("type") in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            raise AssertionError(f"run ended {state.get('type')} without pausing: {state}")
        keyset = (state.get("state_details") or {}).get("run_input_keyset")
        if state.get("type") == "PAUSED" and keyset:
            base = f"/flow_runs/{flow_run_id}/input/"
            schema = api(api_url, base + keyset["schema"])
            description = api(api_url, base + keyset["description"])
            if schema is not None and description is not None:
                return str(description)
        time.sleep(0.5)
    raise TimeoutError(f"flow run {flow_run_id} did not pause for review in {timeout}s")


def submit_review(page: Page, api_url: str, flow_run_id: str, *, attempts: int = 3) -> None:
    """Click the review form's Submit until the API accepted the resume.

    A 5xx answer (this loaded machine's server, "Oops. Something went wrong.") leaves
    the run paused and the form filled: Submit is pressed again.
    """
    from playwright.sync_api import expect

    submit = page.get_by_role("button", name="Submit", exact=True)
    failures = []
    for attempt in range(1, attempts + 1):
        expect(submit).to_be_enabled(timeout=UI_TIMEOUT_MS)
        with page.expect_response(lambda r: r.url.endswith("/resume")) as info:
            submit.click()
        if info.value.status < 500:
            assert info.value.json()["status"] == "ACCEPT", info.value.text()
            return
        failures.append(f"attempt {attempt}: {info.value.status}")
        if api(api_url, f"/flow_runs/{flow_run_id}")["state_type"] != "PAUSED":
            return
    raise AssertionError(f"the review was not submitted: {failures}")


def review_fields(api_url: str, flow_run_id: str) -> set[str]:
    """The fields of the paused run's input form (its saved JSON schema)."""
    run = api(api_url, f"/flow_runs/{flow_run_id}")
    key = run["state"]["state_details"]["run_input_keyset"]["schema"]
    return set(api(api_url, f"/flow_runs/{flow_run_id}/input/{key}")["properties"])


def cold_run(api_url: str, deployment_id: str, artifact_id: str, why: str) -> str:
    """A cold promotion created from the deployment, as the UI's Run button does."""
    params = {"artifact_id": artifact_id, "target_tier": "cold", "justification": why}
    body = {"parameters": params}
    return str(api(api_url, f"/deployments/{deployment_id}/create_flow_run", body)["id"])


def resume(api_url: str, flow_run_id: str, run_input: dict[str, Any]) -> None:
    """Submit the review form's input through the API."""
    answer = api(api_url, f"/flow_runs/{flow_run_id}/resume", {"run_input": run_input})
    assert answer["status"] == "ACCEPT", answer


def refused_for(settings: Settings, run: dict[str, Any]) -> str:
    """The reason the log records for the run's refused promotion (the latest one)."""
    assert run["state_type"] == "FAILED", run["state"]
    vault = Vault.open(settings)
    outcomes = [
        e
        for _, entry in vault.tlog.iter_entries()
        if (e := Event.parse(entry)).kind == "artifact.promotion" and e.phase == "outcome"
    ]
    assert outcomes[-1].outcome == "refused", outcomes[-1]
    return outcomes[-1].reason or ""


def cold_review_cases(
    vault_settings: Settings, vault: Vault, ready: str, services: dict[str, Any], shots: Path
) -> None:
    """The two-person rule through the UI, on ``ready`` in warm (one served deployment).

    The paused cold promotion's form lists the approvals and has no approver field;
    one approval (submitted in the browser), the creator's, an expired one, one by a
    principal who lost the role, approvers typed into the justification and into the
    input: refused; two valid approvals: promoted.
    """
    from playwright.sync_api import expect

    api_url, deployment_id = services["api_url"], services["deployment"]["id"]
    approved(vault, ready, "cold", names=("approver-1",))  # publishes a trust root
    assert check_approvals(vault, ready, "cold").approvers == ("approver-1",)

    # One approval, promoted from the deployment's form in the browser.
    with chromium_page(shots) as page:
        open_custom_run(page, services["ui_url"], "promote")
        fill_form(
            page,
            texts={"Artifact": ready, "Justification": "release 1.0, from the UI"},
            choices={"Target tier": "cold"},
        )
        flow_run_id = submit_run(page, api_url, deployment_id)["id"]
        listing = paused_review(api_url, flow_run_id)
        assert "needs 2, has 1" in listing
        # The certificate status the gate will find (these tests' settings require none).
        assert f"## Reproducibility certificate of `{ready}`" in listing
        assert "**not required**" in listing
        assert review_fields(api_url, flow_run_id) == {"decision"}
        page.goto(f"{services['ui_url']}/runs/flow-run/{flow_run_id}")
        page.get_by_role("button", name="Resume", exact=True).click()
        expect(page.get_by_text("needs 2, has 1").first).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("approver-1").first).to_be_visible()
        expect(page.get_by_text(f"weightvault approve {ready} --to cold").first).to_be_visible()
        labels = page.locator(".schema-form-property__label").all_inner_texts()
        assert [t.strip() for t in labels] == ["Decision"], labels
        expect(form_field(page, "Approver")).to_have_count(0)
        page.screenshot(path=str(shots / "review.png"), full_page=True)
        choose(page, "Decision", "promote")
        submit_review(page, api_url, flow_run_id)
        run = wait_for_flow_run(api_url, flow_run_id, timeout=RUN_TIMEOUT)
        check_refused_run(page, services, run, f"promote-{ready}-to-cold", shots)
    reason = refused_for(vault_settings, run)
    assert "two_person" in reason, reason
    assert 'the log backs ["approver-1"]' in reason, reason
    assert tier_of(vault_settings, ready) == "warm"

    # The creator's approval (logged while creators could approve), an expired one, one
    # by a principal who lost the approver role since, and free text in the form's input.
    lax = Vault.open(replace(vault_settings, creator_may_approve=True), identity=vault.identity)
    approve(lax, ready, purpose="cold", justification="my own model")
    keys = {n: create_identity(n).public_key for n in ("approver-3", "approver-4")}
    for name, key in keys.items():
        enrol_principal(vault, name, key, ["approver"])
    past = vault.clock() - timedelta(hours=vault_settings.approval_window_hours, minutes=5)
    old = Vault.open(vault_settings, identity="approver-3", clock=lambda: past)
    approve(old, ready, purpose="cold", justification="long ago")
    approve(Vault.open(vault_settings, identity="approver-4"), ready, purpose="cold",
            justification="before my role was taken")  # fmt: skip
    enrol_principal(vault, "approver-4", keys["approver-4"], ["reader"])
    vault.forget_principal()
    flow_run_id = cold_run(
        api_url, deployment_id, ready, "approved by approver-2 and approver-3 on the phone"
    )
    listing = paused_review(api_url, flow_run_id)
    assert "needs 2, has 1" in listing, listing
    assert "alice created the artifact" in listing
    assert "approver-3's approval expired at" in listing
    assert "approver-4 lacks the approver role" in listing
    # An approver typed into the review input: the server refuses input the form lacks.
    forged = {"decision": "promote", "approver": "approver-2", "approvers": ["approver-2"]}
    answer = api(api_url, f"/flow_runs/{flow_run_id}/resume", {"run_input": forged})
    assert answer["status"] == "REJECT", answer
    assert "Additional properties are not allowed" in answer["details"]["reason"]
    resume(api_url, flow_run_id, {"decision": "promote"})
    run = wait_for_flow_run(api_url, flow_run_id, timeout=RUN_TIMEOUT)
    reason = refused_for(vault_settings, run)
    assert 'the log backs ["approver-1"]' in reason, reason
    assert tier_of(vault_settings, ready) == "warm"

    # A second valid approval: the same form, the same input, and the move is made.
    approved(vault, ready, "cold", names=("approver-2",))
    assert check_approvals(vault, ready, "cold").satisfied
    flow_run_id = cold_run(api_url, deployment_id, ready, "release 1.0, two approvals")
    assert "needs 2, has 2" in paused_review(api_url, flow_run_id)
    resume(api_url, flow_run_id, {"decision": "promote"})
    run = wait_for_flow_run(api_url, flow_run_id, timeout=RUN_TIMEOUT)
    assert run["state_type"] == "COMPLETED", f"{run['state']}\n{service_logs(vault_settings)}"
    assert tier_of(vault_settings, ready) == "cold"
    keyed = {"artifacts": {"key": {"any_": [report_key("approvals", ready)]}}}
    artifacts = api(api_url, "/artifacts/filter", keyed)
    assert any("needs 2, has 2" in (a.get("data") or "") for a in artifacts)
    # Each artifact's promotion reports are one key: its history in the UI (warm, the
    # refused cold runs, cold).
    keyed = {"artifacts": {"key": {"any_": [report_key("promotion", ready)]}}}
    history = api(api_url, "/artifacts/filter", keyed)
    assert len(history) >= 4, [a["key"] for a in history]
    assert sum("refused" in (a.get("data") or "") for a in history) >= 2
