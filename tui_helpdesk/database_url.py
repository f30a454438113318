"""A database URL read as SQLAlchemy reads it, without importing SQLAlchemy (~0.5 s of CPU).

Two decisions come before the database layer is imported at a TUI start: whether `--as` is
honoured (cli/identity.py: who owns the SQLite file, or the config file), and where the
start-up cache's plain driver connects (tui/quick_start.py). Both read the URL here, with the
pattern of SQLAlchemy's own parser (sqlalchemy.engine.url._parse_url), and so does
db/engine.sqlite_path: one reading of a URL, whichever layer asks. tests/test_identity.py
holds it to make_url's for every form of URL the settings take. Standard library only.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

# sqlalchemy.engine.url._parse_url, as of SQLAlchemy 2.1: scheme, credentials, host, port,
# database (percent-decoded), query.
_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)
POSTGRESQL = frozenset({"postgresql", "postgres"})


def _parts(url: str) -> re.Match[str]:
    found = _URL.match(url)
    if found is None:  # make_url raises too (ArgumentError)
        raise ValueError("could not parse the database URL")
    return found


def backend(url: str) -> str:
    """The backend of the URL (URL.get_backend_name): its scheme without `+driver`."""
    return _parts(url)["name"].partition("+")[0]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases, in-memory and URI databases."""
    parts = _parts(url)
    if parts["name"].partition("+")[0] != "sqlite":
        return None
    database = unquote(parts["database"] or "")
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def libpq_uri(url: str) -> str | None:
    """A PostgreSQL URL as libpq reads it (psycopg.connect): without SQLAlchemy's `+driver`;
    None for other databases."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.partition("+")[0] not in POSTGRESQL:
        return None
    return f"postgresql://{rest}"
