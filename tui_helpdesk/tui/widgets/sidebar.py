"""The inbox's sidebar: the views (Mine, Unassigned, All open, Pending, Closed), then the
queues and mailboxes the user works in, each with its count, patched in place when counts change.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui_helpdesk.records import ConversationView, ViewCount
from tui_helpdesk.tui.widgets.safe_text import safe_text

HEADINGS = {"queue": "Queues", "mailbox": "Mailboxes"}


def view_id(view: ConversationView) -> str:
    return f"{view.kind}-{view.queue_id or view.mailbox_id or 0}"


def count_text(found: ViewCount) -> str:
    return f"{found.count:,}+" if found.more else f"{found.count:,}"


class ViewSidebar(OptionList):
    """Enter (or a click) on a view posts ViewChosen; the list then shows that view."""

    BINDINGS = [
        Binding("escape", "leave", "Back to the list", id="sidebar.leave",
                tooltip="Return to the conversation list"),
    ]  # fmt: skip

    class ViewChosen(Message):
        def __init__(self, view: ConversationView) -> None:
            super().__init__()
            self.view = view

    class Left(Message):
        """Escape: the screen puts the focus back on the list."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.views: dict[str, ConversationView] = {}
        self.counts: dict[str, ViewCount] = {}
        self._layout: list[str] = []  # the option ids in order, headings included
        self.current: str = ""

    def show_counts(self, counts: list[ViewCount], current: ConversationView) -> None:
        """Patch the counts in place; rebuild only when the views themselves changed."""
        layout: list[str] = []
        kinds_seen: set[str] = set()
        for found in counts:
            heading = HEADINGS.get(found.view.kind)
            if heading and found.view.kind not in kinds_seen:
                kinds_seen.add(found.view.kind)
                layout.append(f"heading-{found.view.kind}")
            layout.append(view_id(found.view))
        before, current_before = self.counts, self.current
        self.current = view_id(current)
        self.views = {view_id(found.view): found.view for found in counts}
        self.counts = {view_id(found.view): found for found in counts}
        if layout != self._layout:
            self._layout = layout
            highlighted = self.highlighted
            self.clear_options()
            for ident in layout:
                if ident.startswith("heading-"):
                    kind = ident.removeprefix("heading-")
                    self.add_option(Option(Text(HEADINGS[kind], style="bold"), id=ident,
                                           disabled=True))  # fmt: skip
                else:
                    self.add_option(Option(self._prompt(ident), id=ident))
            if highlighted is None and self.current in layout:
                highlighted = layout.index(self.current)
            if self.option_count:
                self.highlighted = highlighted if highlighted is not None else 0
        else:  # only the counts that changed: an OptionList prompt replaced lays out again
            for ident in self.views:
                if before.get(ident) != self.counts[ident] or current_before != self.current:
                    self.replace_option_prompt(ident, self._prompt(ident))

    def _prompt(self, ident: str) -> Text:
        found = self.counts[ident]
        label = found.view.label or found.view.kind
        width = max(8, self.scrollable_content_region.width or 22)
        number = count_text(found)
        name = safe_text(label, "bold" if ident == self.current else "", one_line=True)
        name.truncate(max(1, width - len(number) - 1), overflow="ellipsis")
        line = Text(end="", no_wrap=True)
        line.append_text(name)
        line.append(" " * max(1, width - name.cell_len - len(number)))
        line.append(number, style="dim")
        return line

    def choose(self, view: ConversationView) -> None:
        self.current = view_id(view)
        if self.current in self._layout:
            self.highlighted = self._layout.index(self.current)
        for ident in self.views:
            self.replace_option_prompt(ident, self._prompt(ident))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        view = self.views.get(event.option.id or "")
        if view is not None:
            self.post_message(self.ViewChosen(view))

    def action_leave(self) -> None:
        self.post_message(self.Left())
