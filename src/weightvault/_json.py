"""Canonical JSON: one byte string per document, checked on the way in.

Every JSON object the vault stores (manifests, envelopes, events) is written in
canonical form and refused on read unless it is byte-for-byte canonical, so a
single changed byte is always detected, even one that leaves the parsed value
unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from weightvault.errors import IntegrityError


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise IntegrityError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def parse_canonical(data: bytes, what: str) -> dict[str, Any]:
    """Parse a stored JSON object; IntegrityError unless it is canonical."""
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise IntegrityError(f"{what} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise IntegrityError(f"{what} is not a JSON object")
    if canonical_json(obj) != data:
        raise IntegrityError(f"{what} is not in canonical form")
    return obj
