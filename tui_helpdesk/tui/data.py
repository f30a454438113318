"""The TUI's door to the services: short read sessions, records out, nothing ORM leaks.

Nothing of the database layer is imported with this module: SQLAlchemy, the models and the
services (~0.45 s of CPU) are imported by `connect`, in the first worker thread that reads,
after the inbox's first frame is drawn. Services only some screens use (search, threads,
mailboxes) are imported when first used. With a start-up cache (tui/quick_start.py), who acts
and the first rows are read before that, with the plain driver, and `connect` waits until
they are drawn; every read connects before it imports the services it calls, so no thread
(the sidebar's counts, say) imports the database layer while those rows are being drawn.

Every method runs in a worker thread (never on the event loop) and opens its own session,
so no session outlives a call or lives in a widget.

The list widget asks for rows by position; the services page by key. So this remembers the
keys of the rows at the edges of every page read since the last reload, and reads a page as
the one after (or before) a known key: one short index range, at any depth. Only a jump far
from every known key (a scroll bar dragged) walks index entries to find one, from the
nearest known key or end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tui_helpdesk.config import Settings
from tui_helpdesk.records import (
    ALL_OPEN,
    ConversationDetail,
    ConversationView,
    ListKey,
    SearchCursor,
    UserRecord,
    ViewCount,
)
from tui_helpdesk.tui.messages import InboxPage

if TYPE_CHECKING:
    from tui_helpdesk.services.changes import ChangeWatcher
    from tui_helpdesk.start_cache import Who
    from tui_helpdesk.tui.quick_start import QuickStart
    from tui_helpdesk.tui.start_ahead import Ahead

T = TypeVar("T")
log = logging.getLogger(__name__)
# How long `connect` waits for quick rows to be drawn before it imports the database layer
# anyway (the import holds the GIL: drawing beside it would take twice as long).
DRAW_WAIT_SECONDS = 1.0
# How long the quick start waits for the process writing a missing start-up cache (start_ahead):
# it does what the normal start would do here, so waiting for it costs nothing extra, unless
# it is stuck.
AHEAD_WAIT_SECONDS = 3.0


@dataclass(frozen=True)
class ListFilter:
    """Which conversations a list shows: a sidebar view, or the results of a search query."""

    view: ConversationView = ALL_OPEN
    query: str | None = None

    @property
    def label(self) -> str:
        return f"search: {self.query}" if self.query else (self.view.label or self.view.kind)


@dataclass(frozen=True)
class Reload:
    total: int
    pages: list[InboxPage]
    cursor_index: int | None
    counted: bool = True  # False: `total` is what was read (and one more if more follow)


class HelpdeskData:
    """The database, the acting user and the reads the screens need."""

    actor: UserRecord  # set by `connect`
    timezone: str  # the reader's (theirs, else the organisation's); set by `connect`

    def __init__(
        self,
        settings: Settings,
        actor_email: str | None,
        *,
        resolve: Callable[[], str] | None = None,
        start_cache: Path | None = None,
        who: Who | None = None,
        ahead: Ahead | None = None,
    ) -> None:
        """`actor_email`, or `resolve` to find it (the CLI's identity check: --as, the OS
        login or the SSH key) in the connecting thread, after the first frame.

        `start_cache` is the folder of the start-up cache (None: none is used or written);
        `who` says how `resolve` finds the actor, for the cache to find them the same way (by
        an --as email that is honoured, the OS login, the SSH key), None when it may not (an
        --as that `resolve` will refuse). `ahead` is the process writing that cache, when
        there was none (tui/start_ahead.py): the quick start waits for it."""
        self.settings = settings
        self.actor_email = actor_email or ""
        self._resolve = resolve
        self._start_cache = start_cache
        self._who = who or (("email", actor_email) if actor_email else None)
        self._ahead = ahead
        self._quick: QuickStart | None = None  # read by quick_start, until a reload shows it
        self.started_from_cache = False  # quick_start drew the first rows
        self._drawn = threading.Event()  # `connect` waits for quick rows to be drawn
        self._drawn.set()
        self.page_size = max(10, settings.tui.page_size)
        self._db: Any = None  # the Database, once connected
        self._connect_lock = threading.Lock()
        self._keys: dict[int, ListKey] = {}  # row index -> key, as of the last reload
        self._total_rows: int | None = None  # the count of the last reload
        self._keys_lock = threading.Lock()
        self._search_cursors: dict[int, SearchCursor] = {}  # row index -> the page from there
        self._serial = 0  # reloads so far: a count belongs to the reload it followed
        self._watcher: ChangeWatcher | None = None

    @property
    def connected(self) -> bool:
        return self._db is not None

    def connect(self) -> UserRecord:
        """Open the database and resolve the acting user, once; every read calls it first, so
        whichever worker thread reads first connects and the others wait for it.

        Raises NotFound / PermissionDenied (services.users.resolve_actor): the app then exits
        with the message."""
        self._drawn.wait(DRAW_WAIT_SECONDS)
        with self._connect_lock:
            if self._db is None:
                self._open()
        return self.actor

    def quick_start(self) -> bool:
        """Who acts and the first page of the default view, from the start-up cache with the
        plain driver, before `connect`; False when the cache cannot tell (the start then goes
        the normal way). True: `actor` and `timezone` are set, the next reload of the default
        view shows the page, and `connect` waits until `first_rows_drawn` (or a second)."""
        if self._start_cache is None or self._who is None or self.connected:
            return False
        from tui_helpdesk.tui import quick_start

        if self._ahead is not None:  # the driver is imported while the cache is being written
            quick_start.import_driver(self.settings.database.url)
            self._ahead.wait(AHEAD_WAIT_SECONDS)
            self._ahead = None

        found = quick_start.read(
            self._start_cache, self.settings.database.url, self._who, page_size=self.page_size
        )
        if found is None or found.view != ALL_OPEN.kind:
            return False
        self.actor, self.timezone, self._quick = found.actor, found.timezone, found
        self.started_from_cache = True
        self._drawn.clear()
        return True

    @property
    def writing_ahead(self) -> bool:
        """A process writes the start-up cache this start will read (tui/start_ahead.py)."""
        return self._ahead is not None

    def first_rows_drawn(self) -> None:
        """The quick rows are on screen: `connect` may import the database layer now."""
        self._drawn.set()

    def remember_start(self) -> None:
        """Write the start-up cache for the next start (after a normal one: a start that used
        the cache would write what it read). Never fails the app: the cache is an extra."""
        if self._start_cache is None or self._who is None or self.started_from_cache:
            return
        try:
            self._remember_start(self._start_cache, self._who)
        except Exception as error:
            log.info("start-up cache not written: %s", error)

    def _remember_start(self, directory: Path, who: Who) -> None:
        from tui_helpdesk.services import prepared

        prepared.write(self._database(), self.settings, directory, who, self.actor)

    def _open(self) -> None:
        from tui_helpdesk.services import users
        from tui_helpdesk.services.changes import ChangeWatcher
        from tui_helpdesk.services.session import open_database

        if self._resolve is not None:
            self.actor_email = self._resolve()
            self._resolve = None
        db = open_database(self.settings)
        try:
            with db.read() as session:
                self.actor = users.resolve_actor(session, email=self.actor_email, os_user=None)
                self.timezone = users.timezone_of(session, self.actor)
            # Watching starts before any screen reads, so its first poll reports only what
            # was committed after these reads began (no reload "just in case" at start-up).
            self._watcher = ChangeWatcher(db)
        except Exception:
            db.dispose()
            raise
        self._db = db

    def _database(self) -> Any:
        self.connect()
        return self._db

    def page(self, offset: int, list_filter: ListFilter) -> InboxPage:
        if list_filter.query:
            return self._search_page(list_filter.query, offset)
        with self._keys_lock:
            keys, total = dict(self._keys), self._total_rows
        with self._database().read() as session:
            if total is None:
                total = self._total(session, list_filter.view)
            page = self._read_page(session, list_filter.view, offset, keys, total)
        with self._keys_lock:
            self._keys.update(_edges(page))
        return page

    def _total(self, session, view: ConversationView) -> int:
        from tui_helpdesk.services.conversations import views

        return views.count(session, self.actor, view, cap=None).count

    def reload(
        self, list_filter: ListFilter, *, cursor_id: int | None, first_row: int, rows: int
    ) -> Reload:
        """Count, find the cursor's conversation, and read the pages that will be on screen."""
        if list_filter.query:
            return self._search_reload(list_filter.query, cursor_id)
        view = list_filter.view
        if cursor_id is None and first_row == 0:
            return self._top_without_count(view, rows)
        db = self._database()
        from tui_helpdesk.services.conversations import listing

        with db.read() as session:
            total = self._total(session, view)
            keys: dict[int, ListKey] = {}
            cursor_index = None
            cursor_key = listing.key_of(session, self.actor, view, cursor_id) if cursor_id else None
            if cursor_key is not None:
                cursor_index = listing.position(session, self.actor, view, cursor_key)
                keys[cursor_index] = cursor_key
            if cursor_index is not None and not first_row <= cursor_index < first_row + rows:
                first_row = cursor_index - rows // 2
            first_row = max(0, min(first_row, total - rows))  # the list may have shrunk
            pages = []
            for offset in self._page_offsets(first_row, rows, total):
                page = self._read_page(session, view, offset, keys, total)
                keys.update(_edges(page))
                pages.append(page)
        with self._keys_lock:
            self._keys, self._total_rows = keys, total
            self._serial += 1
        return Reload(total=total, pages=pages, cursor_index=cursor_index)

    def _top_without_count(self, view: ConversationView, rows: int) -> Reload:
        """The first rows of a list shown before it is counted (a start, another view): the
        count (~70 ms on 100k rows) follows with `count`, the screen does not wait for it."""
        quick = self._quick_page(view, rows)
        if quick is not None:
            return quick
        keys: dict[int, ListKey] = {}
        pages: list[InboxPage] = []
        with self._database().read() as session:
            for offset in range(0, max(rows, 1), self.page_size):
                page = self._read_page(session, view, offset, keys, None)
                keys.update(_edges(page))
                pages.append(page)
                if len(page.rows) < self.page_size:
                    break
        with self._keys_lock:
            self._keys, self._total_rows = keys, None
            self._serial += 1
        read = sum(len(page.rows) for page in pages)
        more = bool(pages) and len(pages[-1].rows) == self.page_size
        return Reload(total=read + more, pages=pages, cursor_index=None, counted=False)

    def _quick_page(self, view: ConversationView, rows: int) -> Reload | None:
        """The page quick_start read, once, when it is what the reload asks for (the top of
        the default view, and no more rows than a page)."""
        quick, self._quick = self._quick, None
        if quick is None:
            return None
        if self.connected or view != ALL_OPEN or (rows > self.page_size and quick.more):
            self._drawn.set()  # not shown: nothing to wait for
            return None
        page = InboxPage(offset=0, rows=quick.rows)
        with self._keys_lock:
            self._keys, self._total_rows = _edges(page), None
            self._serial += 1
        return Reload(total=len(quick.rows) + quick.more, pages=[page], cursor_index=None,
                      counted=False)  # fmt: skip

    def count(self, list_filter: ListFilter) -> int:
        """How many rows the list holds now (after a reload that did not count)."""
        with self._keys_lock:
            serial = self._serial
        with self._database().read() as session:
            total = self._total(session, list_filter.view)
        with self._keys_lock:
            if serial == self._serial and self._total_rows is None:
                self._total_rows = total
        return total

    def _read_page(
        self,
        session,
        view: ConversationView,
        offset: int,
        keys: dict[int, ListKey],
        total: int | None,
    ) -> InboxPage:
        """Rows [offset, offset + page_size): after the key of row offset - 1."""
        from tui_helpdesk.services.conversations import listing

        size, actor = self.page_size, self.actor
        if offset == 0:
            found = listing.first_page(session, actor, view, limit=size)
        elif total is not None and offset + size >= total and offset - 1 not in keys:
            found = listing.last_page(session, actor, view, limit=max(1, total - offset))
        else:
            key = keys.get(offset - 1) or self._find_key(session, view, offset - 1, keys, total)
            if key is None:
                return InboxPage(offset=offset, rows=())
            # Only the rows: the list knows there are rows above them (one query, not two).
            found = listing.page_after(session, actor, view, key, limit=size, probe_newer=False)
        return InboxPage(offset=offset, rows=found.rows)

    def _find_key(
        self,
        session,
        view: ConversationView,
        index: int,
        keys: dict[int, ListKey],
        total: int | None,
    ) -> ListKey | None:
        """The key of row `index`, walked to from the nearest known key (or end of the list)."""
        from tui_helpdesk.services.conversations import listing

        places: list[tuple[int, dict[str, object]]] = [(index, {})]  # from the newest row
        if total is not None:
            places.append((total - 1 - index, {"from_end": True}))
        for known, key in keys.items():
            if known < index:
                places.append((index - known - 1, {"after": key}))
            elif known > index:
                places.append((known - index - 1, {"before": key}))
        skip, where = min(places, key=lambda place: place[0])
        return listing.key_at(session, self.actor, view, skip=skip, **where)

    def _page_offsets(self, first_row: int, rows: int, total: int) -> list[int]:
        last_row = min(total, first_row + max(rows, 1)) - 1
        if last_row < 0:
            return [0]
        first_page = max(0, first_row) // self.page_size
        return [n * self.page_size for n in range(first_page, last_row // self.page_size + 1)]

    # -- search results: pages follow one another by cursor, the count grows as they come --

    def _search_reload(self, query: str, cursor_id: int | None) -> Reload:
        db = self._database()
        from tui_helpdesk.services.search.results import search

        with db.read() as session:
            found = search(session, self.actor, query, limit=self.page_size)
        rows = tuple(hit.conversation for hit in found.hits)
        snippets = {hit.conversation.id: hit.snippet for hit in found.hits if hit.snippet}
        with self._keys_lock:
            self._search_cursors = {len(rows): found.next} if found.next else {}
        more = found.next is not None
        page = InboxPage(offset=0, rows=rows, snippets=snippets, more=more)
        index = next((n for n, row in enumerate(rows) if row.id == cursor_id), None)
        return Reload(total=len(rows) + (1 if more else 0), pages=[page], cursor_index=index)

    def _search_page(self, query: str, offset: int) -> InboxPage:
        with self._keys_lock:
            after = self._search_cursors.get(offset)
        if after is None:
            return InboxPage(offset=offset, rows=())
        db = self._database()
        from tui_helpdesk.services.search.results import search

        with db.read() as session:
            found = search(session, self.actor, query, limit=self.page_size, after=after)
        rows = tuple(hit.conversation for hit in found.hits)
        if found.next is not None:
            with self._keys_lock:
                self._search_cursors[offset + len(rows)] = found.next
        snippets = {hit.conversation.id: hit.snippet for hit in found.hits if hit.snippet}
        return InboxPage(offset, rows, snippets=snippets, more=found.next is not None)

    def sidebar(self) -> list[ViewCount]:
        """The sidebar's views with their (capped) counts."""
        db = self._database()
        from tui_helpdesk.services.conversations import views

        with db.read() as session:
            return views.sidebar(session, self.actor)

    def conversation(self, conversation_id: int) -> ConversationDetail:
        db = self._database()
        from tui_helpdesk.services.conversations import thread

        with db.read() as session:
            return thread.get_conversation(session, self.actor, conversation_id)

    def test_recipient(self) -> str | None:
        """The alias of the first mailbox that receives (active or pending verification):
        where a test message can be sent."""
        db = self._database()
        from tui_helpdesk.services import mailboxes

        with db.read() as session:
            found = mailboxes.list_mailboxes(session, self.actor)
        receiving = [m for m in found if m.status in ("active", "pending")]
        return receiving[0].alias if receiving else None

    def read(self, work: Callable[[Any, UserRecord], T]) -> T:
        """Run `work(session, actor)` in one short read transaction; call from a worker thread.

        `work` gets a SQLAlchemy Session (typed Any: the TUI never imports the database layer),
        calls services and returns records (never ORM objects): screens that need a
        read of their own use this instead of a method here."""
        with self._database().read() as session:
            return work(session, self.actor)

    def write(self, work: Callable[[Any, UserRecord], T]) -> T:
        """Run `work(session, actor)` in one unit of work that commits on success; the service
        it calls checks permissions, audits and notifies. Call from a worker thread."""
        with self._database().write() as session:
            return work(session, self.actor)

    def watcher(self) -> ChangeWatcher:
        """The watcher made at start (once), then new ones (after a close)."""
        db = self._database()
        from tui_helpdesk.services.changes import ChangeWatcher

        made, self._watcher = self._watcher, None
        return made if made is not None else ChangeWatcher(db)

    def close(self) -> None:
        with self._connect_lock:  # a connect under way finishes first (and is disposed of)
            self._close()

    def _close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._db is not None:
            self._db.dispose()


def _edges(page: InboxPage) -> dict[int, ListKey]:
    """The keys of a page's first and last rows, by row index."""
    if not page.rows:
        return {}
    return {page.offset: page.rows[0].key, page.offset + len(page.rows) - 1: page.rows[-1].key}
