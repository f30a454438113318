"""Worker status (F76): every worker the database knows (so one in another process or on
another host shows too), mail accepted lately, the outbox, and the mail stored with a
processing error, each reprocessable with one key.

Heartbeats are not announced as changes (they would wake every screen every few seconds), so
this screen reads again on a timer as well as on changes.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ReprocessRecord, WorkerOverviewRecord
from tui_helpdesk.services import reprocess, workers
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.format import size
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.widgets.safe_text import safe_text

REFRESH_SECONDS = 5.0
# Fixed widths: the layout does not wait on measuring the rows
WORKER_COLUMNS = (("Worker", 18), ("Listening on", 21), ("State", 5), ("Heartbeat", 9),
                  ("1 min", 6), ("1 hour", 7), ("Accepted", 9), ("Errors", 6),
                  ("Last error", 30))  # fmt: skip
FAILED_COLUMNS = (("Id", 5), ("Received", 11), ("Mailbox", 18), ("From", 18), ("Subject", 22),
                  ("Error", 28))  # fmt: skip


class OverviewLoaded(Message):
    def __init__(self, record: WorkerOverviewRecord) -> None:
        super().__init__()
        self.record = record


class OverviewFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Reprocessed(Message):
    def __init__(self, result: ReprocessRecord | None, refusal: str = "") -> None:
        super().__init__()
        self.result, self.refusal = result, refusal


ERROR_CELL = 36  # the full error of the highlighted message is shown under the table


def _short(value: str, width: int = ERROR_CELL) -> Text:
    text = safe_text(value, one_line=True)
    text.truncate(width, overflow="ellipsis")
    return text


def heartbeat_age(seconds: float) -> str:
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s ago"
    if whole < 7200:
        return f"{whole // 60}m ago"
    if whole < 172800:
        return f"{whole // 3600}h ago"
    return f"{whole // 86400}d ago"


def _stamp(value: datetime | None) -> str:
    """MM-DD HH:MM UTC (the detail line under the table gives the year)."""
    return value.strftime("%m-%d %H:%M") if value else "never"


class WorkersScreen(Screen[None]):
    """Workers, intake, outbox and failed mail; `p` reprocesses the highlighted message."""

    DEFAULT_CSS = """
    WorkersScreen #workers-title { height: auto; padding: 0 1; background: $panel; }
    WorkersScreen #workers-body { height: 1fr; }
    WorkersScreen DataTable { height: auto; max-height: 12; margin: 0 1; }
    WorkersScreen .workers-heading { height: auto; padding: 1 1 0 1; text-style: bold; }
    WorkersScreen #workers-intake, WorkersScreen #workers-outbox-errors,
    WorkersScreen #workers-none, WorkersScreen #workers-failed-detail {
        height: auto; padding: 0 1;
    }
    WorkersScreen #workers-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="workers.back",
                tooltip="Back to the previous screen"),
        Binding("p", "reprocess", "Reprocess", id="workers.reprocess",
                tooltip="Process the highlighted failed message again from its raw bytes"),
        Binding("r", "refresh", "Refresh", id="workers.refresh", tooltip="Read the status again"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__(id="workers")
        self.record: WorkerOverviewRecord | None = None
        self.shown = False  # the last load is on screen (tests wait on it)
        self.busy = False

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    @property
    def failed_table(self) -> DataTable[object]:
        return self.query_one("#workers-failed", DataTable)

    def compose(self) -> ComposeResult:
        yield Static(Text("Workers", style="bold"), id="workers-title")
        with VerticalScroll(id="workers-body"):
            yield DataTable(id="workers-list", cursor_type="row", zebra_stripes=True)
            yield Static("", id="workers-none")
            yield Static("", id="workers-intake")
            yield Static("", id="workers-outbox-errors")
            yield Static("Mail stored with a processing error", classes="workers-heading")
            yield DataTable(id="workers-failed", cursor_type="row", zebra_stripes=True)
            yield Static("", id="workers-failed-detail")
        yield Static("Loading…", id="workers-status")
        yield Footer()

    def on_mount(self) -> None:
        for table, columns in ((self.query_one("#workers-list", DataTable), WORKER_COLUMNS),
                               (self.failed_table, FAILED_COLUMNS)):  # fmt: skip
            for label, width in columns:
                table.add_column(label, width=width)
        self.failed_table.focus()
        self.load()
        self.set_interval(REFRESH_SECONDS, self.load)

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("message: reprocess", "Process the highlighted failed message again",
                           self.action_reprocess),
            PaletteCommand("workers: refresh", "Read the status again", self.action_refresh),
            PaletteCommand("workers: back", "Back to the previous screen", self.action_back),
        ]  # fmt: skip

    @work(thread=True, exclusive=True, exit_on_error=False, group="workers-load")
    def load(self) -> None:
        now = self.helpdesk.now()
        try:
            found = self.helpdesk.data.read(
                lambda session, actor: workers.overview(session, actor, now=now)
            )
        except HelpdeskError as error:
            self.post_message(OverviewFailed(error.message))
            return
        self.post_message(OverviewLoaded(found))

    def on_overview_loaded(self, message: OverviewLoaded) -> None:
        record = self.record = message.record
        listed = self.query_one("#workers-list", DataTable)
        listed.clear()
        for w in record.workers:
            state = Text("up", style="bold green") if w.up else Text("DOWN", style="bold red")
            listed.add_row(
                safe_text(f"{w.name} (pid {w.pid})", one_line=True),
                safe_text(w.address or "-", one_line=True), state,
                heartbeat_age(w.heartbeat_age_seconds), f"{w.accepted_last_minute:,}",
                f"{w.accepted_last_hour:,}", f"{w.accepted_total:,}",
                f"{w.errors_total:,}", _short(w.last_error or "-"),
            )  # fmt: skip
        listed.display = bool(record.workers)
        none = "" if record.workers else (
            "No worker has reported to this database: mail is not being received. "
            "Start one with `tui-helpdesk worker` (or run the TUI with its own)."
        )  # fmt: skip
        self.query_one("#workers-none", Static).update(Text(none, style="bold red"))
        self.query_one("#workers-none", Static).display = not record.workers
        intake = Text(end="")
        intake.append("All workers accepted: ", style="bold")
        intake.append(f"{record.accepted_last_minute:,} in the last minute, "
                      f"{record.accepted_last_hour:,} in the last hour   ")  # fmt: skip
        intake.append("Outbox: ", style="bold")
        intake.append(f"{record.outbox_queued:,} queued, ")
        intake.append(f"{record.outbox_failed:,} failed",
                      style="bold red" if record.outbox_failed else "")  # fmt: skip
        self.query_one("#workers-intake", Static).update(intake)
        errors = Text(end="")
        for line in record.outbox_errors:
            errors.append("outbox error: ", style="red")
            errors.append_text(safe_text(line, one_line=True))
            errors.append("\n")
        errors.rstrip()
        self.query_one("#workers-outbox-errors", Static).update(errors)
        self._fill_failed(record)
        self._show_failed_detail()
        self._status()
        self.refresh_bindings()  # reprocess is enabled while a failed message is highlighted
        self.call_after_refresh(self._mark_shown)

    def _mark_shown(self) -> None:
        self.shown = True

    def _fill_failed(self, record: WorkerOverviewRecord) -> None:
        table = self.failed_table
        keep = self._highlighted_id()
        table.clear()
        for m in record.failed_messages:
            table.add_row(
                str(m.id), _stamp(m.received_at), _short(m.mailbox, 18),
                _short(m.envelope_from or "<>", 18), _short(m.subject or "(no subject)", 22),
                _short(m.error, 28), key=str(m.id),
            )  # fmt: skip
        if keep is not None and str(keep) in {str(m.id) for m in record.failed_messages}:
            table.move_cursor(row=table.get_row_index(str(keep)), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "workers-failed":
            self._show_failed_detail()
            self.refresh_bindings()

    def _show_failed_detail(self) -> None:
        """The highlighted failed message in full: where it came from and its error."""
        message_id = self._highlighted_id()
        record = self.record
        found = [m for m in record.failed_messages if m.id == message_id] if record else []
        text = Text(end="")
        if found:
            m = found[0]
            text.append(f"Message {m.id}", style="bold")
            text.append(f" · received {m.received_at:%Y-%m-%d %H:%M} UTC · {size(m.raw_size)}"
                        f" · conversation #{m.conversation_id} · from ")  # fmt: skip
            text.append_text(safe_text(m.envelope_from or "<>", one_line=True))
            text.append("\n")
            text.append_text(safe_text(m.error, "red"))
        self.query_one("#workers-failed-detail", Static).update(text)

    def _highlighted_id(self) -> int | None:
        table = self.failed_table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def _status(self, text: str = "") -> None:
        record = self.record
        failed = len(record.failed_messages) if record else 0
        line = text or (f"{failed:,} failed message{'' if failed == 1 else 's'}"
                        + (" · p reprocess the highlighted one" if failed else ""))  # fmt: skip
        self.query_one("#workers-status", Static).update(safe_text(line, one_line=True))

    def on_overview_failed(self, message: OverviewFailed) -> None:
        self.query_one("#workers-status", Static).update(safe_text(message.text, "bold red"))

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Reprocess is shown dimmed while no failed message is highlighted."""
        if action == "reprocess" and (self.busy or self._highlighted_id() is None):
            return None
        return True

    def action_reprocess(self) -> None:
        message_id = self._highlighted_id()
        if message_id is None or self.busy:
            return
        self.busy = True
        self.refresh_bindings()
        self._status(f"Reprocessing message {message_id}…")
        self._reprocess_worker(message_id)

    @work(thread=True, exit_on_error=False, group="workers-reprocess")
    def _reprocess_worker(self, message_id: int) -> None:
        data = self.helpdesk.data
        try:
            result = data.write(
                lambda session, actor: reprocess.reprocess(
                    session, data.settings, actor, message_id
                )
            )
        except HelpdeskError as error:
            self.post_message(Reprocessed(None, error.message))
            return
        self.post_message(Reprocessed(result))

    def on_reprocessed(self, message: Reprocessed) -> None:
        self.busy = False
        self.refresh_bindings()
        result = message.result
        if result is None:
            self.notify(message.refusal, title="Not reprocessed", severity="error", markup=False)
        elif result.error:
            self.notify(f"Message {result.message_id} failed again: {result.error}",
                        title="Reprocessed", severity="warning", markup=False)  # fmt: skip
        else:
            conversations = ", ".join(f"#{c}" for c in result.conversation_ids)
            self.notify(f"Message {result.message_id} stored in conversation {conversations}",
                        title="Reprocessed", markup=False)  # fmt: skip
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def palette_commands(app: App[object]) -> list[PaletteCommand]:
    """What the admin menu and the app's palette offer to open this screen."""
    return [
        PaletteCommand("admin: workers", "Worker health, outbox and failed mail",
                       lambda: app.push_screen(WorkersScreen())),
    ]  # fmt: skip
