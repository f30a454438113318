"""A virtual conversation list: draws only the visible rows, from pages read on demand.

DataTable measures and stores every row (100k rows took 18-36 s), so this is a ScrollView whose
height is the row count and whose render_line draws one row from a small page cache. Missing
pages are asked for with PageWanted; the screen reads them in a worker and hands them back.
The cursor follows a conversation, not an index: a reload places it where that conversation went.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from math import ceil

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip

from tui_helpdesk.records import ConversationRecord
from tui_helpdesk.tui.format import age
from tui_helpdesk.tui.messages import InboxPage
from tui_helpdesk.tui.widgets.safe_text import safe_line

MAX_CACHED_PAGES = 50
MAX_CLEANED = 5000  # rows whose cleaned text is kept (a few screens' worth is what matters)
MAX_DRAWN = 600  # rows whose drawn line is kept (~20 screens; a line holds a dozen objects)
HEADER_ROWS = 1
SCROLL_BAR_STEPS = len(ScrollBarRender.VERTICAL_BARS)
PREFETCH_SCREENS = 3  # a held page down (back to back) finds its next screens read


def column_widths(width: int) -> list[tuple[str, int]]:
    """Column names and widths for a given row width; the header uses the same layout.

    Narrow rows drop the columns the preview also shows (tags first, then mailbox, assignee,
    priority); the subject takes what is left.
    """
    contact = max(10, min(24, width * 18 // 100))
    optional = {
        "Mailbox": (max(10, min(24, width * 16 // 100)), 88),
        "Assignee": (max(8, min(16, width * 12 // 100)), 70),
        "Priority": (6, 60),
        "Tags": (max(8, min(18, width * 12 // 100)), 104),
    }
    shown = {name: size for name, (size, least) in optional.items() if width >= least}
    fixed = [("Mark", 2), ("Contact", contact), ("Status", 7), ("Age", 4)]
    used = sum(size for _, size in fixed) + sum(shown.values())
    gaps = len(fixed) + len(shown)  # one space after every column but the last
    subject = max(8, width - used - gaps)
    order = ["Mark", "Subject", "Contact", "Mailbox", "Assignee", "Status", "Priority", "Tags",
             "Age"]  # fmt: skip
    sizes = {**dict(fixed), **shown, "Subject": subject}
    return [(name, sizes[name]) for name in order if name in sizes]


HEADINGS = {"Mark": "", "Priority": "Prio"}
# F75: a conversation with a message flagged by the sender checks; the subject says so (red
# for possible spoofing, yellow for a lookalike sender), whatever the width.
FLAG_PREFIX = {"spoof": "⚠ spoof? ", "lookalike": "⚠ "}


def sender_of(row: ConversationRecord) -> str:
    return row.contact_name or row.contact or "(unknown sender)"


def row_cells(row: ConversationRecord, now: datetime, *, marked: bool = False) -> dict[str, str]:
    return {
        "Mark": ("*" if marked else " ") + ("●" if row.unread else " "),
        "Subject": FLAG_PREFIX.get(row.flagged, "") + (row.subject or "(no subject)"),
        "Contact": sender_of(row),
        "Mailbox": row.mailbox or "",
        "Assignee": (row.assignee or "").split("@")[0],
        "Status": row.status,
        "Priority": row.priority,
        "Tags": ",".join(row.tags),
        "Age": age(row.last_message_at, now),
    }


def fit(text: str, width: int, *, right: bool = False) -> str:
    """Exactly `width` cells: cut with an ellipsis, or padded (on the left when right)."""
    # Cleaned text holds no control characters, so ASCII text is one cell per character.
    size = len(text) if text.isascii() else cell_len(text)
    if size > width:
        if size == len(text):
            return text[: width - 1] + "…" if width > 1 else text[:width]
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    pad = " " * (width - size)
    return pad + text if right else text + pad


def _thumb(bar: ScrollBar, position: float) -> tuple[int, ...] | None:
    """Where a vertical scroll bar draws its thumb for `position`, in eighths of a cell (the
    steps of its glyphs), as ScrollBarRender.render_bar works it out; None: no thumb."""
    size = bar.size.height
    virtual = ceil(bar.window_virtual_size)
    window = ceil(bar.window_size) if bar.window_size < bar.window_virtual_size else 0
    if not (window and size and virtual and size != virtual) or virtual == window:
        return None
    thumb = max(1, window / (virtual / size))
    start = int((size - thumb) * (position / (virtual - window)) * SCROLL_BAR_STEPS)
    return size, virtual, window, start


class ConversationList(ScrollView, can_focus=True):
    """Rows of conversations, newest first; Enter opens the one under the cursor."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="list.up", tooltip="Previous row"),
        Binding("down,j", "cursor_down", "Down", show=False, id="list.down", tooltip="Next row"),
        Binding("pageup", "page_up", "Page up", show=False, id="list.page_up",
                tooltip="One screen up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="list.page_down",
                tooltip="One screen down"),
        Binding("home,g", "first", "First", show=False, id="list.first",
                tooltip="Newest conversation"),
        Binding("end,G", "last", "Last", show=False, id="list.last",
                tooltip="Oldest conversation"),
        Binding("enter", "open", "Open", id="list.open", tooltip="Read the conversation"),
        Binding("space", "mark", "Mark", id="list.mark",
                tooltip="Mark or unmark the row (actions apply to every marked row)"),
        Binding("left,right,ctrl+pageup,ctrl+pagedown", "noop", "No sideways scrolling",
                show=False, system=True,
                id="list.no_sideways"),
    ]  # fmt: skip

    COMPONENT_CLASSES = {
        "conversation-list--header",
        "conversation-list--cursor",
        "conversation-list--loading",
        "conversation-list--muted",
        "conversation-list--sender",
        "conversation-list--unread",
        "conversation-list--urgent",
        "conversation-list--marked",
        "conversation-list--spoof",
        "conversation-list--lookalike",
    }

    DEFAULT_CSS = """
    ConversationList {
        overflow-x: hidden;
        overflow-y: auto;
    }
    ConversationList > .conversation-list--cursor {
        background: $block-cursor-blurred-background;
    }
    ConversationList:focus > .conversation-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    ConversationList > .conversation-list--header {
        text-style: bold;
        color: $text-accent;
    }
    ConversationList > .conversation-list--muted {
        color: $text-muted;
    }
    ConversationList > .conversation-list--sender {
        color: $text-secondary;
    }
    ConversationList > .conversation-list--loading {
        color: $text-muted;
    }
    ConversationList > .conversation-list--unread {
        text-style: bold;
    }
    ConversationList > .conversation-list--urgent {
        color: $text-warning;
    }
    ConversationList > .conversation-list--spoof {
        color: $text-error;
        text-style: bold;
    }
    ConversationList > .conversation-list--lookalike {
        color: $text-warning;
    }
    ConversationList > .conversation-list--marked {
        color: $text-accent;
        text-style: bold;
    }
    """

    # repaint=False: a cursor move redraws its two lines (watch_cursor), not every row.
    cursor: reactive[int] = reactive(0, always_update=True, init=False, repaint=False)

    class PageWanted(Message):
        """Rows from `offset` (a multiple of the page size) are needed on screen."""

        def __init__(self, generation: int, offset: int) -> None:
            super().__init__()
            self.generation = generation
            self.offset = offset

    class Highlighted(Message):
        def __init__(self, row: ConversationRecord | None, index: int, total: int) -> None:
            super().__init__()
            self.row = row
            self.index = index
            self.total = total

    class MarksChanged(Message):
        def __init__(self, marked: frozenset[int]) -> None:
            super().__init__()
            self.marked = marked

    class Opened(Message):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def __init__(
        self,
        *,
        page_size: int,
        now: Callable[[], datetime],
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.page_size = page_size
        self._now = now
        self.empty_text = "No conversations to show."
        self.generation = 0
        self.total = 0
        self.loaded = False
        self._pages: OrderedDict[int, tuple[ConversationRecord, ...]] = OrderedDict()
        self._pending: set[int] = set()
        self.marked: set[int] = set()  # conversation ids marked with space
        self.snippets: dict[int, str] = {}  # search: conversation id -> matching excerpt
        self._could_open = False
        self._cleaned: dict[int, tuple[ConversationRecord, dict[str, str]]] = {}
        # row id -> (the row, (on the cursor, marked, age), its line at _columns_width)
        self._drawn: dict[int, tuple[ConversationRecord, tuple[bool, bool, str], Strip]] = {}
        self._columns_width = -1
        self._columns: list[tuple[str, int]] = []
        self._style_cache: dict[str, Style] | None = None
        self._on_cursor: dict[Style, Style] | None = None
        self._read_ahead_due = False

    # -- data in -------------------------------------------------------------------------

    def show_reload(
        self, generation: int, total: int, pages: list[InboxPage], cursor_index: int | None
    ) -> None:
        """Replace everything: a new count, fresh pages, and the cursor on its conversation.

        Only the lines whose row changed are drawn again (a live update over SSH sends one
        row, not the screen), unless the count changed and rows moved."""
        was_loaded, old_total, old_cursor = self.loaded, self.total, self.cursor
        before = self._on_screen() if was_loaded else []
        self.generation = generation
        self.total = total
        self.loaded = True
        self._pages.clear()
        self._pending.clear()
        self.snippets.clear()
        for page in pages:
            self._pages[page.offset] = page.rows
            self.snippets.update(page.snippets)
        self.virtual_size = Size(0, total + HEADER_ROWS)
        index = self.cursor if cursor_index is None else cursor_index
        self.cursor = max(0, min(index, total - 1))
        if not was_loaded or total != old_total:
            self.refresh()
            return
        first = self.first_visible_row
        for offset, (row, now) in enumerate(zip(before, self._on_screen(), strict=True)):
            if row != now or first + offset in (old_cursor, self.cursor):
                self.refresh_line(first + offset + HEADER_ROWS)

    def _on_screen(self) -> list[ConversationRecord | None]:
        """The rows on screen now (None where a row is not read yet)."""
        first = self.first_visible_row
        return [self.row_at(index) for index in range(first, first + self.visible_rows)]

    def set_total(self, total: int) -> None:
        """The count arrived after the first rows (shown with a provisional one)."""
        self.total = total
        self.virtual_size = Size(0, total + HEADER_ROWS)
        if self.cursor >= total:
            self._move(total - 1)
        self.refresh()

    def add_page(self, generation: int, page: InboxPage) -> None:
        if generation != self.generation:
            return  # read before the last reload: rows may have moved since
        self._pending.discard(page.offset)
        self._pages[page.offset] = page.rows
        self.snippets.update(page.snippets)
        if page.offset + len(page.rows) >= self.total - 1:
            # search results: the count grows as pages come (one row more while more follow)
            self.total = page.offset + len(page.rows) + (1 if page.more else 0)
            self.virtual_size = Size(0, self.total + HEADER_ROWS)
        self._pages.move_to_end(page.offset)
        self._evict()
        top = self.first_visible_row
        if page.offset < top + self.visible_rows and page.offset + len(page.rows) > top:
            self.refresh()  # only a page on screen is drawn again (most are read ahead)
        if page.offset <= self.cursor < page.offset + len(page.rows):
            self._post_highlight()

    def _evict(self) -> None:
        visible = self._page_offset(int(self.scroll_y))
        while len(self._pages) > MAX_CACHED_PAGES:
            oldest = next(iter(self._pages))
            if oldest == visible:
                self._pages.move_to_end(oldest)
                continue
            del self._pages[oldest]

    def _page_offset(self, index: int) -> int:
        return index - index % self.page_size

    def row_at(self, index: int) -> ConversationRecord | None:
        if not 0 <= index < self.total:
            return None
        rows = self._pages.get(self._page_offset(index))
        position = index % self.page_size
        return rows[position] if rows is not None and position < len(rows) else None

    @property
    def cursor_row(self) -> ConversationRecord | None:
        return self.row_at(self.cursor)

    @property
    def first_visible_row(self) -> int:
        return int(self.scroll_y)

    @property
    def visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER_ROWS)

    def _want(self, first: int, last: int) -> None:
        """Ask once for every page holding rows first..last that is neither cached nor asked."""
        first, last = max(0, first), min(self.total - 1, last)
        for offset in range(self._page_offset(first), last + 1, self.page_size):
            if offset not in self._pages and offset not in self._pending:
                self._pending.add(offset)
                self.post_message(self.PageWanted(self.generation, offset))

    def _want_around_view(self) -> None:
        """The rows on screen now; those a screen above and below once this frame is drawn
        (a read ahead started at once would hold the interpreter while the frame renders)."""
        top, height = self.first_visible_row, self.visible_rows
        self._want(top, top + height - 1)
        if not self._read_ahead_due:
            self._read_ahead_due = True
            self.call_after_refresh(self._read_ahead)

    def _read_ahead(self) -> None:
        self._read_ahead_due = False
        top, height = self.first_visible_row, self.visible_rows
        spare = height * PREFETCH_SCREENS
        self._want(top - spare, top + height + spare)

    # -- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """Line 0 is the column header; line y > 0 shows row scroll_y + y - 1.

        A row's line is kept (per width, cursor, mark and age) and its columns are fitted once
        per row and width: a page down draws ~30 new rows and a move of the cursor two."""
        width = self.scrollable_content_region.width
        styles = self._styles()
        columns = self._columns_for(width)
        if y == 0:
            names = {name: HEADINGS.get(name, name) for name, _ in columns}
            return self._cells_strip(names, columns, width, {}, styles["header"])
        index = self.first_visible_row + y - HEADER_ROWS
        base = styles["base"]
        if index >= self.total:
            if y == HEADER_ROWS and self.loaded and not self.total:
                empty = "   " + self.empty_text  # under the subject column
                return Strip([Segment(empty, styles["loading"])]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        row = self.row_at(index)
        if row is None:
            self._want(index, index)
            line = Strip([Segment("…", styles["loading"])])
            if index == self.cursor:
                return line.apply_style(styles["cursor"]).crop_extend(0, width, styles["cursor"])
            return line.crop_extend(0, width, base)
        state = (index == self.cursor, row.id in self.marked, age(row.last_message_at, self._now()))
        drawn = self._drawn.get(row.id)
        if drawn is not None and drawn[0] is row and drawn[1] == state:
            return drawn[2]
        strip = self._row_strip(row, columns, width, *state)
        if len(self._drawn) > MAX_DRAWN:
            self._drawn.clear()
        self._drawn[row.id] = (row, state, strip)
        return strip

    def _row_strip(
        self,
        row: ConversationRecord,
        columns: list[tuple[str, int]],
        width: int,
        on_cursor: bool,
        marked: bool,
        row_age: str,
    ) -> Strip:
        styles = self._styles()
        cells = {**self._clean_cells(row), "Age": row_age,
                 "Mark": ("*" if marked else " ") + ("●" if row.unread else " ")}  # fmt: skip
        column_styles = {"Contact": styles["sender"], "Mailbox": styles["muted"],
                         "Assignee": styles["muted"], "Tags": styles["muted"],
                         "Age": styles["muted"], "Mark": styles["marked"]}  # fmt: skip
        if row.unread:
            column_styles["Subject"] = styles["unread"]
        if row.flagged in ("spoof", "lookalike"):
            column_styles["Subject"] = styles[row.flagged]
        if row.priority in ("high", "urgent"):
            column_styles["Priority"] = styles["urgent"]
        if on_cursor:
            on = self._cursor_styles()
            column_styles = {name: on[style] for name, style in column_styles.items()}
            return self._cells_strip(cells, columns, width, column_styles, styles["cursor"])
        return self._cells_strip(cells, columns, width, column_styles, styles["base"])

    def _cursor_styles(self) -> dict[Style, Style]:
        """Each column style with the cursor's over it (adding styles is not free)."""
        if self._on_cursor is None:
            cursor = self._styles()["cursor"]
            self._on_cursor = {style: style + cursor for style in self._styles().values()}
        return self._on_cursor

    def _columns_for(self, width: int) -> list[tuple[str, int]]:
        if width != self._columns_width:
            self._columns_width, self._columns = width, column_widths(width)
            self._drawn.clear()
        return self._columns

    @staticmethod
    def _cells_strip(
        cells: dict[str, str],
        columns: list[tuple[str, int]],
        width: int,
        column_styles: dict[str, Style],
        plain: Style,
    ) -> Strip:
        """One segment per run of cells in the same style (a column and the gap after it
        share one when the column is plain): fewer segments to crop, filter and write."""
        segments: list[Segment] = []
        text, style = "", plain
        last = len(columns) - 1
        for position, (name, column_width) in enumerate(columns):
            cell = fit(cells.get(name, ""), column_width, right=name == "Age")
            cell_style = column_styles.get(name, plain)
            if cell_style is not style:
                if text:
                    segments.append(Segment(text, style))
                text, style = "", cell_style
            text += cell
            if position < last:
                if style is not plain:
                    segments.append(Segment(text, style))
                    text, style = "", plain
                text += " "
        used = sum(size for _, size in columns) + last
        if used < width:
            if style is not plain:
                segments.append(Segment(text, style))
                text, style = "", plain
            text += " " * (width - used)
        if text:
            segments.append(Segment(text, style))
        if used > width:
            return Strip(segments).crop_extend(0, width, plain)
        return Strip(segments, width)

    def _clean_cells(self, row: ConversationRecord) -> dict[str, str]:
        """The row's text cleaned for the screen (control characters, bidi overrides, one
        line), once per row read, not once per draw."""
        cached = self._cleaned.get(row.id)
        if cached is not None and cached[0] is row:
            return cached[1]
        if len(self._cleaned) > MAX_CLEANED:
            self._cleaned.clear()
        raw = row_cells(row, self._now())
        cells = {name: safe_line(value) for name, value in raw.items()
                 if name not in ("Age", "Mark")}  # fmt: skip
        self._cleaned[row.id] = (row, cells)
        return cells

    def _styles(self) -> dict[str, Style]:
        if self._style_cache is None:
            base = self.rich_style
            part = self.get_component_rich_style
            self._style_cache = {
                "base": base,
                "header": base + part("conversation-list--header"),
                "cursor": base + part("conversation-list--cursor"),
                "loading": base + part("conversation-list--loading"),
                **{name: base + part(f"conversation-list--{name}")
                   for name in ("muted", "sender", "unread", "urgent", "marked", "spoof",
                                "lookalike")},
            }  # fmt: skip
        return self._style_cache

    def notify_style_update(self) -> None:
        """Focus changes the cursor's colours (and a theme everything): draw with new ones."""
        super().notify_style_update()
        self._style_cache = None
        self._on_cursor = None
        self._drawn.clear()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """ScrollView's, but the scroll bar is drawn again only when its thumb moves: over
        100,000 rows a page moves it a hundredth of a cell, and drawing it cost a tenth of a
        page down."""
        if self.show_vertical_scrollbar:
            bar = self.vertical_scrollbar
            if _thumb(bar, new_value) == _thumb(bar, bar.position):
                bar.set_reactive(ScrollBar.position, new_value)
            else:
                bar.position = new_value
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)
        if self.loaded:
            self._want_around_view()

    def on_resize(self) -> None:
        self._scroll_cursor_into_view()
        if self.loaded:
            self._want_around_view()

    # -- cursor --------------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + HEADER_ROWS)
        self.refresh_line(new + HEADER_ROWS)
        self._scroll_cursor_into_view()
        self._want_around_view()
        self._post_highlight()

    def _post_highlight(self) -> None:
        # Only when what the footer offers changes: a bindings refresh re-composes the footer.
        can_open = self.cursor_row is not None
        if can_open != self._could_open:
            self._could_open = can_open
            self.refresh_bindings()
        self.post_message(self.Highlighted(self.cursor_row, self.cursor, self.total))

    def _scroll_cursor_into_view(self) -> None:
        """force: right after a reload the scroll bar is not shown yet (until the next
        refresh), and Textual would refuse to scroll a widget without one."""
        top, height = self.first_visible_row, self.visible_rows
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True, force=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True, force=True)

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Open is shown dimmed while there is no row under the cursor."""
        if action == "open" and self.cursor_row is None:
            return None
        return True

    def action_noop(self) -> None:
        """Rows never scroll sideways; the inherited sideways keys do nothing here."""

    def action_mark(self) -> None:
        """Mark (or unmark) the row under the cursor, then go to the next row."""
        row = self.cursor_row
        if row is None:
            return
        self.marked.symmetric_difference_update({row.id})
        self.refresh_line(self.cursor + HEADER_ROWS)
        self.post_message(self.MarksChanged(frozenset(self.marked)))
        self.action_cursor_down()

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self.refresh()
            self.post_message(self.MarksChanged(frozenset()))

    @property
    def chosen_ids(self) -> list[int]:
        """What an action applies to: the marked rows, else the row under the cursor."""
        if self.marked:
            return sorted(self.marked)
        row = self.cursor_row
        return [row.id] if row is not None else []

    def action_open(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.Opened(row.id))

    def refresh_ages(self) -> None:
        """Ages change with the clock, not with the data."""
        self.refresh()
