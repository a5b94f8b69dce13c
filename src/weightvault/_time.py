"""Clock helpers: the default clock and the vault's two timestamp renderings."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso", "iso_seconds", "parse_iso", "utcnow"]


def utcnow() -> datetime:
    """The current time in UTC (the default of every injectable clock)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds, as events, manifests and reports store it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def iso_seconds(moment: datetime) -> str:
    """ISO 8601 UTC to the second (what S3 keeps of retention dates)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_iso(text: str) -> datetime:
    """Parse either rendering back (a naive time is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
