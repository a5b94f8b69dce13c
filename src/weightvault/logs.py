"""Structured logging: JSON when not on a TTY, redaction always.

The redaction processor runs last before rendering, so no processor added
later can leak: it masks values under sensitive key names, values registered
as secrets at runtime (store credentials, master key), and any bytes.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "<redacted>"
_SENSITIVE = re.compile(
    r"(secret|password|passwd|passphrase|token|credential|private|material|master|dek|"
    r"plaintext|mnemonic|seed|authorization|cookie|access_key|secret_key|api_key|^key$|_key$)",
    re.IGNORECASE,
)
_SAFE = frozenset({"key_id", "kek_id", "object_key", "signing_key_id", "kek_version"})
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | bytes) -> None:
    """Mask every later occurrence of ``value`` in any log field."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if len(text) >= 8:
        with _lock:
            _secrets.add(text)


def scrub_text(text: str) -> str:
    """``text`` with every registered secret masked (for messages printed outside logging)."""
    scrubbed = _scrub(text)
    return scrubbed if isinstance(scrubbed, str) else REDACTED


def _scrub(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return REDACTED
    if isinstance(value, str):
        # Longest first, so a secret that contains another one is masked whole; a
        # snapshot, so a secret registered by another thread meanwhile cannot break it.
        with _lock:
            ordered = sorted(_secrets, key=len, reverse=True)
        for secret in ordered:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redact_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else (exceptions, paths, objects) is rendered through its repr: scrub
    # that text, or a registered secret inside it would reach the output.
    return _scrub(repr(value))


def _redact_field(name: str, value: Any) -> Any:
    if name not in _SAFE and _SENSITIVE.search(name):
        return REDACTED
    return _scrub(value)


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive fields and registered secrets."""
    return {k: _redact_field(k, v) for k, v in event_dict.items()}


def configure_logging(level: str = "INFO", *, json_output: bool | None = None) -> None:
    """Configure structlog once for the process."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "weightvault") -> Any:
    """A bound structlog logger."""
    return structlog.get_logger(name)
