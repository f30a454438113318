"""A user's first TUI start: their start-up cache written by a second process meanwhile.

With no current start-up cache for who acts (their very first start, a new --as address, a
cache folder emptied), the first rows would wait for the database layer: importing
SQLAlchemy, the models and the services costs ~0.45 s of CPU, on the interpreter that also
draws the screen. So the start forks before it imports Textual: the child imports the database
layer and writes the cache (services/prepared.py `write_first`) on the machine's other core
while the parent draws the screen; the parent's quick start (HelpdeskData.quick_start) waits
for the child, then reads the cache as every later start does.

The child is forked before any thread exists, from a process that has imported only the CLI
and the settings (no Python start to pay). It writes nothing to the terminal (its standard
streams are /dev/null) and ends with os._exit. Any error, and there is simply no cache: the
start goes the normal way, which is the authority on who acts anyway (the cache is written
only for a `who` the CLI lets look up, and read back only for that user, active).
"""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

from tui_helpdesk import database_url
from tui_helpdesk.config import Settings
from tui_helpdesk.start_cache import Who, cache_file, current, load


class Ahead:
    """The child writing the start-up cache."""

    def __init__(self, pid: int, ended: int) -> None:
        self._pid: int | None = pid
        self._ended = ended  # the read end of a pipe the child holds open while it runs

    def wait(self, seconds: float) -> bool:
        """Until the child has ended (its cache written or not), `seconds` at most; True when
        it has. A child still running then is reaped by a thread when it ends."""
        pid = self._pid
        if pid is None:
            return True
        self._pid = None
        ready, _, _ = select.select([self._ended], [], [], seconds)
        if not ready:
            threading.Thread(target=_reap, args=(pid, self._ended), daemon=True).start()
            return False
        _reap(pid, self._ended)
        return True


def start(settings: Settings, directory: Path | None, who: Who | None) -> Ahead | None:
    """Fork the child that writes the start-up cache of `who` in `directory`, when there is
    none current for this code and page size; None when there is nothing to do: no cache
    folder or no `who` (the start uses no cache), a current cache already, a database the
    plain driver cannot open (in memory, another driver), no fork on this system, or a process
    that already runs threads (a fork would copy their locks in whatever state they are)."""
    if directory is None or who is None or not hasattr(os, "fork"):
        return None
    url = settings.database.url
    if database_url.sqlite_file(url) is None and database_url.libpq_uri(url) is None:
        return None
    try:
        recipe = load(cache_file(directory, url, who))
    except (OSError, ValueError):
        recipe = {}
    if current(recipe, who, max(10, settings.tui.page_size)):
        return None
    if threading.active_count() > 1:
        return None
    ended, holding = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (tests see what it wrote)
        _child(settings, directory, who, ended)
    os.close(holding)
    return Ahead(pid, ended)


def _child(settings: Settings, directory: Path, who: Who, parents_end: int) -> None:
    status = 1
    try:
        os.close(parents_end)
        quiet = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(quiet, stream)
        from tui_helpdesk.services import prepared

        status = 0 if prepared.write_first(settings, directory, who) else 2
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _reap(pid: int, ended: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # reaped already (a SIGCHLD handler that waits for any child)
        pass
    finally:
        os.close(ended)
