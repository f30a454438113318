"""A virtual list of audit entries: draws only the visible rows, from pages read on demand.

The audit log grows without bound, so like ConversationList this is a ScrollView whose height
is the entry count and whose render_line draws one row from a small page cache. A missing
page is asked for with PageWanted, naming the nearest loaded entry before it (its key) and how
many rows lie between: the screen reads the page after that key (services.audit_log.page), so
scrolling on reads one short index range per page, at any depth.
"""

from __future__ import annotations

from collections import OrderedDict

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_helpdesk.records import AuditKey, AuditRecord
from tui_helpdesk.tui.widgets.safe_text import safe_text

HEADER_ROWS = 1
MAX_CACHED_PAGES = 40


def columns(width: int) -> list[tuple[str, int]]:
    when, action = 16, max(12, min(26, width * 22 // 100))
    actor = max(10, min(30, width * 25 // 100))
    subject = max(6, width - when - action - actor - 3)
    return [("When (UTC)", when), ("Actor", actor), ("Action", action), ("Subject", subject)]


def cells(entry: AuditRecord) -> list[str]:
    subject = f"{entry.entity_type} {entry.entity_id}".strip()
    return [entry.created_at.strftime("%Y-%m-%d %H:%M"), entry.actor, entry.action, subject]


def line_text(values: list[str], width: int) -> Text:
    line = Text(end="", no_wrap=True)
    layout = columns(width)
    for position, ((_, column_width), value) in enumerate(zip(layout, values, strict=True)):
        cell = safe_text(value, one_line=True)
        cell.truncate(column_width, overflow="ellipsis", pad=True)
        line.append_text(cell)
        if position < len(layout) - 1:
            line.append(" ")
    return line


class AuditList(ScrollView, can_focus=True):
    """Audit entries, newest first; the cursor's entry is shown in full by the screen."""

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False, id="audit_list.up", tooltip="Newer entry"),
        Binding("down", "cursor_down", "Down", show=False, id="audit_list.down",
                tooltip="Older entry"),
        Binding("pageup", "page_up", "Page up", show=False, id="audit_list.page_up",
                tooltip="One screen up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="audit_list.page_down",
                tooltip="One screen down"),
        Binding("home", "first", "Newest", show=False, id="audit_list.first",
                tooltip="The newest entry"),
        Binding("end", "last", "Oldest", show=False, id="audit_list.last",
                tooltip="The oldest entry"),
    ]  # fmt: skip

    COMPONENT_CLASSES = {"audit-list--header", "audit-list--cursor", "audit-list--muted"}

    DEFAULT_CSS = """
    AuditList { overflow-x: hidden; overflow-y: auto; }
    AuditList > .audit-list--header { text-style: bold; color: $text-accent; }
    AuditList > .audit-list--cursor { background: $block-cursor-blurred-background; }
    AuditList:focus > .audit-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    AuditList > .audit-list--muted { color: $text-muted; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class PageWanted(Message):
        """Rows from `offset`: the page after `after` (None: from the newest), `skip` left out."""

        def __init__(self, generation: int, offset: int, after: AuditKey | None, skip: int):
            super().__init__()
            self.generation, self.offset, self.after, self.skip = generation, offset, after, skip

    class Highlighted(Message):
        def __init__(self, entry: AuditRecord | None) -> None:
            super().__init__()
            self.entry = entry

    def __init__(self, *, page_size: int, id: str | None = None) -> None:
        super().__init__(id=id)
        self.page_size = page_size
        self.generation = 0
        self.total = 0
        self.loaded = False
        self.empty_text = "No audit entries match."
        self._pages: OrderedDict[int, tuple[AuditRecord, ...]] = OrderedDict()
        self._pending: set[int] = set()

    def show_reload(self, generation: int, total: int, first: tuple[AuditRecord, ...]) -> None:
        self.generation, self.total, self.loaded = generation, total, True
        self._pages.clear()
        self._pending.clear()
        self._pages[0] = first
        self.virtual_size = Size(0, total + HEADER_ROWS)
        self.scroll_to(y=0, animate=False, immediate=True, force=True)
        self.cursor = 0
        self.refresh()

    def add_page(self, generation: int, offset: int, rows: tuple[AuditRecord, ...]) -> None:
        if generation != self.generation:
            return
        self._pending.discard(offset)
        self._pages[offset] = rows
        self._pages.move_to_end(offset)
        while len(self._pages) > MAX_CACHED_PAGES:
            del self._pages[next(iter(self._pages))]
        self.refresh()
        if self.row_at(self.cursor) is not None:
            self.post_message(self.Highlighted(self.cursor_row))

    def row_at(self, index: int) -> AuditRecord | None:
        if not 0 <= index < self.total:
            return None
        rows = self._pages.get(index - index % self.page_size)
        position = index % self.page_size
        return rows[position] if rows is not None and position < len(rows) else None

    @property
    def cursor_row(self) -> AuditRecord | None:
        return self.row_at(self.cursor)

    @property
    def visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER_ROWS)

    def _anchor(self, offset: int) -> tuple[AuditKey | None, int]:
        """The nearest loaded entry before `offset`, and how many rows lie between."""
        best: tuple[AuditKey | None, int] = (None, offset)
        for start, rows in self._pages.items():
            if rows and start < offset:
                last = start + len(rows) - 1
                gap = offset - last - 1
                if 0 <= gap < best[1]:
                    best = (AuditKey(rows[-1].created_at, rows[-1].id), gap)
        return best

    def _want(self, index: int) -> None:
        offset = index - index % self.page_size
        if offset in self._pages or offset in self._pending or not 0 <= index < self.total:
            return
        self._pending.add(offset)
        after, skip = self._anchor(offset)
        self.post_message(self.PageWanted(self.generation, offset, after, skip))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            text = line_text([name for name, _ in columns(width)], width)
            text.stylize(self.get_component_rich_style("audit-list--header"))
            return self._strip(text, width, base)
        index = int(self.scroll_y) + y - HEADER_ROWS
        if index >= self.total:
            if y == HEADER_ROWS and self.loaded and not self.total:
                return self._strip(Text(self.empty_text), width, base)
            return Strip.blank(width, base)
        entry = self.row_at(index)
        if entry is None:
            self._want(index)
            return self._strip(Text("…", style=self.get_component_rich_style(
                "audit-list--muted")), width, base)  # fmt: skip
        text = line_text(cells(entry), width)
        if index == self.cursor:
            fill = self.get_component_rich_style("audit-list--cursor")
            text.stylize(fill)
            return self._strip(text, width, base + fill)
        return self._strip(text, width, base)

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        text.end = ""
        line = Strip(list(text.render(self.app.console))).apply_style(self.rich_style)
        return line.crop_extend(0, width, style)

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + HEADER_ROWS)
        self.refresh_line(new + HEADER_ROWS)
        top, height = int(self.scroll_y), self.visible_rows
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True, force=True)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False, immediate=True, force=True)
        self.refresh()
        self.post_message(self.Highlighted(self.cursor_row))
        self._want(new)

    def _move(self, index: int) -> None:
        if self.total:
            self.cursor = max(0, min(index, self.total - 1))

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page_up(self) -> None:
        self._move(self.cursor - self.visible_rows)

    def action_page_down(self) -> None:
        self._move(self.cursor + self.visible_rows)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(self.total - 1)
