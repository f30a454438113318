"""The start-up cache (tui/quick_start.py): the first rows read with the plain driver are the
rows the services read, for every kind of user; anything stale falls back to the normal start."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from test_tui import SIZE, build, list_lines, loaded, wait_for
from test_tui_data import NOW, Seed, actor, add_conversation, seed

from tui_helpdesk import database_url, start_cache
from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Mailbox, MailboxGrant, User
from tui_helpdesk.records import ConversationView
from tui_helpdesk.services import changes, prepared, users
from tui_helpdesk.services.conversations import listing
from tui_helpdesk.tui import quick_start
from tui_helpdesk.tui.data import ALL_OPEN, HelpdeskData

PAGE = 10
MINE = ConversationView("mine", "Mine")


@pytest.fixture
def quick_settings(settings: Settings) -> Settings:
    return settings.replace(tui={"refresh_interval_seconds": 0.05, "page_size": PAGE})


def private_sales(db: Database, ids: Seed) -> None:
    """Sales becomes a private mailbox granted to dee alone: ada (admin) must not see it."""
    with db.write() as session:
        session.get(Mailbox, ids.mailboxes["sales"]).private = True
        session.add(MailboxGrant(mailbox_id=ids.mailboxes["sales"], user_id=ids.users["dee"]))


def normal_start(settings: Settings, cache: Path, email: str) -> None:
    """A start without the cache: connects with SQLAlchemy, then writes the cache."""
    data = HelpdeskData(settings, email, start_cache=cache)
    assert not data.quick_start()
    data.connect()
    data.remember_start()
    data.close()


def services_view(db: Database, email: str, view: ConversationView) -> tuple[object, ...]:
    """The actor, their timezone and first page as the services read them."""
    acting = actor(db, email)
    with db.read() as session:
        page = listing.first_page(session, acting, view, limit=PAGE)
        return acting, users.timezone_of(session, acting), page.rows, page.has_older


@pytest.mark.both_backends
@pytest.mark.parametrize("email", ["ada@acme.test", "bob@acme.test", "cy@acme.test",
                                   "dee@acme.test"])  # fmt: skip
def test_the_quick_rows_are_the_rows_the_services_read(
    db: Database, quick_settings: Settings, tmp_path: Path, email: str
) -> None:
    """An admin, agents in a queue, an agent with only an assigned conversation, and the one
    user granted a private mailbox: same actor, timezone, rows (every column) and `more`."""
    ids = seed(db)
    private_sales(db, ids)
    with db.write() as session:  # more rows than a page, tags, a read mark, an odd subject
        for n in range(PAGE + 2):
            add_conversation(
                session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                queue_id=ids.queues["Support"], subject=f"Row {n}\x1b[31m red", sender="x@y.test",
                tags=("b", "a") if n % 2 else (), assignee_id=ids.users["cy"] if n == 3 else None,
            )  # fmt: skip
    normal_start(quick_settings, tmp_path, email)
    data = HelpdeskData(quick_settings, email, start_cache=tmp_path)
    assert data.quick_start()
    found = quick_start.read(tmp_path, quick_settings.database.url, ("email", email),
                             page_size=PAGE)  # fmt: skip
    assert found is not None
    expected = services_view(db, email, ALL_OPEN)
    assert (found.actor, found.timezone, found.rows, found.more) == expected
    if email == "ada@acme.test":
        sales = {ids.conversations["invoice"], ids.conversations["unrouted"]}
        assert found.rows and not sales & {row.id for row in found.rows}


@pytest.mark.both_backends
def test_the_mine_view_compiles_and_reads_the_same(
    db: Database, quick_settings: Settings, tmp_path: Path
) -> None:
    """The statements work for any view: cy's Mine view read with the driver is the services'."""
    seed(db)
    email, who = "cy@acme.test", ("email", "cy@acme.test")
    acting = actor(db, email)
    where = prepared.connection(db, database_url.libpq_uri(quick_settings.database.url))
    assert where is not None
    with db.read() as session:
        recipe = prepared.start_statements(session, acting, MINE, limit=PAGE, who=who)
    recipe |= where | {"revision": db.schema_revision(), "view": "mine", "limit": PAGE,
                       "timeout": 5}  # fmt: skip
    start_cache.save(tmp_path, quick_settings.database.url, who, recipe)
    found = quick_start.read(tmp_path, quick_settings.database.url, who, page_size=PAGE)
    assert found is not None and found.view == "mine"
    acting, zone, rows, more = services_view(db, email, MINE)
    assert (found.actor, found.timezone, found.rows, found.more) == (acting, zone, rows, more)
    assert [row.subject for row in found.rows] == ["Cannot log in"]


def test_a_stale_cache_is_not_used(db: Database, quick_settings: Settings, tmp_path: Path) -> None:
    seed(db)
    url, who = quick_settings.database.url, ("email", "bob@acme.test")
    normal_start(quick_settings, tmp_path, "bob@acme.test")

    def usable() -> bool:
        return quick_start.read(tmp_path, url, who, page_size=PAGE) is not None

    assert usable()
    assert quick_start.read(tmp_path, url, who, page_size=PAGE + 1) is None  # another page size
    assert quick_start.read(tmp_path, url, ("email", "ada@acme.test"), page_size=PAGE) is None
    with db.write() as session:  # bob becomes an admin: the page was compiled for an agent
        session.query(User).filter_by(email="bob@acme.test").update({"role": "admin"})
    assert not usable()
    with db.write() as session:
        session.query(User).filter_by(email="bob@acme.test").update({"role": "agent"})
    assert usable()
    with db.write() as session:  # another schema revision
        session.execute(text("UPDATE alembic_version SET version_num = 'elsewhere'"))
    assert not usable()


def test_changed_code_is_not_trusted(
    db: Database, quick_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db)
    normal_start(quick_settings, tmp_path, "bob@acme.test")
    _stale_code(monkeypatch)
    data = HelpdeskData(quick_settings, "bob@acme.test", start_cache=tmp_path)
    assert not data.quick_start()


@pytest.mark.both_backends  # live refresh differs: PostgreSQL's LISTEN/NOTIFY
async def test_a_start_with_the_cache_shows_the_same_inbox_then_connects(
    db: Database, quick_settings: Settings, tmp_path: Path
) -> None:
    """The first start writes the cache; the next draws the same rows from it, then connects
    (the worker starts, live refresh works) and reads everything again."""
    ids = seed(db)
    with db.write() as session:  # text from mail is made safe on this path too
        add_conversation(session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                         queue_id=ids.queues["Support"], subject="Pay \x1b[31mnow\u202e",
                         sender="evil@customer.test", at=NOW)  # fmt: skip
    first = build(quick_settings, "bob@acme.test", start_cache=tmp_path)
    async with first.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(first) and any(tmp_path.glob("start-*.json")))
        normal = list_lines(first)
    assert not first.data.started_from_cache

    second = build(quick_settings, "bob@acme.test", start_cache=tmp_path)
    drawn: list[tuple[bool, list[str]]] = []  # when the quick rows were drawn: connected, rows
    release = second.data.first_rows_drawn

    def first_rows_drawn() -> None:
        drawn.append((second.data.connected, list_lines(second)))
        release()

    second.data.first_rows_drawn = first_rows_drawn  # type: ignore[method-assign]
    async with second.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(drawn))
        assert drawn == [(False, normal)]  # drawn before the database layer was opened
        assert "Pay" in normal[1] and "\x1b" not in normal[1] and "\u202e" not in normal[1]
        await wait_for(pilot, lambda: loaded(second))
        assert list_lines(second) == normal
        await wait_for(pilot, lambda: second.data.connected)
        with db.write() as session:
            add_conversation(session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                             queue_id=ids.queues["Support"], subject="Arrived after the start",
                             sender="new@customer.test", at=NOW)  # fmt: skip
            changes.notify(session)
        await wait_for(pilot, lambda: "Arrived after the start" in "\n".join(list_lines(second)))
    assert second.data.started_from_cache


async def test_a_user_deactivated_since_the_cache_is_refused(
    db: Database, quick_settings: Settings, tmp_path: Path
) -> None:
    """The cache does not let anyone in: the normal start refuses, with the CLI's exit code."""
    seed(db)
    normal_start(quick_settings, tmp_path, "bob@acme.test")
    with db.write() as session:
        session.query(User).filter_by(email="bob@acme.test").update({"active": False})
    app = build(quick_settings, "bob@acme.test", start_cache=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 6
    assert app.refusal is not None and "inactive" in app.refusal.message
    assert not app.data.started_from_cache


def _stale_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another version of the code from now on (an upgrade installed)."""
    monkeypatch.setattr(start_cache, "code_state", lambda: "code after the upgrade")


@pytest.mark.both_backends
def test_an_upgrade_refreshes_every_cache_so_the_first_start_after_it_is_quick(
    db: Database, quick_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init`, `db upgrade` and the worker write again the caches an upgrade made stale: each
    user's first start after it reads the same rows as the services, from the cache."""
    seed(db)
    url = quick_settings.database.url
    for email in ("bob@acme.test", "dee@acme.test"):
        normal_start(quick_settings, tmp_path, email)
    _stale_code(monkeypatch)
    assert quick_start.read(tmp_path, url, ("email", "bob@acme.test"), page_size=PAGE) is None
    assert prepared.refresh(db, quick_settings, tmp_path) == 2
    assert prepared.refresh(db, quick_settings, tmp_path) == 0  # current now: left alone
    for email in ("bob@acme.test", "dee@acme.test"):
        found = quick_start.read(tmp_path, url, ("email", email), page_size=PAGE)
        assert found is not None
        assert (found.actor, found.timezone, found.rows, found.more) == services_view(
            db, email, ALL_OPEN
        )


def test_a_refresh_drops_the_cache_of_a_user_who_may_no_longer_start(
    db: Database, quick_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db)
    url, who = quick_settings.database.url, ("email", "bob@acme.test")
    normal_start(quick_settings, tmp_path, "bob@acme.test")
    with db.write() as session:
        session.query(User).filter_by(email="bob@acme.test").update({"active": False})
    _stale_code(monkeypatch)
    assert prepared.refresh(db, quick_settings, tmp_path) == 0
    assert not start_cache.cache_file(tmp_path, url, who).exists()


def test_a_refresh_writes_the_cache_of_whom_the_command_acts_as_and_no_other_database(
    db: Database, quick_settings: Settings, tmp_path: Path
) -> None:
    """`also`: the user `init --as` or `db upgrade` acts as gets a cache before any start;
    a cache of another database in the same folder is not touched."""
    seed(db)
    other = start_cache.cache_file(tmp_path, "sqlite:////elsewhere.db", ("email", "x@y.test"))
    tmp_path.mkdir(exist_ok=True)
    other.write_text('{"version": 1, "who": ["email", "x@y.test"], "code": "old"}')
    who = ("email", "cy@acme.test")
    assert prepared.refresh(db, quick_settings, tmp_path, also=[who, ("os_user", "nobody")]) == 1
    found = quick_start.read(tmp_path, quick_settings.database.url, who, page_size=PAGE)
    assert found is not None and found.actor.email == "cy@acme.test"
    assert other.read_text().endswith('"code": "old"}')
