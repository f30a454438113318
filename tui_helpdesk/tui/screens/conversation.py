"""One conversation: its thread, oldest message first. Escape goes back to the inbox."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ConversationDetail, ConversationRecord
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import ConversationLoaded, DataChanged, LoadFailed
from tui_helpdesk.tui.widgets.message_view import MessageView
from tui_helpdesk.tui.widgets.safe_text import safe_text


def title_text(conversation: ConversationRecord) -> Text:
    line = Text(f"#{conversation.id} ", style="dim", end="")
    line.append_text(safe_text(conversation.subject or "(no subject)", "bold", one_line=True))
    facts = [
        conversation.status,
        f"mailbox {conversation.mailbox or 'none'}",
        f"queue {conversation.queue or 'none'}",
        f"assignee {conversation.assignee or 'nobody'}",
    ]
    if conversation.tags:
        facts.append("tags " + ", ".join(conversation.tags))
    line.append("\n")
    line.append_text(safe_text(" · ".join(facts), "dim", one_line=True))
    return line


class Thread(VerticalScroll, can_focus=False):
    """The messages; scrolled by the screen's keys, so no focus is needed to read."""


class ConversationScreen(Screen[None]):
    """Shows the thread; reloads it when the database changes (a reply may have arrived)."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="conversation.back", tooltip="Back to the inbox"),
        Binding("r", "refresh", "Refresh", id="conversation.refresh",
                tooltip="Read the conversation again"),
        Binding("up", "scroll('up')", "Scroll up", show=False, id="conversation.scroll_up",
                tooltip="One line up"),
        Binding("down", "scroll('down')", "Scroll down", show=False,
                id="conversation.scroll_down", tooltip="One line down"),
        Binding("pageup", "scroll('page_up')", "Page up", show=False,
                id="conversation.page_up", tooltip="One screen up"),
        Binding("pagedown,space", "scroll('page_down')", "Page down", show=False,
                id="conversation.page_down", tooltip="One screen down"),
        Binding("home", "scroll('home')", "Top", show=False, id="conversation.top",
                tooltip="First message"),
        Binding("end", "scroll('end')", "Bottom", show=False, id="conversation.bottom",
                tooltip="Last message"),
    ]  # fmt: skip

    def __init__(self, conversation_id: int) -> None:
        super().__init__(id="conversation")
        self.conversation_id = conversation_id
        self.detail: ConversationDetail | None = None

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Conversation #{self.conversation_id}"), id="conversation-title")
        yield Thread(Static("Loading…", classes="loading"), id="thread")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("conversation: back", "Back to the inbox", self.action_back),
            PaletteCommand("conversation: refresh", "Read it again", self.action_refresh),
        ]

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversation-load")
    def load(self) -> None:
        try:
            detail = self.helpdesk.data.conversation(self.conversation_id)
        except HelpdeskError as error:
            self.post_message(LoadFailed(error.message))
            return
        self.post_message(ConversationLoaded(detail))

    async def on_conversation_loaded(self, message: ConversationLoaded) -> None:
        previous, self.detail = self.detail, message.detail
        self.query_one("#conversation-title", Static).update(
            title_text(message.detail.conversation)
        )
        if previous is not None and previous.messages == message.detail.messages:
            return
        thread = self.query_one(Thread)
        scroll_y = thread.scroll_y
        await thread.remove_children()
        await thread.mount_all(MessageView(m) for m in message.detail.messages)
        if previous is not None:
            thread.scroll_to(y=scroll_y, animate=False)

    async def on_load_failed(self, message: LoadFailed) -> None:
        thread = self.query_one(Thread)
        await thread.remove_children()
        await thread.mount(Static(safe_text(message.text, "bold red"), classes="error"))

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)

    def action_refresh(self) -> None:
        self.load()

    def action_scroll(self, where: str) -> None:
        thread = self.query_one(Thread)
        moves = {
            "up": thread.scroll_up,
            "down": thread.scroll_down,
            "page_up": thread.scroll_page_up,
            "page_down": thread.scroll_page_down,
            "home": thread.scroll_home,
            "end": thread.scroll_end,
        }
        moves[where](animate=False)
