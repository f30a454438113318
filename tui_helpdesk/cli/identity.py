"""Who is at the keyboard (F3): the OS login of the effective uid, and whether they own the desk.

Without `--as`, a command acts as the user mapped to the OS login of the *effective* uid (from
the password database, never $USER or $LOGNAME, which anyone can set). `--as` lets one person
act as another, so it is honoured only for the owner of the database, who could change any row
directly anyway:

- root;
- SQLite: the account that owns the database file (the directory that will hold it, before
  `init`);
- PostgreSQL: the account that owns the config file holding the URL and its password. When the
  URL comes from the environment there is no file to own: whoever runs the command brought the
  credentials, so `--as` is honoured (put the URL in a config file readable by the helpdesk
  account alone on a shared server);
- an in-memory database belongs to whoever opened it.

Agents on a shared server therefore act as their own mapped user only; over SSH the key decides
(cli/ssh_session.py) and `--as` is refused outright.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from tui_helpdesk import database_url
from tui_helpdesk.config import Settings


def effective_uid() -> int:
    return os.geteuid()


def os_login(uid: int | None = None) -> str | None:
    """The login name of `uid` (default: the effective uid), None when it has no entry."""
    try:
        return pwd.getpwuid(effective_uid() if uid is None else uid).pw_name
    except KeyError:
        return None


@dataclass(frozen=True)
class Owner:
    """The uid that owns the database (None: nobody in particular) and what decides it."""

    uid: int | None
    what: str


def database_owner(settings: Settings) -> Owner:
    """Who owns the database of `settings`, read from the URL without SQLAlchemy
    (database_url.py): a TUI start decides with it, before the database layer is imported,
    whether its start-up cache may look up an --as user (cli/run.py)."""
    url = settings.database.url
    if database_url.backend(url) == "sqlite":
        path = database_url.sqlite_file(url)
        if path is None:
            return Owner(None, "an in-memory database")
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
        return Owner(existing.stat().st_uid, f"the database file {path}")
    if settings.source:
        return Owner(Path(settings.source).stat().st_uid, f"the config file {settings.source}")
    return Owner(None, "a database URL from the environment")


def may_act_as_anyone(owner: Owner, uid: int | None = None) -> bool:
    uid = effective_uid() if uid is None else uid
    return uid == 0 or owner.uid is None or owner.uid == uid


def owner_refusal(owner: Owner, uid: int | None = None) -> str:
    """Why `--as` was refused, naming who owns the desk and who is asking."""
    uid = effective_uid() if uid is None else uid
    holder = os_login(owner.uid) if owner.uid is not None else None
    login = os_login(uid) or f"uid {uid}"
    return (
        f"--as is honoured only for the owner of the database ({holder or owner.uid}, who owns "
        f"{owner.what}) or root; you are {login}: leave out --as to act as the user mapped to "
        "your OS login"
    )
