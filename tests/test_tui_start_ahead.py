"""A first start's cache, written by a forked process while the TUI draws (tui/start_ahead.py).

The fork itself runs in a Python process of its own (`ahead` below): a fork of the test
process would copy pytest, and the suite turns it off there (conftest `no_fork_ahead`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_tui_data import actor, seed

from tui_helpdesk import start_cache
from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import User
from tui_helpdesk.services import prepared

PAGE = 10
BOB = ("email", "bob@acme.test")

AHEAD = """
import json, sys, threading
from pathlib import Path
from tui_helpdesk.config import load_settings
from tui_helpdesk.tui import start_ahead

url, folder, who, thread, page = sys.argv[1], Path(sys.argv[2]), tuple(sys.argv[3:5]), *sys.argv[5:]
settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url,
                                  "TUI_HELPDESK_TUI_PAGE_SIZE": page})
if thread == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
ahead = start_ahead.start(settings, folder, who)
print(json.dumps({
    "forked": ahead is not None,
    "ended": ahead.wait(60) if ahead else None,
    "again": start_ahead.start(settings, folder, who) is not None,
    "sqlalchemy": "sqlalchemy" in sys.modules,
}))
"""


def ahead(url: str, folder: Path, who: tuple[str, str], thread: bool = False) -> dict[str, bool]:
    """start_ahead.start, its child waited for, then start again, in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", AHEAD, url, str(folder), *who, "thread" if thread else "-",
         str(PAGE)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def page_settings(settings: Settings) -> Settings:
    return settings.replace(tui={"page_size": PAGE})


@pytest.mark.both_backends
def test_the_child_writes_the_cache_a_normal_start_writes(
    db: Database, page_settings: Settings, tmp_path: Path
) -> None:
    """No cache: the child is forked and writes it, without the parent importing the database
    layer; a start after that finds it current and forks nothing. What it wrote is what a
    normal start writes for bob."""
    seed(db)
    url = page_settings.database.url
    assert ahead(url, tmp_path, BOB) == {
        "forked": True, "ended": True, "again": False, "sqlalchemy": False
    }  # fmt: skip
    written = start_cache.load(start_cache.cache_file(tmp_path, url, BOB))
    normal = tmp_path / "normal"
    assert prepared.write(db, page_settings, normal, BOB, actor(db, "bob@acme.test"))
    assert start_cache.load(start_cache.cache_file(normal, url, BOB)) == written


@pytest.mark.parametrize("who", [("email", "nobody@acme.test"), BOB, ("ssh_key", "404")])
def test_no_cache_for_an_unknown_or_inactive_user(
    db: Database, page_settings: Settings, tmp_path: Path, who: tuple[str, str]
) -> None:
    """The child writes nothing the normal start would refuse (it then says why): an
    address or key nobody has, an inactive user."""
    seed(db)
    with db.write() as session:
        session.query(User).filter_by(email="bob@acme.test").update({"active": False})
    assert ahead(page_settings.database.url, tmp_path, who)["ended"] is True
    assert not start_cache.cache_file(tmp_path, page_settings.database.url, who).exists()
    assert prepared.write_first(page_settings, tmp_path, who) is False


def test_no_fork_beside_threads_or_without_a_database_file(
    db: Database, page_settings: Settings, tmp_path: Path
) -> None:
    """A process that runs threads is not forked (their locks would be copied mid-use), and a
    database the plain driver cannot open (in memory) has no cache to write."""
    seed(db)
    folder = tmp_path / "cache"
    beside = ahead(page_settings.database.url, folder, BOB, thread=True)
    assert beside["forked"] is False
    assert not folder.exists()
    assert ahead("sqlite://", folder, BOB)["forked"] is False
