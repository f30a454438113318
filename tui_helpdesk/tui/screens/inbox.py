"""The inbox: who is acting, where the worker listens, the conversation list and a preview."""

from __future__ import annotations

import shutil

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ConversationRecord, UserRecord
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.data import ListFilter
from tui_helpdesk.tui.format import when
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import (
    DataChanged,
    InboxLoaded,
    LoadFailed,
    PageLoaded,
    WorkerHintLoaded,
)
from tui_helpdesk.tui.widgets.conversation_list import ConversationList, sender_of
from tui_helpdesk.tui.widgets.safe_text import safe_text

AGE_REFRESH_SECONDS = 30


def identity_text(actor: UserRecord) -> Text:
    line = Text("Inbox", style="bold", end="")
    line.append("  acting as ")
    line.append_text(safe_text(f"{actor.name} <{actor.email}>", "bold", one_line=True))
    line.append(f" ({actor.role})", style="dim")
    return line


def worker_hint(address: tuple[str, int], recipient: str | None, *, have_swaks: bool) -> str:
    """The line telling how to send the embedded worker a test message."""
    host, port = address
    listening = f"Worker listening on {host}:{port}"
    if recipient is None:
        return f"{listening} — no active mailbox yet: create one to receive mail"
    if have_swaks:
        return f"{listening} — send a test: swaks --server {host}:{port} --to {recipient}"
    return (
        f'{listening} — send a test: python3 -c "import smtplib; '
        f"smtplib.SMTP('{host}', {port}).sendmail('you@example.test', ['{recipient}'], "
        f"'Subject: test\\n\\nHello')\""
    )


def preview_text(row: ConversationRecord | None) -> Text:
    if row is None:
        return Text("")
    sender = sender_of(row)
    if row.contact and row.contact_name:
        sender = f"{row.contact_name} <{row.contact}>"
    first = safe_text(row.subject or "(no subject)", "bold", one_line=True)
    details = [
        ("From", sender),
        ("Mailbox", row.mailbox or "none"),
        ("Queue", row.queue or "none"),
        ("Assignee", row.assignee or "nobody"),
    ]
    second = Text("  ", end="").join(_pair(label, value) for label, value in details)
    third = Text(
        f"{row.status} · {row.priority} priority · {row.message_count} message"
        f"{'' if row.message_count == 1 else 's'} · last {when(row.last_message_at)}",
        style="dim",
        end="",
    )
    if row.tags:
        third.append("  tags: ", style="dim")
        third.append_text(safe_text(", ".join(row.tags), one_line=True))
    return Text("\n", end="").join([first, second, third])


def _pair(label: str, value: str) -> Text:
    pair = Text(f"{label}: ", style="dim", end="")
    pair.append_text(safe_text(value, one_line=True))
    return pair


class InboxScreen(Screen[None]):
    """Every open conversation the acting user may see, newest first."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="inbox.refresh", tooltip="Read the list again"),
    ]

    def __init__(self, list_filter: ListFilter | None = None) -> None:
        super().__init__(id="inbox")
        self.list_filter = list_filter or ListFilter()
        self._generation = 0
        self._cursor_at_reload = 0

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(identity_text(self.helpdesk.data.actor), id="identity")
        if self.helpdesk.worker_address is not None:
            yield Static("", id="worker-hint")
        yield ConversationList(
            page_size=self.helpdesk.data.page_size, now=self.helpdesk.now, id="conversations"
        )
        yield Static("", id="preview")
        yield Static("Loading…", id="status-line")
        yield Footer()

    @property
    def conversation_list(self) -> ConversationList:
        return self.query_one(ConversationList)

    def on_mount(self) -> None:
        self.conversation_list.focus()
        self.reload()
        if self.helpdesk.worker_address is not None:
            self._load_worker_hint()
        self.set_interval(AGE_REFRESH_SECONDS, self.conversation_list.refresh_ages)

    def commands(self) -> list[PaletteCommand]:
        listed = self.conversation_list
        return [
            PaletteCommand("conversation: open", "Read the highlighted conversation",
                           listed.action_open),
            PaletteCommand("inbox: refresh", "Read the list again", self.action_refresh),
            PaletteCommand("inbox: newest", "Go to the newest conversation", listed.action_first),
            PaletteCommand("inbox: oldest", "Go to the oldest conversation", listed.action_last),
        ]  # fmt: skip

    # -- loading -------------------------------------------------------------------------

    def reload(self) -> None:
        """Count and re-read the visible pages; the cursor stays on its conversation."""
        self._generation += 1
        listed = self.conversation_list
        self._cursor_at_reload = listed.cursor
        cursor = listed.cursor_row
        self._reload_worker(
            self._generation,
            cursor.id if cursor else None,
            listed.first_visible_row,
            listed.visible_rows,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="inbox-reload")
    def _reload_worker(
        self, generation: int, cursor_id: int | None, first_row: int, rows: int
    ) -> None:
        try:
            found = self.helpdesk.data.reload(
                self.list_filter, cursor_id=cursor_id, first_row=first_row, rows=rows
            )
        except HelpdeskError as error:
            self.post_message(LoadFailed(error.message))
            return
        self.post_message(
            InboxLoaded(generation, found.total, found.pages, cursor_id, found.cursor_index)
        )

    @work(thread=True, exit_on_error=False, group="inbox-page")
    def _page_worker(self, generation: int, offset: int) -> None:
        page = self.helpdesk.data.page(offset, self.list_filter)
        self.post_message(PageLoaded(generation, page))

    @work(thread=True, exit_on_error=False, group="inbox-hint")
    def _load_worker_hint(self) -> None:
        address = self.helpdesk.worker_address
        assert address is not None
        hint = worker_hint(
            address, self.helpdesk.data.test_recipient(), have_swaks=bool(shutil.which("swaks"))
        )
        self.post_message(WorkerHintLoaded(hint))

    # -- messages ------------------------------------------------------------------------

    def on_inbox_loaded(self, message: InboxLoaded) -> None:
        if message.generation != self._generation:
            return  # a newer reload is on its way
        listed = self.conversation_list
        index = message.cursor_index
        if listed.cursor != self._cursor_at_reload:
            # The cursor moved while the reload ran: follow the row it is on now, or keep its
            # place when that row was not read yet (a jump to the end, say).
            current = listed.cursor_row
            index = listed.cursor if current is None else message.index_of(current.id)
            if index is None:
                self.reload()
                return
        listed.show_reload(message.generation, message.total, message.pages, index)
        self._update_status()

    def on_worker_hint_loaded(self, message: WorkerHintLoaded) -> None:
        self.query_one("#worker-hint", Static).update(Text(message.text))

    def on_page_loaded(self, message: PageLoaded) -> None:
        self.conversation_list.add_page(message.generation, message.page)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.query_one("#status-line", Static).update(safe_text(message.text, "bold red"))

    def on_data_changed(self, _message: DataChanged) -> None:
        self.reload()

    @on(ConversationList.PageWanted)
    def _page_wanted(self, message: ConversationList.PageWanted) -> None:
        self._page_worker(message.generation, message.offset)

    @on(ConversationList.Highlighted)
    def _highlighted(self, message: ConversationList.Highlighted) -> None:
        self.query_one("#preview", Static).update(preview_text(message.row))
        self._update_status()

    @on(ConversationList.Opened)
    def _opened(self, message: ConversationList.Opened) -> None:
        self.helpdesk.open_conversation(message.conversation_id)

    def _update_status(self) -> None:
        listed = self.conversation_list
        status = self.list_filter.status or "all"
        noun = "conversation" if listed.total == 1 else "conversations"
        line = f"{listed.total:,} {status} {noun}"
        if listed.total:
            line += f" · row {listed.cursor + 1:,} of {listed.total:,}"
        line += f" · updated {self.helpdesk.now().strftime('%H:%M:%S')}"
        self.query_one("#status-line", Static).update(Text(line))

    def action_refresh(self) -> None:
        self.reload()
