"""Structured logging: redaction always on, every line through the standard logging bridge.

structlog renders each event (JSON when stderr is not a TTY, console text on
one) after the redaction processor, which masks values under sensitive key
names, values registered as secrets at runtime (store credentials, master key)
and any bytes; the rendered line becomes a standard :mod:`logging` record on
the ``weightvault.*`` logger. So whoever handles the record (the CLI's stderr
handler, Prefect's run-log handler, an application's own) gets redacted text,
and library code never writes to stdout. Records of other libraries that pass
a handler set up here are scrubbed of registered secrets too.

Entry points call :func:`configure_logging` (the CLI) or
:func:`route_to_handlers` (the Prefect flows, with Prefect's handlers).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

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


VAULT_LOGGER = "weightvault"
_HANDLER_MARK = "_weightvault_handler"


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in any record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its scrubbed text; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = scrub_text(message), None
        if record.exc_info:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _structlog(*, json_output: bool) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


def _level(name: str) -> int:
    return logging.getLevelNamesMapping().get(name.upper(), logging.INFO)


def configure_logging(level: str = "INFO", *, json_output: bool | None = None) -> None:
    """Log the vault's lines at ``level`` and above to stderr (the CLI's set-up)."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    numeric = _level(level)
    _structlog(json_output=json_output)
    vault_logger = logging.getLogger(VAULT_LOGGER)
    for old in [h for h in vault_logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        vault_logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)
    vault_logger.addHandler(handler)
    vault_logger.setLevel(numeric)
    vault_logger.propagate = False


def route_to_handlers(handlers: list[logging.Handler], level: str = "INFO") -> None:
    """Also send the vault's lines (JSON, redacted) to ``handlers``, e.g. Prefect's run-log one.

    The records still propagate to the root logger, so a process that prints its
    root logger (a Prefect worker) shows them too.
    """
    _structlog(json_output=True)
    vault_logger = logging.getLogger(VAULT_LOGGER)
    for handler in handlers:
        if handler not in vault_logger.handlers:
            vault_logger.addHandler(handler)
    vault_logger.setLevel(_level(level))


@contextlib.contextmanager
def isolated_secrets() -> Iterator[None]:
    """Restore the registry of secrets afterwards (for tests that register their own)."""
    with _lock:
        saved = set(_secrets)
    try:
        yield
    finally:
        with _lock:
            _secrets.clear()
            _secrets.update(saved)


def get_logger(name: str = "weightvault") -> FilteringBoundLogger:
    """A bound structlog logger (the filtering wrapper class :func:`_structlog` configures)."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger


# Until an entry point configures logging, the vault's lines are still redacted and
# go through the standard logging module (its last-resort handler writes warnings
# to stderr), never to stdout.
_structlog(json_output=True)
