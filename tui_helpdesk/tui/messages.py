"""Typed messages between workers, screens and widgets."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from tui_helpdesk.records import ConversationDetail, ConversationRecord


class DataChanged(Message, bubble=False):
    """Something was committed to the database; screens reload what they show.

    Bursts collapse: a queued DataChanged is replaced by the next one. It does not bubble: the
    app hands it to each screen, and a screen's copy must not come back to the app.
    """

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DataChanged)


class Connected(Message, bubble=False):
    """The database is open and the acting user known (`HelpdeskData.connect`): what the
    first frame was drawn without can be read now. The app hands it to each screen."""


@dataclass
class InboxPage:
    """Rows [offset, offset + len(rows)) of the list as of one reload generation."""

    offset: int
    rows: tuple[ConversationRecord, ...]
    snippets: dict[int, str] = field(default_factory=dict)  # search: conversation id -> excerpt
    more: bool = False  # search: rows follow this page (the list's count grows as they come)


class InboxLoaded(Message):
    """A full reload: the count, pages around the cursor and where the cursor's row went.

    cursor_index is the new place of cursor_id, the conversation under the cursor when the
    reload started (None if it left the list).
    """

    def __init__(
        self,
        generation: int,
        total: int,
        pages: list[InboxPage],
        cursor_id: int | None,
        cursor_index: int | None,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.total = total
        self.pages = pages
        self.cursor_id = cursor_id
        self.cursor_index = cursor_index

    def index_of(self, conversation_id: int) -> int | None:
        """Where a conversation is among the rows read, if they hold it."""
        for page in self.pages:
            for position, row in enumerate(page.rows):
                if row.id == conversation_id:
                    return page.offset + position
        return None


class InboxCounted(Message):
    """The count of a list shown before it was counted (InboxLoaded with a provisional total)."""

    def __init__(self, generation: int, total: int) -> None:
        super().__init__()
        self.generation = generation
        self.total = total


class PageLoaded(Message):
    """One page read on demand while scrolling."""

    def __init__(self, generation: int, page: InboxPage) -> None:
        super().__init__()
        self.generation = generation
        self.page = page


class ConversationLoaded(Message):
    def __init__(self, detail: ConversationDetail) -> None:
        super().__init__()
        self.detail = detail


class LoadFailed(Message):
    """A read failed with a message a person understands (e.g. the conversation is gone)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class WorkerHintLoaded(Message):
    """How to send the embedded worker a test message (needs a mailbox alias, read in a worker)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
