"""The vault's SQL databases (the catalog, the shared keystore): URLs, engines, failures.

SQLite (the catalog's default, a file under the vault home) or PostgreSQL through
psycopg 3, a synchronous driver: ``postgresql://`` and ``postgres://`` URLs get it;
an async driver is refused. Connection failures become one-line errors that name
the database (its role and URL) without its password:
:class:`DatabaseUnavailableError` for one that cannot be reached (transient),
:class:`DatabaseConfigError` for one that refuses the URL (unknown driver, bad
credentials, missing database).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from weightvault.errors import DatabaseConfigError, DatabaseUnavailableError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_PSYCOPG = "postgresql+psycopg"
_CONNECT_TIMEOUT_S = 10
_SYNC_DRIVERS = {"sqlite": SQLITE, "sqlite+pysqlite": SQLITE, _PSYCOPG: POSTGRESQL}
# libpq's messages for a server that is not there (as opposed to one that said no).
_UNREACHABLE = re.compile(
    r"connection refused|timeout expired|timed out|could not translate host name|"
    r"no route to host|network is unreachable|server closed the connection|"
    r"connection not open|terminating connection|the database system is (starting|shutting)",
    re.IGNORECASE,
)


def database_url(url: str, role: str) -> URL:
    """``url`` parsed, with the driver the vault uses; DatabaseConfigError if unusable.

    ``role`` (``catalog``, ``keystore``) names the database in errors.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseConfigError(
            f"the {role} URL is not a database URL (expected sqlite:///PATH or "
            "postgresql://USER@HOST/DB)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=_PSYCOPG)
    if parsed.drivername not in _SYNC_DRIVERS:
        raise DatabaseConfigError(
            f"the {role} cannot use the driver {parsed.drivername!r}: give sqlite:///PATH or "
            "postgresql://USER@HOST/DB (psycopg 3, synchronous)"
        )
    return parsed


def backend(url: URL) -> str:
    """``sqlite`` or ``postgresql``."""
    return _SYNC_DRIVERS[url.drivername]


def shown(url: URL) -> str:
    """The URL as errors and logs may show it: never its password."""
    return url.render_as_string(hide_password=True)


def open_engine(url: URL, role: str) -> Engine:
    """The engine of ``url``; PostgreSQL connection failures surface as the vault's errors."""
    connect_args: dict[str, Any] = {}
    if backend(url) == POSTGRESQL and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    try:
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    except NoSuchModuleError:  # pragma: no cover - the lock installs both drivers
        raise DatabaseConfigError(f"no driver installed for {url.drivername}") from None
    if backend(url) == POSTGRESQL:
        where = f"{role} database {shown(url)}"
        event.listen(
            engine, "handle_error", lambda ctx: _raise_catalog_error(ctx, where), retval=False
        )
    return engine


def _raise_catalog_error(ctx: ExceptionContext, where: str) -> None:
    """Replace a driver's connection failure by the catalog's one-line error."""
    exc = ctx.sqlalchemy_exception
    if not isinstance(exc, DBAPIError) or not (ctx.is_disconnect or _is_connect_error(ctx)):
        return
    reason = _reason(str(exc.orig))
    if ctx.is_disconnect or _UNREACHABLE.search(reason):
        raise DatabaseUnavailableError(f"cannot reach the {where}: {reason}") from None
    raise DatabaseConfigError(f"the {where} refused the connection: {reason}")


def _is_connect_error(ctx: ExceptionContext) -> bool:
    # No statement yet: the failure happened while connecting.
    return ctx.statement is None or ctx.connection is None


def _reason(message: str) -> str:
    """The driver's last line of explanation, one line, quoted hosts kept."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "no reason given"
    first = lines[0]
    # libpq: 'connection failed: connection to server at "h" (ip), port p failed: WHY'
    return first.rsplit("failed: ", 1)[-1] or first
