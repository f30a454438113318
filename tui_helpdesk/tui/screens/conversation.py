"""One conversation: its thread oldest message first, and the keys to read and answer it.

j/k move between messages, enter opens or closes one, z folds quoted history and signatures,
h and v show the full header and the raw source, s lists the attachments to save; r, R, f and n
open the composer (reply, reply all, forward, internal note); a, A, t, p, c, o, ! and # run the
conversation actions of tui/actions.py. A message the sender checks flagged (F75) puts a banner
above the thread: red for possible spoofing (a reply then asks first), yellow for a lookalike.
Escape goes back to the inbox.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ConversationDetail, ConversationRecord, SenderWarningRecord
from tui_helpdesk.services.conversations import thread
from tui_helpdesk.services.inbound_auth import warnings
from tui_helpdesk.services.inbound_auth.warnings import strongest
from tui_helpdesk.tui.actions import ConversationActions, action_bindings
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import ConversationLoaded, DataChanged, LoadFailed
from tui_helpdesk.tui.modals.attachments import AttachmentsScreen
from tui_helpdesk.tui.modals.message_source import SourceScreen
from tui_helpdesk.tui.screens.composer import MODE_TITLES, ComposerScreen
from tui_helpdesk.tui.widgets.footer import KeyBar
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


def warning_text(lead: SenderWarningRecord, count: int) -> Text:
    """The banner: why the strongest flagged message may not come from who it says."""
    if lead.level == "spoof":
        line = Text("⚠ Possible spoofing: ", style="bold", end="")
    else:
        line = Text("⚠ Lookalike sender: ", style="bold", end="")
    line.append_text(safe_text(lead.reason, one_line=True))
    if count > 1:
        line.append(f"  ({count} flagged messages)")
    if lead.level == "spoof":
        line.append("  · replying asks you to confirm")
    return line


class ThreadLoaded(Message):
    def __init__(self, detail: ConversationDetail, warnings: list[SenderWarningRecord]) -> None:
        super().__init__()
        self.detail = detail
        self.warnings = warnings


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
        Binding("enter", "toggle_open", "Open/close", id="conversation.toggle",
                tooltip="Show or hide the message under the cursor"),
        Binding("E", "open_all", "All", id="conversation.open_all",
                tooltip="Open every message (again: only the cursor's)"),
        Binding("h", "source('headers')", "Headers", id="conversation.headers",
                tooltip="Every header field of the message"),
        Binding("v", "source('raw')", "Source", id="conversation.source",
                tooltip="The message as it came, control characters made visible"),
        Binding("s", "attachments", "Save attachment", id="conversation.attachments",
                tooltip="List the message's attachments and save one"),
        *action_bindings("conversation"),
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
        self.warnings: list[SenderWarningRecord] = []
        self.actions = ConversationActions(self, lambda: [conversation_id],
                                           done=lambda _results: self.load())  # fmt: skip

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        self.load()  # the read runs while the screen is built and first drawn
        # Two lines from the start, as the title will have: its update is no layout pass.
        yield Static(Text(f"Conversation #{self.conversation_id}\n…", end=""),
                     id="conversation-title")  # fmt: skip
        yield Static("", id="sender-warning", classes="sender-warning")
        yield ThreadView(id="thread")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(ThreadView).focus()

    def commands(self) -> list[PaletteCommand]:
        found = [
            *self.actions.commands(),
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
        cid = self.conversation_id
        try:
            detail, flagged = self.helpdesk.data.read(
                lambda session, actor: (
                    thread.get_conversation(session, actor, cid),
                    warnings.conversation_warnings(session, actor, cid),
                )
            )
        except HelpdeskError as error:
            self.post_message(LoadFailed(error.message))
            return
        self.post_message(ThreadLoaded(detail, flagged))

    def on_thread_loaded(self, message: ThreadLoaded) -> None:
        self._show_warnings(message.warnings)
        self.on_conversation_loaded(ConversationLoaded(message.detail))

    def _show_warnings(self, found: list[SenderWarningRecord]) -> None:
        """The banner changes (a layout pass: it takes or gives back lines) only when the
        warnings do; most threads have none, from the first load on."""
        before, self.warnings = self.warnings, found
        self.query_one(ThreadView).flags = {w.message_id: w.level for w in found}
        if found == before:
            return
        banner = self.query_one("#sender-warning", Static)
        banner.set_class(False, "spoof", "lookalike")
        lead = strongest(found)
        if lead is None:
            banner.update("")
            return
        banner.add_class(lead.level)
        banner.update(warning_text(lead, len(found)))

    def on_conversation_loaded(self, message: ConversationLoaded) -> None:
        previous, self.detail = self.detail, message.detail
        self._set_title(title_text(message.detail.conversation))
        if previous is not None and previous.messages == message.detail.messages:
            return
        self.query_one(ThreadView).show(message.detail.messages)

    def _set_title(self, text: Text) -> None:
        """A layout pass only when the title's height changes (it has two lines from the
        start; a narrow terminal may wrap a third): else the thread below stays put."""
        title = self.query_one("#conversation-title", Static)
        title.update(text, layout=False)
        width = title.content_region.width
        if not width or title.visual.get_height(title.styles, width) != title.content_region.height:
            title.refresh(layout=True)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.query_one(ThreadView).show_text(safe_text(message.text, "bold red"))

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    # --- actions -----------------------------------------------------------------------------

    def action_act(self, name: str) -> None:
        self.actions.run(name)

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
        self.query_one(ThreadView).toggle_folded()

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
        current = self.query_one(ThreadView).current
        self.app.push_screen(
            ComposerScreen(
                self.conversation_id,
                mode,
                message_id=current.id if current else None,
                warning=strongest(self.warnings),
            ),
            callback=lambda sent: self.load() if sent else None,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        closed = self.detail is not None and self.detail.conversation.status == "closed"
        if action == "compose" and parameters and parameters[0] != "note" and closed:
            return None  # a closed conversation takes no mail; reopen it first
        return True
