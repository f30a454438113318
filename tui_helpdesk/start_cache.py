"""The TUI's start-up cache files: where they are, what they hold, when they are current.

A TUI start reads them before anything heavy is imported (tui/quick_start.py); a TUI start
that went the normal way writes one, and so do `init`, `db upgrade` and the headless worker
for the caches an upgrade made stale (services/prepared.py `refresh`), so that the first start
after an upgrade finds its cache too. Standard library only (platformdirs when asked where).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

VERSION = 1

# How the actor is looked up, as the CLI's identity check finds them: ("email", address) for
# an --as that is honoured, ("os_user", login), or ("ssh_key", key id) for `ssh-session`.
Who = tuple[str, str]


def default_directory() -> Path:
    """The user's cache folder (the helpdesk account's for every SSH session)."""
    from platformdirs import user_cache_path

    return user_cache_path("tui-helpdesk", appauthor=False)


@functools.cache
def code_state() -> str:
    """The package's code (as the warm command server compares it), as one short string: as
    it was when this process first asked, at its start, so a cache written later names the
    code that compiled it, not an upgrade installed meanwhile."""
    from tui_helpdesk import code_state as state

    return hashlib.sha256(repr(state.code_state()).encode("utf-8", "surrogateescape")).hexdigest()


def cache_file(directory: Path, url: str, who: Who) -> Path:
    """One file per database and acting user; the name hides both (a URL holds a password)."""
    key = "\0".join((url, *who))
    return directory / f"start-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def save(directory: Path, url: str, who: Who, recipe: dict[str, Any]) -> None:
    """Write the cache atomically, readable by this user only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"version": VERSION, "code": code_state(), "who": list(who), **recipe})
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".start-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(body)
        os.replace(temporary, cache_file(directory, url, who))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def whos(directory: Path, url: str) -> list[Who]:
    """Who has a cache for the database at `url` in `directory` (current or not)."""
    found: list[Who] = []
    for path in sorted(directory.glob("start-*.json")):
        try:
            who = tuple(load(path).get("who") or ())
        except (OSError, ValueError):
            continue
        if len(who) == 2 and cache_file(directory, url, (who[0], who[1])) == path:
            found.append((who[0], who[1]))
    return found


def current(recipe: dict[str, Any], who: Who, page_size: int) -> bool:
    """Written by this code, for `who` and this page size (the schema revision is checked
    against the database by whoever reads it)."""
    return (
        recipe.get("version") == VERSION
        and recipe.get("who") == list(who)
        and recipe.get("limit") == page_size
        and recipe.get("code") == code_state()
    )
