"""The reproducibility certificate status a paused cold promotion's review form shows."""

from __future__ import annotations

from tasks.reports import certificate_markdown
from weightvault.lifecycle.certificate import CertificateCheck

REF = {"kind": "reproducibility", "key": "statements/ab.dsse.json", "sha256": "ab" * 32}


def test_a_found_certificate_is_named_with_its_log_entry() -> None:
    check = CertificateCheck(
        required=True,
        present=True,
        valid=True,
        statement=REF,
        issued_at="2026-12-02T01:00:00Z",
        index=42,
    )
    text = certificate_markdown(check, "wv-1")
    assert "## Reproducibility certificate of `wv-1`" in text
    assert (
        "**found**: `statements/ab.dsse.json` (log entry 42, issued 2026-12-02T01:00:00Z)" in text
    )
    assert "missing" not in text


def test_missing_invalid_and_not_required_read_differently() -> None:
    missing = certificate_markdown(
        CertificateCheck(required=True, reason="the log records no certificate"), "wv-1"
    )
    assert "**missing**: the log records no certificate" in missing
    assert "`weightvault recover wv-1`" in missing
    invalid = certificate_markdown(
        CertificateCheck(required=True, present=True, index=7, reason="it certifies a | b"), "wv-1"
    )
    assert "**not valid** (log entry 7): it certifies a / b" in invalid
    assert "**not required**" in certificate_markdown(CertificateCheck(required=False), "wv-1")
