"""The inbox: who is acting, where the worker listens, the conversation list and a preview."""

from __future__ import annotations

import shutil
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ActionResult, ConversationRecord, UserRecord
from tui_helpdesk.tui.actions import ConversationActions, action_bindings
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.data import ListFilter
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import (
    Connected,
    DataChanged,
    InboxCounted,
    InboxLoaded,
    LoadFailed,
    PageLoaded,
    WorkerHintLoaded,
)
from tui_helpdesk.tui.widgets.conversation_list import ConversationList, sender_of
from tui_helpdesk.tui.widgets.footer import KeyBar
from tui_helpdesk.tui.widgets.safe_text import safe_text
from tui_helpdesk.tui.widgets.sidebar import ViewSidebar

AGE_REFRESH_SECONDS = 30


def identity_text(actor: UserRecord | None, email: str = "") -> Text:
    """Who is acting; before the database is open (the first frame) only their address."""
    line = Text("Inbox", style="bold", end="")
    if actor is None and not email:
        line.append("  connecting…", style="dim")
        return line
    line.append("  acting as ")
    if actor is None:
        line.append_text(safe_text(email, "bold", one_line=True))
        return line
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


def local_time(value: datetime | None, timezone: str) -> str:
    """An absolute time in the reader's timezone (theirs, else the organisation's)."""
    if value is None:
        return "unknown"
    return value.astimezone(_zone(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def preview_text(
    row: ConversationRecord | None,
    timezone: str = "UTC",
    snippet: str | None = None,
    position: str = "",
) -> Text:
    if row is None:
        return Text("")
    sender = sender_of(row)
    if row.contact and row.contact_name:
        sender = f"{row.contact_name} <{row.contact}>"
    first = Text(f"{position}  " if position else "", style="dim", end="")
    first.append_text(safe_text(row.subject or "(no subject)", "bold", one_line=True))
    details = [
        ("From", sender),
        ("Mailbox", row.mailbox or "none"),
        ("Queue", row.queue or "none"),
        ("Assignee", row.assignee or "nobody"),
    ]
    second = Text("  ", end="").join(_pair(label, value) for label, value in details)
    last = local_time(row.last_message_at, timezone)
    third = Text(
        f"{row.status} · {row.priority} priority · {row.message_count} message"
        f"{'' if row.message_count == 1 else 's'} · last {last}{' · unread' if row.unread else ''}",
        style="dim",
        end="",
    )
    if row.tags:
        third.append("  tags: ", style="dim")
        third.append_text(safe_text(", ".join(row.tags), one_line=True))
    lines = [first, second, third]
    if snippet:
        match = Text("match: ", style="dim", end="")
        match.append_text(safe_text(snippet, "italic", one_line=True))
        lines.append(match)
    preview = Text("\n", end="").join(lines)
    preview.no_wrap, preview.overflow = True, "ellipsis"  # one line each, at any width
    return preview


def _pair(label: str, value: str) -> Text:
    pair = Text(f"{label}: ", style="dim", end="")
    pair.append_text(safe_text(value, one_line=True))
    return pair


class InboxScreen(Screen[None]):
    """The sidebar's views and the conversations of the chosen one (or of a search), newest
    first, with a preview of the highlighted row."""

    BINDINGS = [
        *action_bindings("inbox"),
        Binding("slash", "search", "Search", key_display="/", id="inbox.search",
                tooltip="Search conversations (words, from:, status:, tag:, …)"),
        Binding("v", "views", "Views", id="inbox.views",
                tooltip="Go to the sidebar of views, queues and mailboxes"),
        Binding("escape", "back", "Back", show=False, id="inbox.back",
                tooltip="Clear the marks, or leave the search results"),
        Binding("r", "refresh", "Refresh", show=False, id="inbox.refresh",
                tooltip="Read the list again"),
    ]  # fmt: skip

    NARROW = 100  # below this many columns the sidebar collapses (v brings it back)

    def __init__(self, list_filter: ListFilter | None = None) -> None:
        super().__init__(id="inbox")
        self.list_filter = list_filter or ListFilter()
        self._generation = 0
        self._cursor_at_reload = 0
        self.actions = ConversationActions(self, self._chosen_ids, done=self._acted)

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        data = self.helpdesk.data
        actor = data.actor if data.connected else None
        yield Static(identity_text(actor, data.actor_email), id="identity")
        if self.helpdesk.worker_expected:
            yield Static("", id="worker-hint")
        with Horizontal(id="inbox-body"):
            yield ViewSidebar(id="sidebar")
            with Vertical(id="inbox-main"):
                yield Input(placeholder="search: words, \"a phrase\", from:, status:, tag:, "
                            "-word … (enter searches, escape leaves)", id="search")  # fmt: skip
                yield Static("", id="search-error")
                yield ConversationList(
                    page_size=self.helpdesk.data.page_size, now=self.helpdesk.now,
                    id="conversations",
                )  # fmt: skip
                yield Static("", id="preview")
        yield Static("Loading…", id="status-line")
        yield KeyBar()

    @property
    def conversation_list(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def sidebar(self) -> ViewSidebar:
        return self.query_one(ViewSidebar)

    def on_mount(self) -> None:
        self.conversation_list.focus()
        if self.helpdesk.data.connected:
            self.reload()
        # else the first frame is drawn without rows: the app connects, then says Connected
        self.set_interval(AGE_REFRESH_SECONDS, self.conversation_list.refresh_ages)

    def on_connected(self, _message: Connected) -> None:
        self.query_one("#identity", Static).update(identity_text(self.helpdesk.data.actor))
        self.reload()

    def on_resize(self) -> None:
        self.set_class(self.size.width < self.NARROW, "-narrow")

    def commands(self) -> list[PaletteCommand]:
        listed = self.conversation_list
        return [
            PaletteCommand("conversation: open", "Read the highlighted conversation",
                           listed.action_open),
            *self.actions.commands(),
            PaletteCommand("conversation: mark", "Mark or unmark the highlighted row",
                           listed.action_mark),
            PaletteCommand("inbox: search", "Search conversations", self.action_search),
            PaletteCommand("inbox: views", "Go to the sidebar of views", self.action_views),
            PaletteCommand("inbox: clear marks or search", "Clear the marks, or leave the "
                           "search results", self.action_back),
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
            self.list_filter,
            cursor.id if cursor else None,
            listed.first_visible_row,
            listed.visible_rows,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="inbox-reload")
    def _reload_worker(
        self, generation: int, list_filter: ListFilter, cursor_id: int | None, first_row: int,
        rows: int,
    ) -> None:  # fmt: skip
        try:
            found = self.helpdesk.data.reload(
                list_filter, cursor_id=cursor_id, first_row=first_row, rows=rows
            )
        except HelpdeskError as error:
            self.post_message(LoadFailed(error.message))
            return
        self.post_message(
            InboxLoaded(generation, found.total, found.pages, cursor_id, found.cursor_index)
        )
        if not found.counted:
            self.post_message(InboxCounted(generation, self.helpdesk.data.count(list_filter)))

    @work(thread=True, exit_on_error=False, group="inbox-page")
    def _page_worker(self, generation: int, offset: int) -> None:
        page = self.helpdesk.data.page(offset, self.list_filter)
        self.post_message(PageLoaded(generation, page))

    @work(thread=True, exclusive=True, exit_on_error=False, group="inbox-sidebar")
    def _load_sidebar(self) -> None:
        counts = self.helpdesk.data.sidebar()
        self.app.call_from_thread(self.sidebar.show_counts, counts, self.list_filter.view)

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
        first = not listed.loaded and not self.sidebar.views
        listed.show_reload(message.generation, message.total, message.pages, index)
        if first:
            # What the first frame does not need waits for it: counts, the worker line.
            self._load_sidebar()
            if self.helpdesk.worker_address is not None:
                self._load_worker_hint()
        self.failure = None
        self.query_one("#search-error").remove_class("-shown")
        self._update_status()

    def on_inbox_counted(self, message: InboxCounted) -> None:
        if message.generation == self._generation:
            self.conversation_list.set_total(message.total)
            self._update_status()

    def worker_started(self) -> None:
        """The embedded worker listens now (it starts after the first frame)."""
        if self.conversation_list.loaded:
            self._load_worker_hint()

    def on_worker_hint_loaded(self, message: WorkerHintLoaded) -> None:
        self.query_one("#worker-hint", Static).update(Text(message.text))

    def on_page_loaded(self, message: PageLoaded) -> None:
        self.conversation_list.add_page(message.generation, message.page)
        if self.list_filter.query is not None:
            self._update_status()  # a search's count grows as its pages come; a view's not

    failure: str | None = None

    def on_load_failed(self, message: LoadFailed) -> None:
        self.failure = message.text
        self.query_one("#status-line", Static).update(safe_text(message.text, "bold red"))
        if self.list_filter.query is not None:
            # A bad query: say what is wrong and let the user fix it where they typed it.
            search = self.query_one("#search", Input)
            search.add_class("-shown")
            search.focus()
            error = self.query_one("#search-error", Static)
            error.update(safe_text(message.text, "bold red"))
            error.add_class("-shown")

    def on_data_changed(self, _message: DataChanged) -> None:
        self.reload()
        self._load_sidebar()

    @on(ConversationList.PageWanted)
    def _page_wanted(self, message: ConversationList.PageWanted) -> None:
        self._page_worker(message.generation, message.offset)

    @on(ConversationList.Highlighted)
    def _highlighted(self, message: ConversationList.Highlighted) -> None:
        row = message.row
        snippet = self.conversation_list.snippets.get(row.id) if row is not None else None
        position = f"row {message.index + 1:,} of {message.total:,}"
        preview = preview_text(row, self.helpdesk.data.timezone, snippet, position)
        # A fixed-height pane: no layout pass on every cursor move. The status line (the full
        # width) is not touched: a cursor move redraws the list and the preview, no more.
        self.query_one("#preview", Static).update(preview, layout=False)

    @on(ConversationList.MarksChanged)
    def _marks_changed(self) -> None:
        self._update_status()

    @on(ConversationList.Opened)
    def _opened(self, message: ConversationList.Opened) -> None:
        self.helpdesk.open_conversation(message.conversation_id)

    @on(ViewSidebar.ViewChosen)
    def _view_chosen(self, message: ViewSidebar.ViewChosen) -> None:
        self.show(ListFilter(view=message.view))
        self.remove_class("-sidebar-open")
        self.conversation_list.focus()

    @on(ViewSidebar.Left)
    def _sidebar_left(self) -> None:
        self.remove_class("-sidebar-open")
        self.conversation_list.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query:
            self._leave_search()
            return
        self.show(ListFilter(view=self.list_filter.view, query=query))
        self.conversation_list.focus()

    def show(self, list_filter: ListFilter) -> None:
        """Show another view or search: the cursor starts at the top, the marks go."""
        self.list_filter = list_filter
        listed = self.conversation_list
        listed.clear_marks()
        listed.loaded = False
        listed.cursor = 0
        listed.scroll_to(y=0, animate=False, immediate=True)
        self.sidebar.choose(list_filter.view)
        self.query_one("#status-line", Static).update(Text("Loading…"))
        self.reload()

    def _leave_search(self) -> None:
        self.failure = None
        self.query_one("#search-error").remove_class("-shown")
        search = self.query_one("#search", Input)
        search.remove_class("-shown")
        search.value = ""
        if self.list_filter.query is not None:
            self.show(ListFilter(view=self.list_filter.view))
        self.conversation_list.focus()

    def _update_status(self) -> None:
        if self.failure is not None:
            return
        listed = self.conversation_list
        what = self.list_filter.label
        if self.list_filter.query:
            more = listed.row_at(listed.total - 1) is None and listed.total > 0
            shown = listed.total - 1 if more else listed.total
            line = f"{what} · {shown:,}{'+' if more else ''} found"
        else:
            noun = "conversation" if listed.total == 1 else "conversations"
            line = f"{what} · {listed.total:,} {noun}"
        if listed.marked:
            line += f" · {len(listed.marked)} marked"
        updated = self.helpdesk.now().astimezone(_zone(self.helpdesk.data.timezone))
        line += f" · updated {updated.strftime('%H:%M:%S')}"
        self.query_one("#status-line", Static).update(Text(line), layout=False)

    # -- actions -------------------------------------------------------------------------

    def _chosen_ids(self) -> list[int]:
        return self.conversation_list.chosen_ids

    def _acted(self, results: list[ActionResult]) -> None:
        """Marks of the conversations acted on go; refused ones stay marked."""
        listed = self.conversation_list
        went = {r.conversation_id for r in results if r.ok}
        if listed.marked & went:
            listed.marked -= went
            listed.refresh()
            self._update_status()

    def action_act(self, name: str) -> None:
        self.actions.run(name)

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.add_class("-shown")
        search.value = self.list_filter.query or ""
        search.focus()

    def action_views(self) -> None:
        self.add_class("-sidebar-open")
        self.sidebar.focus()

    def action_back(self) -> None:
        listed = self.conversation_list
        search = self.query_one("#search", Input)
        if search.has_focus or (self.list_filter.query is not None and not listed.marked):
            self._leave_search()
        elif listed.marked:
            listed.clear_marks()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and not self.conversation_list.chosen_ids:
            return None
        return True

    def action_refresh(self) -> None:
        self.reload()
        self._load_sidebar()


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
