"""The database URL held in a secret, parsed into what a driver needs; the password never reaches a message.

Only the parts below are read. Anything else a driver would act on (libpq's `host=/socket/dir`, `hostaddr`,
`service`, `sslkey` ...) is refused by name, so a URL cannot steer the connection around the address guard.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from connectors.base import ActionError


class Dialect(enum.Enum):
    POSTGRES = "postgres"  # PostgreSQL through psycopg
    MYSQL = "mysql"  # MySQL or MariaDB through PyMySQL


SCHEMES = {"postgres": Dialect.POSTGRES, "postgresql": Dialect.POSTGRES,
           "mysql": Dialect.MYSQL, "mariadb": Dialect.MYSQL}
DEFAULT_PORTS = {Dialect.POSTGRES: 5432, Dialect.MYSQL: 3306}
# libpq's sslmode values; the only query parameter a URL may carry.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class DatabaseURL:
    dialect: Dialect
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    sslmode: str | None = None

    def describe(self) -> str:
        """How messages name the database: no user, no password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.dialect.value} database {self.dbname or '(default)'} on {host}:{self.port}"


def _refuse(secret: str, problem: str) -> ActionError:
    return ActionError(f"secret '{secret}' does not hold a usable database URL: {problem}", retryable=False)


def database_url_parse(url: str, *, secret: str) -> DatabaseURL:
    """Parse `postgres://user:password@host:port/dbname?sslmode=...` or `mysql://...`; errors name `secret` only."""
    parts = urlsplit(url.strip())
    dialect = SCHEMES.get(parts.scheme.lower())
    if dialect is None:
        raise _refuse(secret, f"the scheme is {parts.scheme or '(none)'}://, expected postgres:// or mysql://")
    try:
        port = parts.port or DEFAULT_PORTS[dialect]
    except ValueError:
        raise _refuse(secret, "the port is not a number from 0 to 65535") from None
    host = parts.hostname
    if not host:
        raise _refuse(secret, "it names no host (connections through a local socket are not allowed)")
    options = parse_qsl(parts.query, keep_blank_values=True)
    sslmode = None
    for key, value in options:
        if key != "sslmode" or dialect is not Dialect.POSTGRES:
            raise _refuse(secret, f"the parameter {key!r} is not supported (only sslmode, for PostgreSQL)")
        if value not in SSL_MODES:
            raise _refuse(secret, f"sslmode must be one of {', '.join(SSL_MODES)}")
        sslmode = value
    dbname = unquote(parts.path.lstrip("/"))
    if "/" in dbname:
        raise _refuse(secret, "the path must be just the database name")
    return DatabaseURL(dialect=dialect, host=host, port=port, user=unquote(parts.username or ""),
                       password=unquote(parts.password or ""), dbname=dbname, sslmode=sslmode)
