"""The approvals listing the paused cold promotion shows, and its review form's schema."""

from __future__ import annotations

from flows.promote import PromotionReview
from tasks.reports import approvals_markdown
from weightvault.lifecycle.approvals import Approval, ApprovalCheck

BOB = Approval(
    index=7,
    approver="bob",
    keyid="ab" * 32,
    purpose="cold",
    justification="eval reviewed",
    logged_at="2026-12-01T10:00:00Z",
    expires_at="2026-12-04T10:00:00Z",
    statement="statements/x.dsse.json",
)


def test_the_listing_names_who_approved_what_does_not_count_and_what_is_missing() -> None:
    check = ApprovalCheck(
        artifact_id="wv-1",
        purpose="cold",
        required=2,
        accepted=(BOB,),
        rejected=((9, "alice created the artifact"), (11, "x | y")),
        approvers=("bob",),
    )
    text = approvals_markdown(check)
    assert "# Approvals for the cold promotion of `wv-1`" in text
    assert "**needs 2, has 1** (1 more needed)" in text
    assert f"| bob | `{'ab' * 8}` | 2026-12-01T10:00:00Z | 2026-12-04T10:00:00Z | 7 |" in text
    assert "ab" * 9 not in text  # a keyid prefix only
    assert "| 9 | alice created the artifact |" in text
    assert "| 11 | x / y |" in text  # a reason cannot break the table
    assert "`weightvault approve wv-1 --to cold --justification TEXT`" in text


def test_a_met_rule_and_no_approvals_read_differently() -> None:
    met = ApprovalCheck("wv-1", "break-glass", 1, (BOB,), (), ("bob",))
    assert "**needs 1, has 1** (met)" in approvals_markdown(met)
    assert "break-glass read of" in approvals_markdown(met)
    none = ApprovalCheck("wv-1", "cold", 2)
    assert "No approval the log backs yet." in approvals_markdown(none)


def test_the_review_form_has_a_decision_and_no_field_that_could_name_an_approver() -> None:
    schema = PromotionReview.model_json_schema()
    assert set(schema["properties"]) == {"decision"}
    assert schema["properties"]["decision"]["enum"] == ["promote", "cancel"]
    assert schema.get("additionalProperties") is False
