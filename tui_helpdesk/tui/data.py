"""The TUI's door to the services: short read sessions, records out, nothing ORM leaks.

Every method runs in a worker thread (never on the event loop) and opens its own session,
so no session outlives a call or lives in a widget.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_helpdesk.config import Settings
from tui_helpdesk.records import ConversationDetail, UserRecord
from tui_helpdesk.services import conversations, mailboxes, users
from tui_helpdesk.services.changes import ChangeWatcher
from tui_helpdesk.services.session import open_database
from tui_helpdesk.tui.messages import InboxPage


@dataclass(frozen=True)
class ListFilter:
    """Which conversations a list shows (the inbox: every open one the actor may see)."""

    status: str | None = "open"
    queue: str | None = None
    mailbox: str | None = None

    def as_kwargs(self) -> dict[str, str | None]:
        return {"status": self.status, "queue": self.queue, "mailbox": self.mailbox}


@dataclass(frozen=True)
class Reload:
    total: int
    pages: list[InboxPage]
    cursor_index: int | None


class HelpdeskData:
    """The database, the acting user and the reads the screens need."""

    def __init__(self, settings: Settings, actor_email: str) -> None:
        self.settings = settings
        self.page_size = max(10, settings.tui.page_size)
        self._db = open_database(settings)
        try:
            with self._db.read() as session:
                self.actor: UserRecord = users.resolve_actor(
                    session, email=actor_email, os_user=None
                )
        except Exception:
            self._db.dispose()
            raise

    def page(self, offset: int, list_filter: ListFilter) -> InboxPage:
        with self._db.read() as session:
            rows = conversations.list_conversations(
                session, self.actor, limit=self.page_size, offset=offset, **list_filter.as_kwargs()
            )
        return InboxPage(offset=offset, rows=tuple(rows))

    def reload(
        self, list_filter: ListFilter, *, cursor_id: int | None, first_row: int, rows: int
    ) -> Reload:
        """Count, find the cursor's conversation, and read the pages that will be on screen."""
        kwargs = list_filter.as_kwargs()
        with self._db.read() as session:
            total = conversations.count_conversations(session, self.actor, **kwargs)
            cursor_index = None
            if cursor_id is not None:
                cursor_index = conversations.find_position(session, self.actor, cursor_id, **kwargs)
            if cursor_index is not None and not first_row <= cursor_index < first_row + rows:
                first_row = cursor_index - rows // 2
            first_row = max(0, min(first_row, total - rows))  # the list may have shrunk
            pages = []
            for offset in self._page_offsets(first_row, rows, total):
                found = conversations.list_conversations(
                    session, self.actor, limit=self.page_size, offset=offset, **kwargs
                )
                pages.append(InboxPage(offset=offset, rows=tuple(found)))
        return Reload(total=total, pages=pages, cursor_index=cursor_index)

    def _page_offsets(self, first_row: int, rows: int, total: int) -> list[int]:
        last_row = min(total, first_row + max(rows, 1)) - 1
        if last_row < 0:
            return [0]
        first_page = max(0, first_row) // self.page_size
        return [n * self.page_size for n in range(first_page, last_row // self.page_size + 1)]

    def conversation(self, conversation_id: int) -> ConversationDetail:
        with self._db.read() as session:
            return conversations.get_conversation(session, self.actor, conversation_id)

    def test_recipient(self) -> str | None:
        """The alias of the first active mailbox: where a test message can be sent."""
        with self._db.read() as session:
            found = mailboxes.list_mailboxes(session, self.actor, status="active")
        return found[0].alias if found else None

    def watcher(self) -> ChangeWatcher:
        return ChangeWatcher(self._db)

    def close(self) -> None:
        self._db.dispose()
