"""Canonical JSON (RFC 8785, from the ``rfc8785`` library): the one encoder of signed bytes.

Every JSON object the vault stores or signs (manifests, envelopes, events,
statements, attestations, key-wrap associated data) is written in canonical
form and refused on read unless it is byte-for-byte canonical, so a single
changed byte is always detected, even one that leaves the parsed value
unchanged. NaN, infinities, integers beyond 2^53, non-string keys and lone
surrogates are refused on the way out.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import rfc8785

from weightvault.errors import IntegrityError, InvalidInputError

__all__ = ["JSON", "canonical_json", "parse_canonical"]

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
"""A JSON value as :func:`json.loads` returns it: the one JSON type of the vault's API."""


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes of ``obj``; InvalidInputError if it has no canonical form."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, RecursionError) as exc:
        # The message names the error type only, never the data.
        raise InvalidInputError(
            f"value is not canonical-JSON serialisable ({type(exc).__name__})"
        ) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise IntegrityError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise IntegrityError(f"JSON constant {name} is not allowed")


def parse_canonical(data: bytes, what: str) -> dict[str, Any]:
    """Parse a stored JSON object; IntegrityError unless it is canonical."""
    try:
        obj = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise IntegrityError(f"{what} is not valid JSON") from None
    except IntegrityError as exc:
        raise IntegrityError(f"{what}: {exc.message}") from None
    if not isinstance(obj, dict):
        raise IntegrityError(f"{what} is not a JSON object")
    try:
        canonical = canonical_json(obj)
    except InvalidInputError:
        raise IntegrityError(f"{what} is not in canonical form") from None
    if canonical != data:
        raise IntegrityError(f"{what} is not in canonical form")
    return obj
