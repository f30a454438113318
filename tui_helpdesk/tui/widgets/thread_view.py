"""The thread as one virtual view: messages oldest first, drawn line by line.

A widget per message (header, body, attachments: ~150 widgets for 50 messages) cost ~420 ms to
mount; this is one ScrollView whose render_line draws from lines rendered per message and
cached by (width, open, folded). A message is open (summary line, header, body, attachments)
or closed (its summary line with a snippet): on opening a thread only the newest message and
any mail that failed to send are open, so the first frame renders a handful of messages
whatever the thread's length.

The cursor is a message, not a line: j/k move it, enter opens or closes it, and the screen's
actions (headers, source, attachments, forward) act on it.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_helpdesk.records import MessageRecord
from tui_helpdesk.tui.widgets.message_view import details_text, summary_text

INDENT = 2


class ThreadView(ScrollView, can_focus=True):
    """Displays MessageRecords; every string from mail goes through safe_text."""

    COMPONENT_CLASSES = {
        "thread-view--cursor",
        "thread-view--summary",
        "thread-view--note",
        "thread-view--failed",
    }
    DEFAULT_CSS = """
    ThreadView { background: $surface; scrollbar-gutter: stable; }
    ThreadView > .thread-view--summary { background: $boost; }
    ThreadView > .thread-view--cursor { background: $accent 40%; text-style: bold; }
    ThreadView > .thread-view--note { background: $warning 15%; }
    ThreadView > .thread-view--failed { background: $error 25%; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class CursorMoved(Message):
        def __init__(self, message: MessageRecord | None) -> None:
            super().__init__()
            self.message = message

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.messages: tuple[MessageRecord, ...] = ()
        self.opened: set[int] = set()  # message ids shown in full
        self._flags: dict[int, str] = {}  # message id → "spoof" | "lookalike" (F75)
        self.folded = True  # quoted history and signatures folded
        self.placeholder: Text | None = Text("Loading…", style="italic")
        self._placeholder_lines: list[Strip] = []
        self._kinds: list[tuple[int, bool]] = []  # per line: (message index, is summary)
        self._starts: list[int] = []  # first line of each message
        self._cache: dict[tuple[int, int, bool, bool], list[Strip]] = {}
        self._width = 0
        self._styles: dict[str, Style] | None = None  # component styles, until CSS changes

    # --- what is shown ---------------------------------------------------------------------

    def show(self, messages: tuple[MessageRecord, ...]) -> None:
        """Show the thread; a first load opens the newest message and failed sends, a reload
        keeps what was open and the cursor on the same message."""
        first = not self.messages
        cursor_id = self.current.id if self.current is not None else None
        known = {m.id for m in self.messages}
        if self.messages != messages:  # a rendering stays while its message is unchanged
            old = {m.id: m for m in self.messages}
            new = {m.id: m for m in messages}
            unchanged = {i for i, m in new.items() if old.get(i) == m}
            self._cache = {k: v for k, v in self._cache.items() if k[0] in unchanged}
        self.messages = messages
        self.placeholder = None
        ids = [m.id for m in messages]
        if first:
            self.opened = {messages[-1].id} if messages else set()
            self.opened |= {m.id for m in messages if m.delivery == "failed"}
        else:  # what arrived since is open; what was open stays so
            self.opened |= {m.id for m in messages if m.id not in known}
        self._layout()
        if first:
            self.cursor = len(messages) - 1
        elif cursor_id in ids:
            self.set_reactive(ThreadView.cursor, ids.index(cursor_id))
        else:
            self.cursor = max(0, len(messages) - 1)

    def show_text(self, text: Text) -> None:
        """A line instead of the thread (loading, or why it cannot be read)."""
        self.messages, self.placeholder = (), text
        self._layout()

    @property
    def flags(self) -> dict[int, str]:
        return self._flags

    @flags.setter
    def flags(self, value: dict[int, str]) -> None:
        if value != self._flags:
            self._flags = value
            self._cache.clear()
            self._layout()

    @property
    def current(self) -> MessageRecord | None:
        if not self.messages:
            return None
        return self.messages[min(self.cursor, len(self.messages) - 1)]

    def toggle_open(self, index: int | None = None) -> None:
        index = self.cursor if index is None else index
        if not self.messages:
            return
        message_id = self.messages[index].id
        self.opened ^= {message_id}
        self._layout()
        self._scroll_cursor_into_view()

    def open_all(self) -> bool:
        """Open every message, or (all open) close all but the cursor's; whether all are open."""
        everything = {m.id for m in self.messages}
        if self.opened >= everything and self.current is not None:
            self.opened = {self.current.id}
        else:
            self.opened = everything
        self._layout()
        self._scroll_cursor_into_view()
        return self.opened == everything

    def toggle_folded(self) -> None:
        self.folded = not self.folded
        self._layout()

    # --- layout and drawing ----------------------------------------------------------------

    def _layout(self) -> None:
        """Where each message's lines start. A closed message is two lines (its summary and
        a gap), so only open ones are rendered here; summaries are drawn when on screen."""
        width = self.scrollable_content_region.width
        self._width = width
        if width <= 0:  # not laid out yet: on_resize lays the thread out once it has a size
            return
        width = max(10, width)
        self._placeholder_lines, self._kinds, self._starts = [], [], []
        if self.placeholder is not None:
            self._placeholder_lines = self._render(self.placeholder, width)
            self._kinds = [(-1, False)] * len(self._placeholder_lines)
        for index, message in enumerate(self.messages):
            self._starts.append(len(self._kinds))
            count = len(self._message_lines(message, width)) if message.id in self.opened else 2
            self._kinds.extend((index, n == 0) for n in range(count))
        self.virtual_size = Size(width, len(self._kinds))
        self.refresh()

    def _line(self, index: int) -> Strip:
        """Line `index` of the thread (rendering its message's lines if not done yet)."""
        message_index, _summary = self._kinds[index]
        if message_index < 0:
            return self._placeholder_lines[index]
        lines = self._message_lines(self.messages[message_index], max(10, self._width))
        return lines[index - self._starts[message_index]]

    def _message_lines(self, message: MessageRecord, width: int) -> list[Strip]:
        opened = message.id in self.opened
        key = (message.id, width, opened, self.folded)  # flags changing clear the cache
        found = self._cache.get(key)
        if found is None:
            flag = self._flags.get(message.id, "")
            summary = summary_text(message, expanded=opened, width=width, flag=flag)
            found = [Strip(list(summary.render(self.app.console)), summary.cell_len)]
            if opened:
                details = details_text(message, folded=self.folded)
                found += self._render(details, width - INDENT, indent=INDENT)
            found.append(Strip.blank(width))
            self._cache[key] = found
        return found

    def _render(self, text: Text, width: int, *, indent: int = 0) -> list[Strip]:
        console = self.app.console
        options = console.options.update_width(max(1, width))
        lines = console.render_lines(text, options, pad=False)
        pad = [Segment(" " * indent)] if indent else []
        return [Strip([*pad, *line]) for line in lines]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _style(self, name: str) -> Style:
        """Styles read once per CSS change: each read blends colours (alpha), ~40 µs a call."""
        if self._styles is None:
            self._styles = {c: self.get_component_rich_style(c) for c in self.COMPONENT_CLASSES}
            self._styles["base"] = self.rich_style
        return self._styles[name]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self._style("base")
        if index >= len(self._kinds):
            return Strip.blank(width, base)
        strip = self._line(index)
        message_index, summary = self._kinds[index]
        if summary:
            style = self._summary_style(message_index)
            strip = strip.apply_style(style).extend_cell_length(width, style)
        strip = strip.crop_pad(scroll_x, scroll_x + width, width, base) if scroll_x else strip
        return strip.extend_cell_length(width, base).crop(0, width).apply_style(base)

    def _summary_style(self, message_index: int) -> Style:
        message = self.messages[message_index]
        style = self._style("thread-view--summary")
        if message.direction == "internal":
            style += self._style("thread-view--note")
        if message.delivery == "failed":
            style += self._style("thread-view--failed")
        if message_index == self.cursor and self.has_focus:
            style += self._style("thread-view--cursor")
        elif message_index == self.cursor:
            style += Style(bold=True, reverse=False)
        return style

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._width:
            self._layout()
            self._scroll_cursor_into_view()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # --- the cursor ------------------------------------------------------------------------

    def watch_cursor(self, _old: int, _new: int) -> None:
        self.refresh()
        self._scroll_cursor_into_view()
        self.post_message(self.CursorMoved(self.current))

    def _scroll_cursor_into_view(self) -> None:
        if not self._starts:
            return
        index = min(self.cursor, len(self._starts) - 1)
        top = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self._kinds)
        height = self.scrollable_content_region.height or 1
        if top < self.scroll_y or end - top > height:
            self.scroll_to(y=top, animate=False)
        elif end > self.scroll_y + height:
            self.scroll_to(y=end - height, animate=False)

    def move(self, step: int) -> None:
        if self.messages:
            self.cursor = max(0, min(len(self.messages) - 1, self.cursor + step))

    def move_to(self, index: int) -> None:
        if self.messages:
            self.cursor = max(0, min(len(self.messages) - 1, index))

    def on_click(self, event) -> None:  # type: ignore[no-untyped-def]
        index = int(self.scroll_y) + event.y
        if 0 <= index < len(self._kinds):
            message_index, summary = self._kinds[index]
            if message_index >= 0:
                self.cursor = message_index
                if summary:
                    self.toggle_open(message_index)

    def lines_text(self) -> str:
        """Every line of the thread as plain text (what a reader sees, scrolled or not)."""
        return "\n".join(self._line(index).text.rstrip() for index in range(len(self._kinds)))
