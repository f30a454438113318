"""One conversation: its thread oldest message first, and the keys to read and answer it.

j/k move between messages, enter opens or closes one, z folds quoted history and signatures,
h and v show the full header and the raw source, a lists the attachments to save; r, R, f and n
open the composer (reply, reply all, forward, internal note). Escape goes back to the inbox.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ConversationDetail, ConversationRecord
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import ConversationLoaded, DataChanged, LoadFailed
from tui_helpdesk.tui.modals.attachments import AttachmentsScreen
from tui_helpdesk.tui.modals.message_source import SourceScreen
from tui_helpdesk.tui.screens.composer import MODE_TITLES, ComposerScreen
from tui_helpdesk.tui.widgets.safe_text import safe_text
from tui_helpdesk.tui.widgets.thread_view import ThreadView


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


class ConversationScreen(Screen[None]):
    """Shows the thread; reloads it when the database changes (a reply may have arrived)."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="conversation.back", tooltip="Back to the inbox"),
        Binding("r", "compose('reply')", "Reply", id="conversation.reply",
                tooltip="Answer the customer"),
        Binding("R", "compose('reply_all')", "Reply all", id="conversation.reply_all",
                tooltip="Answer everyone in the thread"),
        Binding("f", "compose('forward')", "Forward", id="conversation.forward",
                tooltip="Send the message under the cursor to someone else"),
        Binding("n", "compose('note')", "Note", id="conversation.note",
                tooltip="An internal note for colleagues, never sent"),
        Binding("z", "fold", "Fold quotes", id="conversation.fold",
                tooltip="Show or hide quoted history and signatures"),
        Binding("enter,o", "toggle_open", "Open/close", id="conversation.toggle",
                tooltip="Show or hide the message under the cursor"),
        Binding("E", "open_all", "All", id="conversation.open_all",
                tooltip="Open every message (again: only the cursor's)"),
        Binding("h", "source('headers')", "Headers", id="conversation.headers",
                tooltip="Every header field of the message"),
        Binding("v", "source('raw')", "Source", id="conversation.source",
                tooltip="The message as it came, control characters made visible"),
        Binding("a", "attachments", "Attachments", id="conversation.attachments",
                tooltip="List the message's attachments and save one"),
        Binding("j", "move(1)", "Next", show=False, id="conversation.next",
                tooltip="Next message"),
        Binding("k", "move(-1)", "Previous", show=False, id="conversation.previous",
                tooltip="Previous message"),
        Binding("g", "first", "First", show=False, id="conversation.first",
                tooltip="First message"),
        Binding("G", "last", "Last", show=False, id="conversation.last", tooltip="Last message"),
        Binding("ctrl+r,f5", "refresh", "Refresh", show=False, id="conversation.refresh",
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
                tooltip="Top of the thread"),
        Binding("end", "scroll('end')", "Bottom", show=False, id="conversation.bottom",
                tooltip="Bottom of the thread"),
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
        yield ThreadView(id="thread")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ThreadView).focus()
        self.load()

    def commands(self) -> list[PaletteCommand]:
        found = [
            PaletteCommand("conversation: back", "Back to the inbox", self.action_back),
            PaletteCommand("conversation: refresh", "Read it again", self.action_refresh),
            PaletteCommand(
                "conversation: fold quotes", "Show or hide quoted history", self.action_fold
            ),
            PaletteCommand("conversation: open all", "Open every message", self.action_open_all),
            PaletteCommand(
                "conversation: headers",
                "Every header field of the message",
                lambda: self.action_source("headers"),
            ),
            PaletteCommand(
                "conversation: source", "The raw message", lambda: self.action_source("raw")
            ),
            PaletteCommand(
                "conversation: attachments", "List and save attachments", self.action_attachments
            ),
        ]
        for mode, title in MODE_TITLES.items():
            found.append(PaletteCommand(f"conversation: {title.lower()}", f"Write a {title}",
                                        lambda mode=mode: self.action_compose(mode)))  # fmt: skip
        return found

    # --- reading -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversation-load")
    def load(self) -> None:
        try:
            detail = self.helpdesk.data.conversation(self.conversation_id)
        except HelpdeskError as error:
            self.post_message(LoadFailed(error.message))
            return
        self.post_message(ConversationLoaded(detail))

    def on_conversation_loaded(self, message: ConversationLoaded) -> None:
        previous, self.detail = self.detail, message.detail
        self.query_one("#conversation-title", Static).update(
            title_text(message.detail.conversation)
        )
        if previous is not None and previous.messages == message.detail.messages:
            return
        self.query_one(ThreadView).show(message.detail.messages)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.query_one(ThreadView).show_text(safe_text(message.text, "bold red"))

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    # --- actions -----------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(None)

    def action_refresh(self) -> None:
        self.load()

    def action_scroll(self, where: str) -> None:
        thread = self.query_one(ThreadView)
        moves = {
            "up": thread.scroll_up,
            "down": thread.scroll_down,
            "page_up": thread.scroll_page_up,
            "page_down": thread.scroll_page_down,
            "home": thread.scroll_home,
            "end": thread.scroll_end,
        }
        moves[where](animate=False)

    def action_move(self, step: int) -> None:
        self.query_one(ThreadView).move(step)

    def action_first(self) -> None:
        self.query_one(ThreadView).move_to(0)

    def action_last(self) -> None:
        self.query_one(ThreadView).move_to(10**9)

    def action_toggle_open(self) -> None:
        self.query_one(ThreadView).toggle_open()

    def action_open_all(self) -> None:
        self.query_one(ThreadView).open_all()

    def action_fold(self) -> None:
        thread = self.query_one(ThreadView)
        thread.toggle_folded()
        state = "folded" if thread.folded else "shown"
        self.notify(f"Quoted history and signatures {state}", timeout=2, markup=False)

    def action_source(self, what: str) -> None:
        message = self.query_one(ThreadView).current
        if message is None:
            return
        if message.direction == "internal":
            self.notify("An internal note has no header or source", markup=False)
            return
        self.app.push_screen(SourceScreen(what, message))

    def action_attachments(self) -> None:
        message = self.query_one(ThreadView).current
        if message is None:
            return
        if not message.attachments:
            self.notify("This message has no attachments", markup=False)
            return
        self.app.push_screen(AttachmentsScreen(message))

    def action_compose(self, mode: str) -> None:
        thread = self.query_one(ThreadView)
        current = thread.current
        self.app.push_screen(
            ComposerScreen(self.conversation_id, mode, message_id=current.id if current else None),
            callback=lambda sent: self.load() if sent else None,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        closed = self.detail is not None and self.detail.conversation.status == "closed"
        if action == "compose" and parameters and parameters[0] != "note" and closed:
            return None  # a closed conversation takes no mail; reopen it first
        return True
