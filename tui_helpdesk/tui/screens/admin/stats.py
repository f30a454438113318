"""Stats (F60): per queue and per agent tables, and the last 30 days as a chart.

Everything comes from services.stats (SQL aggregates) in one read on a worker thread; the
chart is textual-plotext: conversations received and resolved per day.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import StatsRecord, UserRecord
from tui_helpdesk.services import stats
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.widgets.safe_text import safe_text

# Short headers: the table fits 80 columns (1st reply and resolution are medians)
# (header, width): the first column's widest; the rest hold numbers and fit 80 columns
QUEUE_COLUMNS = (("Queue", 14), ("Open", 4), ("Unassigned", 10), ("In today", 8),
                 ("Done today", 10), ("1st reply", 9), ("Resolution", 10))  # fmt: skip
AGENT_COLUMNS = (("Agent", 40), ("Handled", 8), ("1st reply", 9))
SPOOFING_COLUMNS = (("Mailbox", 40), ("Possible spoofing", 17))


class StatsLoaded(Message):
    def __init__(self, record: StatsRecord) -> None:
        super().__init__()
        self.record = record


class StatsFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def _number(value: int) -> Text:
    return Text(f"{value:,}", justify="right")


def _median(seconds: float | None) -> Text:
    return Text(stats.duration(seconds), justify="right")


def stats_table(columns: tuple[tuple[str, int], ...], rows: list[tuple[Text, ...]]) -> Table:
    """A plain table (the numbers are read, not selected): lighter than a DataTable widget,
    so the screen's first frame comes sooner. The first column stretches, numbers align right."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, expand=False, show_edge=False,
                  header_style="bold")  # fmt: skip
    for position, (label, width) in enumerate(columns):
        if position:
            table.add_column(label, justify="right", no_wrap=True)
        else:
            table.add_column(label, min_width=min(width, 10), max_width=width, no_wrap=True,
                             overflow="ellipsis")  # fmt: skip
    for row in rows:
        table.add_row(*row)
    return table


class StatsScreen(Screen[None]):
    """How the helpdesk is doing: queues, agents, and the last 30 days."""

    DEFAULT_CSS = """
    StatsScreen #stats-title { height: auto; padding: 0 1; background: $panel; }
    StatsScreen #stats-body { height: 1fr; }
    StatsScreen .stats-table { height: auto; margin: 0 1; }
    StatsScreen .stats-heading { height: auto; padding: 1 1 0 1; text-style: bold; }
    StatsScreen #stats-chart { height: 14; min-height: 10; margin: 0 1; }
    StatsScreen #stats-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="stats.back", tooltip="Back to the previous screen"),
        Binding("r", "refresh", "Refresh", id="stats.refresh", tooltip="Count everything again"),
    ]

    def __init__(self) -> None:
        super().__init__(id="stats")
        self.record: StatsRecord | None = None
        self.shown = False  # the numbers of the last load are on screen (tests wait on it)

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(Text("Stats", style="bold"), id="stats-title")
        with VerticalScroll(id="stats-body"):
            yield Static("Queues", classes="stats-heading")
            yield Static("", id="stats-queues", classes="stats-table")
            yield Static("Last 30 days", classes="stats-heading", id="stats-chart-heading")
            yield PlotextPlot(id="stats-chart")
            yield Static("Agents", classes="stats-heading", id="stats-agents-heading")
            yield Static("", id="stats-agents", classes="stats-table")
            yield Static("", classes="stats-heading", id="stats-spoofing-heading")
            yield Static("", id="stats-spoofing", classes="stats-table")
        yield Static("Loading…", id="stats-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stats-spoofing").display = False
        self.query_one("#stats-spoofing-heading").display = False
        self.query_one("#stats-body", VerticalScroll).focus()
        self.load()

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("stats: refresh", "Count everything again", self.action_refresh),
            PaletteCommand("stats: back", "Back to the previous screen", self.action_back),
        ]

    @work(thread=True, exclusive=True, exit_on_error=False, group="stats-load")
    def load(self) -> None:
        now = self.helpdesk.now()
        try:
            found = self.helpdesk.data.read(
                lambda session, actor: stats.stats(session, actor, now=now)
            )
        except HelpdeskError as error:
            self.post_message(StatsFailed(error.message))
            return
        self.post_message(StatsLoaded(found))  # fmt: skip

    def on_stats_loaded(self, message: StatsLoaded) -> None:
        record = self.record = message.record
        self.shown = False
        queues = [
            (safe_text(q.queue, one_line=True), _number(q.open), _number(q.unassigned),
             _number(q.received_today), _number(q.resolved_today),
             _median(q.median_first_response), _median(q.median_resolution))
            for q in record.queues
        ]  # fmt: skip
        self.query_one("#stats-queues", Static).update(stats_table(QUEUE_COLUMNS, queues))
        agents = [
            (safe_text(f"{a.name} <{a.email}>", one_line=True), _number(a.handled),
             _median(a.median_first_response))
            for a in record.agents
        ]  # fmt: skip
        self.query_one("#stats-agents", Static).update(stats_table(AGENT_COLUMNS, agents))
        spoofing = [(safe_text(box, one_line=True), _number(n)) for box, n in record.spoofing]
        self.query_one("#stats-spoofing", Static).update(stats_table(SPOOFING_COLUMNS, spoofing))
        self.query_one("#stats-spoofing", Static).display = bool(record.spoofing)
        heading = "Possible spoofing per mailbox" if record.spoofing else ""
        self.query_one("#stats-spoofing-heading", Static).update(heading)
        self.query_one("#stats-spoofing-heading", Static).display = bool(record.spoofing)
        self.query_one("#stats-chart-heading", Static).update(
            f"Last {record.period_days} days ({record.timezone}): received and resolved per day"
        )
        self._draw_chart(record)
        self.call_after_refresh(self._mark_shown)
        self.query_one("#stats-status", Static).update(
            Text(
                f"Updated {record.generated_at.strftime('%Y-%m-%d %H:%M:%S')} UTC · "
                f"medians over the last {record.period_days} days"
            )
        )

    def _mark_shown(self) -> None:
        self.shown = True

    def _draw_chart(self, record: StatsRecord) -> None:
        chart = self.query_one("#stats-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        days = list(range(1, len(record.days) + 1))
        plt.plot(days, [d.received for d in record.days], label="received", marker="braille")
        plt.plot(days, [d.resolved for d in record.days], label="resolved", marker="braille")
        ticks = days[:: max(1, len(days) // 5)]
        plt.xticks(ticks, [record.days[n - 1].day[5:] for n in ticks])
        top = max(1, *(d.received for d in record.days), *(d.resolved for d in record.days))
        step = max(1, -(-top // 4))  # whole conversations: at most five ticks
        plt.ylim(0, top)
        plt.yticks(list(range(0, top + 1, step)))
        chart.refresh()

    def on_stats_failed(self, message: StatsFailed) -> None:
        self.query_one("#stats-status", Static).update(safe_text(message.text, "bold red"))

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def palette_commands(app: App[object]) -> list[PaletteCommand]:
    """What the admin menu and the app's palette offer to open this screen."""
    return [
        PaletteCommand("admin: stats", "Queues, agents and the last 30 days",
                       lambda: app.push_screen(StatsScreen())),
    ]  # fmt: skip


def visible_to(session: object, actor: UserRecord) -> bool:
    """The admin menu lists Stats for admins and queue members (services.stats decides)."""
    return stats.may_view(session, actor)  # type: ignore[arg-type]
