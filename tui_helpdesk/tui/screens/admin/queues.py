"""Queues (F30-F34): list and form, linked mailboxes and the default, members with roles, the
assignment rule, working hours with the outside-hours message, and the routing rules in order
with a dry run on a sample message.

Which queues are listed is the services' answer (global admins: all; queue admins: theirs).
Every change is one service call; a refusal shows the service's own message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.color import Color, ColorParseError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from tui_helpdesk.errors import HelpdeskError, Invalid
from tui_helpdesk.records import (
    AssignmentRecord,
    QueueHoursRecord,
    QueueRecord,
    RoutingRuleRecord,
    RuleTestRecord,
    UserRecord,
)
from tui_helpdesk.services import hours, mailboxes, queues, routing, users
from tui_helpdesk.services.assignment import admin as assignment
from tui_helpdesk.services.vocabulary import (
    ASSIGNMENT_RULES,
    DAYS,
    MATCH_MODES,
    MEMBER_ROLES,
    PRIORITIES,
)
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.modals.admin_dialogs import ConfirmModal, Field, FormModal, PickerModal
from tui_helpdesk.tui.widgets.safe_text import safe_text

TABS = ("mailboxes", "members", "assignment", "hours", "routing")
YES_NO = ("yes", "no")

# action -> the tab it acts on (hidden from the footer on the other tabs)
TAB_OF = {
    "link_mailbox": "mailboxes", "unlink_mailbox": "mailboxes", "make_default": "mailboxes",
    "add_member": "members", "member_role": "members", "remove_member": "members",
    "assignment": "assignment", "member_weight": "assignment",
    "hours": "hours", "outside_hours": "hours",
    "rule_add": "routing", "rule_edit": "routing", "rule_up": "routing", "rule_down": "routing",
    "rule_toggle": "routing", "rule_delete": "routing", "rule_test": "routing",
}  # fmt: skip


# --- the text the forms take, in the services' shapes ---------------------------------------


def parse_days(text: str, *, field: str) -> list[str]:
    """ "mon,wed-fri" → ["mon", "wed", "thu", "fri"] (a range may wrap: fri-mon)."""
    chosen: set[str] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise Invalid(
                f"{field}: {part!r} is not a day or a range like mon-fri ({', '.join(DAYS)})",
                field=field,
            )
        start, end = DAYS.index(first), DAYS.index(last or first)
        chosen.update(DAYS[(start + i) % 7] for i in range((end - start) % 7 + 1))
    return [day for day in DAYS if day in chosen]


def parse_ranges(text: str, *, field: str) -> list[list[str]]:
    """ "09:00-12:00, 13:00-17:00" → [["09:00", "12:00"], ...]; "closed" or "" → []."""
    if text.strip().lower() in ("", "closed"):
        return []
    ranges = []
    for part in text.split(","):
        start, dash, end = part.strip().partition("-")
        if not dash or not start.strip() or not end.strip():
            raise Invalid(f"{field}: {part.strip()!r} is not a range like 09:00-17:00", field=field)
        ranges.append([start.strip(), end.strip()])
    return ranges


def parse_slots(text: str) -> list[dict[str, Any]]:
    """ "mon-fri 09:00-13:00; sat 10:00-12:00" → the service's slots ("" clears them)."""
    slots: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        days, _, times = part.partition(" ")
        if not times.strip():
            raise Invalid(f"slots: write DAYS HOURS like mon-fri 09:00-13:00, got {part!r}",
                          field="slots")  # fmt: skip
        day_list = parse_days(days, field="slots")
        slots += [
            {"days": day_list, "start": start, "end": end}
            for start, end in parse_ranges(times, field="slots")
        ]
    return slots


def slots_text(slots: tuple[dict[str, Any], ...]) -> str:
    return "; ".join(
        f"{','.join(s.get('days', []))} {s.get('start', '')}-{s.get('end', '')}" for s in slots
    )


def parse_conditions(text: str) -> list[dict[str, str]]:
    """One condition a line: FIELD OP VALUE, e.g. "subject contains invoice"."""
    conditions = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise Invalid(
                f"conditions: write FIELD OP VALUE a line, like subject contains invoice; "
                f"got {line!r}",
                field="conditions",
            )
        conditions.append({"field": parts[0], "op": parts[1], "value": parts[2]})
    return conditions


def parse_whole(value: str, *, field: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise Invalid(f"{field}: give a whole number, got {value!r}", field=field) from None


def swatch(colour: str) -> str:
    """The queue's colour as a style; a name the terminal does not know shows plain."""
    try:
        Color.parse(colour)
    except ColorParseError:
        return ""
    return colour


def conditions_text(rule: RoutingRuleRecord) -> str:
    joiner = " and " if rule.match == "all" else " or "
    return joiner.join(f"{c.field} {c.op} {c.value}" for c in rule.conditions)


def actions_text(rule: RoutingRuleRecord) -> str:
    parts = []
    if rule.queue:
        parts.append(f"→ {rule.queue}")
    if rule.priority:
        parts.append(f"priority {rule.priority}")
    if rule.tag:
        parts.append(f"tag {rule.tag}")
    return ", ".join(parts)


def rule_test_text(result: RuleTestRecord) -> Text:
    """The dry run's answer: each condition, the verdict, and which rule would decide."""
    text = Text()
    verdict = "matches" if result.matched else "does not match"
    text.append_text(safe_text(f"Rule {result.rule!r} {verdict}", "bold", one_line=True))
    if not result.enabled:
        text.append(" (disabled: it decides nothing until enabled)", style="yellow")
    for condition in result.conditions:
        mark, style = ("✓", "green") if condition.matched else ("✗", "red")
        text.append(f"\n {mark} ", style=style)
        text.append_text(
            safe_text(f"{condition.field} {condition.op} {condition.value}", one_line=True)
        )
    if result.matched:
        would = [f"queue {result.queue}"] if result.queue else []
        would += [f"priority {result.priority}"] if result.priority else []
        would += [f"tag {result.tag}"] if result.tag else []
        text.append("\nIt would set: ")
        text.append_text(safe_text(", ".join(would) or "nothing", one_line=True))
    text.append("\nFirst match among all enabled rules: ")
    text.append_text(
        safe_text(result.deciding_rule or "none (the mailbox's default queue)", one_line=True)
    )
    return text


# --- what the screen reads -------------------------------------------------------------------


@dataclass(frozen=True)
class QueuesView:
    queues: tuple[QueueRecord, ...]
    assignment: AssignmentRecord | None
    hours: QueueHoursRecord | None
    rules: tuple[RoutingRuleRecord, ...] | None
    rules_refusal: str  # the service's message when the rules are not the actor's to see


def read_view(session: Any, actor: UserRecord, selected: int | None) -> QueuesView:
    found = tuple(queues.managed(session, actor))
    queue = next((q for q in found if q.id == selected), found[0] if found else None)
    try:
        rules: tuple[RoutingRuleRecord, ...] | None = tuple(routing.list_rules(session, actor))
        refusal = ""
    except HelpdeskError as error:
        rules, refusal = None, error.message
    if queue is None:
        return QueuesView(found, None, None, rules, refusal)
    return QueuesView(
        found,
        assignment.get_assignment(session, actor, queue.id),
        hours.get_hours(session, actor, queue.id),
        rules,
        refusal,
    )


class QueuesScreen(Screen[None]):
    """Left: the queues the actor manages. Right: the chosen queue, one tab per concern."""

    DEFAULT_CSS = """
    QueuesScreen #queues-title, QueuesScreen #queue-summary, QueuesScreen #queues-message {
        height: auto; padding: 0 1;
    }
    QueuesScreen #queues-title { background: $panel; }
    QueuesScreen #queues-body { height: 1fr; }
    QueuesScreen #queue-list { width: 22; height: 1fr; border-right: solid $panel-lighten-2; }
    QueuesScreen #queue-detail { width: 1fr; height: 1fr; }
    QueuesScreen TabbedContent { height: 1fr; }
    QueuesScreen TabPane { padding: 0; height: 1fr; }
    QueuesScreen .pane-summary { height: auto; padding: 0 1; }
    QueuesScreen .pane-table { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="queues.back", tooltip="Back to the admin menu"),
        Binding("n", "create", "New queue", id="queues.create",
                tooltip="Create a queue: name, description, colour"),
        Binding("e", "edit", "Edit queue", id="queues.edit",
                tooltip="Change the queue's name, description or colour"),
        Binding("1", "tab('mailboxes')", "Mailboxes", show=False, id="queues.tab_mailboxes",
                tooltip="Show the linked mailboxes"),
        Binding("2", "tab('members')", "Members", show=False, id="queues.tab_members",
                tooltip="Show the members and their roles"),
        Binding("3", "tab('assignment')", "Assignment", show=False, id="queues.tab_assignment",
                tooltip="Show who gets new conversations"),
        Binding("4", "tab('hours')", "Hours", show=False, id="queues.tab_hours",
                tooltip="Show the working hours"),
        Binding("5", "tab('routing')", "Routing", show=False, id="queues.tab_routing",
                tooltip="Show the routing rules"),
        Binding("l", "link_mailbox", "Link mailbox", id="queues.link_mailbox",
                tooltip="Link an active mailbox (the first linked becomes the default)"),
        Binding("d", "make_default", "Make default", id="queues.make_default",
                tooltip="Make the highlighted mailbox the queue's default sender"),
        Binding("u", "unlink_mailbox", "Unlink", id="queues.unlink_mailbox",
                tooltip="Unlink the highlighted mailbox"),
        Binding("m", "add_member", "Add member", id="queues.add_member",
                tooltip="Pick a user and a role to add to the queue"),
        Binding("o", "member_role", "Agent/admin", id="queues.member_role",
                tooltip="Switch the highlighted member between agent and queue admin"),
        Binding("x", "remove_member", "Remove member", id="queues.remove_member",
                tooltip="Remove the highlighted member from the queue"),
        Binding("s", "assignment", "Rule", id="queues.assignment",
                tooltip="Assignment rule, sticky days and fallback user"),
        Binding("w", "member_weight", "Weight/slots", id="queues.member_weight",
                tooltip="Weight (percentage rule) and time slots (time rule) of the member"),
        Binding("h", "hours", "Edit hours", id="queues.hours",
                tooltip="Working hours: on/off, timezone, weekly schedule, holidays"),
        Binding("O", "outside_hours", "Outside-hours msg", id="queues.outside_hours",
                tooltip="The message sent to mail that arrives outside working hours"),
        Binding("a", "rule_add", "Add rule", id="queues.rule_add",
                tooltip="Add a routing rule (at the end: tried last)"),
        Binding("c", "rule_edit", "Change rule", id="queues.rule_edit",
                tooltip="Change the highlighted routing rule"),
        Binding("t", "rule_test", "Test rule", id="queues.rule_test",
                tooltip="Try the highlighted rule on a sample message (nothing is stored)"),
        Binding("K,shift+up", "rule_up", "Move up", id="queues.rule_up",
                tooltip="Try the highlighted rule one place earlier"),
        Binding("J,shift+down", "rule_down", "Move down", id="queues.rule_down",
                tooltip="Try the highlighted rule one place later"),
        Binding("space", "rule_toggle", "On/off", id="queues.rule_toggle",
                tooltip="Enable or disable the highlighted rule"),
        Binding("delete", "rule_delete", "Delete rule", id="queues.rule_delete",
                tooltip="Delete the highlighted rule (asks first)"),
        Binding("r", "refresh", "Refresh", show=False, id="queues.refresh",
                tooltip="Read everything again"),
    ]  # fmt: skip

    def __init__(self, *, tab: str = "mailboxes", then: str | None = None) -> None:
        """`then` names an action to run once loaded (the palette's "queue: add member")."""
        super().__init__(id="queues")
        self.start_tab = tab
        self.then = then
        self.view: QueuesView | None = None
        self.selected: int | None = None
        self._generation = 0

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(Text("Queues", style="bold"), id="queues-title")
        with Horizontal(id="queues-body"):
            yield self._table("queue-list", "Queue", "Members")
            with Vertical(id="queue-detail"):
                yield Static("Loading…", id="queue-summary")
                with TabbedContent(initial=f"tab-{self.start_tab}"):
                    with TabPane("1 Mailboxes", id="tab-mailboxes"):
                        yield self._table("queue-mailboxes", "Default", "Mailbox", "Status")
                    with TabPane("2 Members", id="tab-members"):
                        yield self._table("queue-members", "Name", "Email", "Role", "Availability")
                    with TabPane("3 Assign", id="tab-assignment"):
                        yield Static("", id="assignment-summary", classes="pane-summary")
                        yield self._table(
                            "assignment-members", "Member", "Availability", "Weight", "Slots"
                        )
                    with TabPane("4 Hours", id="tab-hours"):
                        yield Static("", id="hours-summary", classes="pane-summary")
                        yield self._table("hours-days", "Day", "Open")
                    with TabPane("5 Routing", id="tab-routing"):
                        yield Static("", id="routing-summary", classes="pane-summary")
                        yield self._table("routing-rules", "#", "On", "Rule", "When", "Then")
        yield Static("", id="queues-message")
        yield Footer()

    def _table(self, table_id: str, *columns: str) -> DataTable[Any]:
        table: DataTable[Any] = DataTable(id=table_id, cursor_type="row", classes="pane-table")
        table.add_columns(*columns)
        return table

    def on_mount(self) -> None:
        self.query_one("#queue-list", DataTable).focus()
        self.reload()

    # -- reading -------------------------------------------------------------------------------

    def reload(self) -> None:
        self._generation += 1
        self._load(self._generation, self.selected)

    @work(thread=True, exclusive=True, exit_on_error=False, group="queues-load")
    def _load(self, generation: int, selected: int | None) -> None:
        try:
            view = self.helpdesk.data.read(lambda s, a: read_view(s, a, selected))
        except HelpdeskError as error:
            self.app.call_from_thread(self.show_message, error.message)
            return
        self.app.call_from_thread(self._show, generation, view)

    def _show(self, generation: int, view: QueuesView) -> None:
        if generation != self._generation:
            return
        self.view = view
        queue = self.queue
        self.selected = queue.id if queue else None
        title = Text("Queues", style="bold")
        title.append(f" · {len(view.queues)} you manage", style="dim")
        self.query_one("#queues-title", Static).update(title)
        self._fill_queue_list(view)
        self._fill_detail(view, queue)
        self.refresh_bindings()
        if self.then is not None:
            then, self.then = self.then, None
            self.call_later(self.run_action, then)

    @property
    def queue(self) -> QueueRecord | None:
        if self.view is None:
            return None
        return next((q for q in self.view.queues if q.id == self.selected),
                    self.view.queues[0] if self.view.queues else None)  # fmt: skip

    def _fill(self, table_id: str, rows: list[tuple[str, list[Any]]]) -> None:
        """Replace a table's rows, keeping the cursor on the same key when it is still there."""
        table = self.query_one(f"#{table_id}", DataTable)
        current = self._key(table_id)
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        keys = [key for key, _ in rows]
        if current in keys:
            table.move_cursor(row=keys.index(current), animate=False)

    def _key(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if table.row_count == 0:
            return None
        row = min(table.cursor_row, table.row_count - 1)
        return str(table.coordinate_to_cell_key((row, 0)).row_key.value)

    def _fill_queue_list(self, view: QueuesView) -> None:
        rows = []
        for queue in view.queues:
            name = Text("● ", style=swatch(queue.colour)) if queue.colour else Text("  ")
            name.append_text(safe_text(queue.name, one_line=True))
            rows.append((str(queue.id), [name, str(len(queue.members))]))
        table = self.query_one("#queue-list", DataTable)
        self._fill("queue-list", rows)
        if self.selected is not None and str(self.selected) in [k for k, _ in rows]:
            table.move_cursor(row=[k for k, _ in rows].index(str(self.selected)), animate=False)

    def _fill_detail(self, view: QueuesView, queue: QueueRecord | None) -> None:
        summary = self.query_one("#queue-summary", Static)
        if queue is None:
            summary.update(Text(
                "No queue you manage yet. n creates one (global admins); a queue admin sees "
                "the queues they administer.", style="dim",
            ))  # fmt: skip
        else:
            line = safe_text(queue.name, "bold", one_line=True)
            if queue.colour:
                line.append("  ● ", style=swatch(queue.colour))
                line.append(queue.colour, style="dim")
            if queue.description:
                line.append("\n")
                line.append_text(safe_text(queue.description, "dim", one_line=True))
            line.append("\nDefault sender: ", style="dim")
            line.append(queue.default_mailbox or "none: link a mailbox (l)")
            summary.update(line)
        self._fill("queue-mailboxes", [
            (m.email_address, [Text("★ default", style="bold green") if m.is_default else "",
                               safe_text(m.email_address, one_line=True), m.status])
            for m in (queue.mailboxes if queue else ())
        ])  # fmt: skip
        self._fill("queue-members", [
            (m.email, [safe_text(m.name, one_line=True), safe_text(m.email, one_line=True),
                       Text(m.role, style="bold" if m.role == "admin" else ""), m.availability])
            for m in (queue.members if queue else ())
        ])  # fmt: skip
        self._fill_assignment(view.assignment)
        self._fill_hours(view.hours)
        self._fill_routing(view, queue)

    def _fill_assignment(self, record: AssignmentRecord | None) -> None:
        text = Text()
        if record is not None:
            text.append("Rule: ", style="dim")
            text.append(record.rule, style="bold")
            text.append("  sticky: ", style="dim")
            text.append(f"{record.sticky_days} days" if record.sticky_days else "off")
            text.append("  fallback: ", style="dim")
            text.append_text(safe_text(record.fallback or "none", one_line=True))
        self.query_one("#assignment-summary", Static).update(text)
        self._fill("assignment-members", [
            (m.email, [safe_text(m.email, one_line=True),
                       m.availability if m.active else "inactive",
                       f"{m.weight}%", slots_text(m.slots) or "—"])
            for m in (record.members if record else ())
        ])  # fmt: skip

    def _fill_hours(self, record: QueueHoursRecord | None) -> None:
        text = Text()
        if record is not None:
            text.append("Working hours: ", style="dim")
            text.append("on" if record.enabled else "off (always open)", style="bold")
            text.append(f"  {record.timezone}")
            text.append("\nHolidays: ", style="dim")
            text.append(", ".join(record.holidays) or "none")
            text.append("\nOutside-hours message: ", style="dim")
            if record.outside_hours_enabled:
                text.append_text(safe_text(record.outside_hours_subject or "(no subject)",
                                           one_line=True))  # fmt: skip
            else:
                text.append("off")
        self.query_one("#hours-summary", Static).update(text)
        self._fill("hours-days", [
            (day, [day, ", ".join(f"{a}-{b}" for a, b in record.schedule.get(day, []))
                   or Text("closed", style="dim")])
            for day in (DAYS if record else ())
        ])  # fmt: skip

    def _fill_routing(self, view: QueuesView, queue: QueueRecord | None) -> None:
        summary = self.query_one("#routing-summary", Static)
        if view.rules is None:
            summary.update(safe_text(view.rules_refusal, "yellow"))
            self._fill("routing-rules", [])
            return
        summary.update(Text(
            "Rules of the organisation, tried in order; the first that matches decides. "
            "Bold: rules sending to this queue.", style="dim",
        ))  # fmt: skip
        rows = []
        for rule in view.rules:
            mine = queue is not None and rule.queue == queue.name
            rows.append((str(rule.id), [
                str(rule.position),
                Text("on", style="green") if rule.enabled else Text("off", style="dim"),
                safe_text(rule.name, "bold" if mine else "", one_line=True),
                safe_text(conditions_text(rule), one_line=True),
                safe_text(actions_text(rule), one_line=True),
            ]))  # fmt: skip
        self._fill("routing-rules", rows)

    # -- events --------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#queue-list")
    def _queue_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return  # a row passed while the list was refilled
        chosen = int(str(event.row_key.value))
        if chosen != self.selected:
            self.selected = chosen
            self.reload()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, _event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()

    def on_data_changed(self, _message: DataChanged) -> None:
        self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = TAB_OF.get(action)
        return tab is None or tab == self.active_tab

    @property
    def active_tab(self) -> str:
        tabs = self.query(TabbedContent)
        return tabs.first().active.removeprefix("tab-") if tabs else self.start_tab

    def show_message(self, message: str, *, error: bool = True) -> None:
        self.query_one("#queues-message", Static).update(
            safe_text(message, "bold red" if error else "green")
        )

    # -- running services ---------------------------------------------------------------------

    def write(self, work_: Callable[[Any, UserRecord], Any], done: str = "") -> None:
        """One service call in a worker thread; its refusal is shown as the service wrote it."""
        self._write(work_, done)

    @work(thread=True, exit_on_error=False, group="queues-write")
    def _write(self, work_: Callable[[Any, UserRecord], Any], done: str) -> None:
        try:
            self.helpdesk.data.write(work_)
        except HelpdeskError as error:
            self.app.call_from_thread(self.show_message, error.message)
            return
        self.app.call_from_thread(self._written, done)

    def _written(self, done: str) -> None:
        self.show_message(done, error=False)
        self.reload()

    def _after_form(self, done: str) -> Callable[[Any], None]:
        def closed(result: Any) -> None:
            if result is not None:
                if isinstance(result, QueueRecord):
                    self.selected = result.id
                self.show_message(done, error=False)
                self.reload()

        return closed

    def _need_queue(self) -> QueueRecord | None:
        queue = self.queue
        if queue is None:
            self.show_message("No queue chosen: create one first (n).")
        return queue

    def _need_row(self, table_id: str, what: str) -> str | None:
        key = self._key(table_id)
        if key is None:
            self.show_message(f"No {what} highlighted.")
        return key

    # -- actions: the queue --------------------------------------------------------------------

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand(f"queue: {b.description.lower()}", b.tooltip, self._runner(b.action))
            for b in self.BINDINGS
            if isinstance(b, Binding) and b.action not in ("back",)
        ]

    def _runner(self, action: str) -> Callable[[], Any]:
        def run() -> Any:
            tab = TAB_OF.get(action)
            if tab is not None:
                self.action_tab(tab)
            self.call_later(self.run_action, action)

        return run

    def action_back(self) -> None:
        self.dismiss(None)

    def action_refresh(self) -> None:
        self.reload()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab}"
        tables = {"mailboxes": "queue-mailboxes", "members": "queue-members",
                  "assignment": "assignment-members", "hours": "hours-days",
                  "routing": "routing-rules"}  # fmt: skip
        self.query_one(f"#{tables[tab]}", DataTable).focus()
        self.refresh_bindings()

    def action_create(self) -> None:
        fields = [
            Field("name", "Name", placeholder="Support"),
            Field("description", "Description"),
            Field("colour", "Colour", placeholder="#3366ff or teal"),
        ]
        self.app.push_screen(
            FormModal("New queue", fields, lambda v: lambda s, a: queues.create(
                s, a, name=v["name"], description=v["description"], colour=v["colour"]),
                form_id="queue-form"),
            self._after_form("Queue created."),
        )  # fmt: skip

    def action_edit(self) -> None:
        queue = self._need_queue()
        if queue is None:
            return
        fields = [
            Field("name", "Name", queue.name),
            Field("description", "Description", queue.description),
            Field("colour", "Colour", queue.colour, placeholder="#3366ff or teal"),
        ]
        self.app.push_screen(
            FormModal(f"Edit queue {queue.name}", fields, lambda v: lambda s, a: queues.update(
                s, a, queue.name, name=v["name"], description=v["description"],
                colour=v["colour"]), form_id="queue-form"),
            self._after_form("Queue saved."),
        )  # fmt: skip

    # -- mailboxes ----------------------------------------------------------------------------

    def action_link_mailbox(self) -> None:
        queue = self._need_queue()
        if queue is not None:
            self._pick_mailbox(queue)

    @work(thread=True, exit_on_error=False, group="queues-pick")
    def _pick_mailbox(self, queue: QueueRecord) -> None:
        try:
            found = self.helpdesk.data.read(lambda s, a: mailboxes.list_mailboxes(s, a))
        except HelpdeskError as error:
            self.app.call_from_thread(self.show_message, error.message)
            return
        linked = {m.email_address for m in queue.mailboxes}
        choices = []
        for box in found:
            if box.email_address in linked:
                continue
            label = safe_text(f"{box.email_address}  {box.display_name}", one_line=True)
            label.append(f"  {box.status}", style="dim" if box.status == "active" else "yellow")
            choices.append((box.email_address, label))
        settings = self.helpdesk.data.settings

        def chosen(address: str | None) -> None:
            if address:
                self.write(lambda s, a: queues.add_mailbox(s, settings, a, queue.name, address),
                           f"Linked {address} to {queue.name}.")  # fmt: skip

        self.app.call_from_thread(
            self.app.push_screen, PickerModal(f"Link a mailbox to {queue.name}", choices), chosen
        )

    def action_make_default(self) -> None:
        queue, address = self._need_queue(), self._need_row("queue-mailboxes", "mailbox")
        if queue is not None and address is not None:
            self.write(lambda s, a: queues.set_default(s, a, queue.name, address),
                       f"{address} is now the default of {queue.name}.")  # fmt: skip

    def action_unlink_mailbox(self) -> None:
        queue, address = self._need_queue(), self._need_row("queue-mailboxes", "mailbox")
        if queue is None or address is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda s, a: queues.remove_mailbox(s, a, queue.name, address),
                           f"Unlinked {address}.")  # fmt: skip

        self.app.push_screen(
            ConfirmModal(safe_text(f"Unlink {address} from queue {queue.name}?", one_line=True)),
            answered,
        )

    # -- members ------------------------------------------------------------------------------

    def action_add_member(self) -> None:
        queue = self._need_queue()
        if queue is not None:
            self._pick_user(queue)

    @work(thread=True, exit_on_error=False, group="queues-pick")
    def _pick_user(self, queue: QueueRecord) -> None:
        try:
            found = self.helpdesk.data.read(lambda s, a: users.list_users(s, a))
        except HelpdeskError as error:
            self.app.call_from_thread(self.show_message, error.message)
            return
        members = {m.email for m in queue.members}
        choices = []
        for user in found:
            if user.email in members or not user.active:
                continue
            label = safe_text(f"{user.name} <{user.email}>", one_line=True)
            label.append(f"  {user.role} · {user.availability}", style="dim")
            choices.append((user.email, label))

        def user_chosen(email: str | None) -> None:
            if not email:
                return

            def role_chosen(role: str | None) -> None:
                if role:
                    self.write(lambda s, a: queues.add_member(s, a, queue.name, email, role),
                               f"Added {email} to {queue.name} as {role}.")  # fmt: skip

            self.app.push_screen(
                PickerModal(f"Role of {email} in {queue.name}",
                            [(r, f"{r}: {'manages the queue' if r == 'admin' else 'works it'}")
                             for r in MEMBER_ROLES], current="agent"),
                role_chosen,
            )  # fmt: skip

        self.app.call_from_thread(
            self.app.push_screen, PickerModal(f"Add a member to {queue.name}", choices), user_chosen
        )

    def _member(self) -> tuple[QueueRecord, str] | None:
        queue, email = self._need_queue(), self._need_row("queue-members", "member")
        return (queue, email) if queue is not None and email is not None else None

    def action_member_role(self) -> None:
        chosen = self._member()
        if chosen is None:
            return
        queue, email = chosen
        member = next(m for m in queue.members if m.email == email)
        role = "agent" if member.role == "admin" else "admin"
        self.write(lambda s, a: queues.add_member(s, a, queue.name, email, role),
                   f"{email} is now {role} of {queue.name}.")  # fmt: skip

    def action_remove_member(self) -> None:
        chosen = self._member()
        if chosen is None:
            return
        queue, email = chosen

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda s, a: queues.remove_member(s, a, queue.name, email),
                           f"Removed {email} from {queue.name}.")  # fmt: skip

        self.app.push_screen(
            ConfirmModal(safe_text(f"Remove {email} from queue {queue.name}?", one_line=True)),
            answered,
        )

    # -- assignment ---------------------------------------------------------------------------

    def action_assignment(self) -> None:
        queue = self._need_queue()
        record = self.view.assignment if self.view else None
        if queue is None or record is None:
            return
        fields = [
            Field("rule", "Rule", record.rule, choices=ASSIGNMENT_RULES),
            Field("sticky_days", "Sticky days", str(record.sticky_days),
                  placeholder="0 = off; days a returning customer keeps their agent"),
            Field("fallback", "Fallback user", record.fallback or "",
                  placeholder="email of who gets work when nobody is available"),
        ]  # fmt: skip

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            sticky = parse_whole(v["sticky_days"], field="sticky_days")
            return lambda s, a: assignment.set_assignment(
                s, a, queue.id, rule=v["rule"], sticky_days=sticky,
                fallback=v["fallback"].strip() or None,
            )  # fmt: skip

        self.app.push_screen(
            FormModal(f"Assignment of {queue.name}", fields, submit, form_id="assignment-form"),
            self._after_form("Assignment saved."),
        )

    def action_member_weight(self) -> None:
        queue, email = self._need_queue(), self._need_row("assignment-members", "member")
        record = self.view.assignment if self.view else None
        if queue is None or email is None or record is None:
            return
        member = next(m for m in record.members if m.email == email)
        fields = [
            Field("weights", "Weight (%)", str(member.weight),
                  placeholder="0-100: share of new work under the percentage rule"),
            Field("slots", "Time slots", slots_text(member.slots),
                  placeholder="mon-fri 09:00-13:00; sat 10:00-12:00 (time rule)"),
        ]  # fmt: skip

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            weight = parse_whole(v["weights"], field="weights")
            slots = parse_slots(v["slots"])
            return lambda s, a: assignment.set_assignment(
                s, a, queue.id, weights={email: weight}, slots={email: slots}
            )

        self.app.push_screen(
            FormModal(f"{email} in {queue.name}", fields, submit, form_id="weight-form"),
            self._after_form("Member's assignment saved."),
        )

    # -- hours --------------------------------------------------------------------------------

    def action_hours(self) -> None:
        queue = self._need_queue()
        record = self.view.hours if self.view else None
        if queue is None or record is None:
            return
        fields = [
            Field("enabled", "Working hours", "yes" if record.enabled else "no", choices=YES_NO),
            Field("timezone", "Timezone", record.timezone, placeholder="Europe/Paris"),
            *[
                Field(day, day.title(),
                      ", ".join(f"{a}-{b}" for a, b in record.schedule.get(day, [])),
                      placeholder="closed")
                for day in DAYS
            ],
            Field("holidays", "Holidays", ", ".join(record.holidays), placeholder="none"),
        ]  # fmt: skip

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            schedule = {day: parse_ranges(v[day], field=day) for day in DAYS}
            holidays = [d.strip() for d in v["holidays"].replace(";", ",").split(",") if d.strip()]
            return lambda s, a: hours.set_hours(
                s, a, queue.id, enabled=v["enabled"] == "yes", timezone=v["timezone"].strip(),
                schedule=schedule, holidays=holidays,
            )  # fmt: skip

        self.app.push_screen(
            FormModal(
                f"Working hours of {queue.name}",
                fields,
                submit,
                form_id="hours-form",
                hint="Days: 09:00-12:00, 13:00-17:00 (empty: closed) · holidays: "
                "2026-12-25, 2027-01-01 · ctrl+s saves · escape closes",
            ),
            self._after_form("Working hours saved."),
        )

    def action_outside_hours(self) -> None:
        queue = self._need_queue()
        record = self.view.hours if self.view else None
        if queue is None or record is None:
            return
        fields = [
            Field("outside_hours_enabled", "Send it",
                  "yes" if record.outside_hours_enabled else "no", choices=YES_NO),
            Field("outside_hours_subject", "Subject", record.outside_hours_subject),
            Field("outside_hours_body", "Message", record.outside_hours_body, multiline=True),
        ]  # fmt: skip

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            return lambda s, a: hours.set_hours(
                s, a, queue.id, outside_hours_enabled=v["outside_hours_enabled"] == "yes",
                outside_hours_subject=v["outside_hours_subject"],
                outside_hours_body=v["outside_hours_body"],
            )  # fmt: skip

        self.app.push_screen(
            FormModal(f"Outside-hours message of {queue.name}", fields, submit,
                      form_id="outside-hours-form"),
            self._after_form("Outside-hours message saved."),
        )  # fmt: skip

    # -- routing ------------------------------------------------------------------------------

    def _rule(self) -> RoutingRuleRecord | None:
        key = self._need_row("routing-rules", "rule")
        rules = self.view.rules if self.view and self.view.rules else ()
        return next((r for r in rules if str(r.id) == key), None)

    def _rule_fields(self, rule: RoutingRuleRecord | None, queue: str) -> list[Field]:
        lines = "\n".join(f"{c.field} {c.op} {c.value}" for c in rule.conditions) if rule else ""
        return [
            Field("name", "Name", rule.name if rule else ""),
            Field("match", "Match", rule.match if rule else "all", choices=MATCH_MODES),
            Field("conditions", "Conditions", lines, multiline=True),
            Field("queue", "To queue", (rule.queue or "") if rule else queue),
            Field("priority", "Priority", (rule.priority or "") if rule else "",
                  choices=("", *PRIORITIES)),
            Field("tag", "Tag", (rule.tag or "") if rule else ""),
        ]  # fmt: skip

    RULE_HINT = (
        "Conditions: one a line, FIELD OP VALUE; fields sender_address, sender_domain, subject, "
        "body, recipient or header:Name; ops equals, contains, matches (RE2). ctrl+s saves."
    )

    def action_rule_add(self) -> None:
        queue = self.queue

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            conditions = parse_conditions(v["conditions"])
            return lambda s, a: routing.create_rule(
                s, a, name=v["name"], conditions=conditions, match=v["match"] or "all",
                queue=v["queue"].strip() or None, priority=v["priority"] or None,
                tag=v["tag"].strip() or None,
            )  # fmt: skip

        self.app.push_screen(
            FormModal("New routing rule", self._rule_fields(None, queue.name if queue else ""),
                      submit, hint=self.RULE_HINT, form_id="rule-form"),
            self._after_form("Rule added (tried last; move it with K / J)."),
        )  # fmt: skip

    def action_rule_edit(self) -> None:
        rule = self._rule()
        if rule is None:
            return

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            conditions = parse_conditions(v["conditions"])
            return lambda s, a: routing.update_rule(
                s, a, rule.id, name=v["name"], conditions=conditions, match=v["match"] or "all",
                queue=v["queue"].strip() or None, priority=v["priority"] or None,
                tag=v["tag"].strip() or None,
            )  # fmt: skip

        self.app.push_screen(
            FormModal(f"Rule {rule.position}: {rule.name}", self._rule_fields(rule, ""), submit,
                      hint=self.RULE_HINT, form_id="rule-form"),
            self._after_form("Rule saved."),
        )  # fmt: skip

    def _move(self, step: int) -> None:
        rule = self._rule()
        count = len(self.view.rules or ()) if self.view else 0
        if rule is None or not 1 <= rule.position + step <= count:
            return
        self.write(lambda s, a: routing.move_rule(s, a, rule.id, rule.position + step),
                   f"Rule {rule.name!r} is now number {rule.position + step}.")  # fmt: skip
        # the cursor stays on the rule's key, so it follows the rule to its new place

    def action_rule_up(self) -> None:
        self._move(-1)

    def action_rule_down(self) -> None:
        self._move(+1)

    def action_rule_toggle(self) -> None:
        rule = self._rule()
        if rule is not None:
            state = "disabled" if rule.enabled else "enabled"
            self.write(lambda s, a: routing.update_rule(s, a, rule.id, enabled=not rule.enabled),
                       f"Rule {rule.name!r} {state}.")  # fmt: skip

    def action_rule_delete(self) -> None:
        rule = self._rule()
        if rule is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda s, a: routing.delete_rule(s, a, rule.id),
                           f"Rule {rule.name!r} deleted.")  # fmt: skip

        self.app.push_screen(
            ConfirmModal(safe_text(f"Delete routing rule {rule.name!r}?", one_line=True)), answered
        )

    def action_rule_test(self) -> None:
        rule = self._rule()
        if rule is None:
            return
        fields = [
            Field("sender", "From", placeholder="customer@example.com"),
            Field("recipient", "To", placeholder="support@your-domain"),
            Field("subject", "Subject"),
            Field("body", "Body", multiline=True),
            Field("headers", "Other headers", placeholder="X-Priority: 1"),
        ]

        def submit(v: dict[str, str]) -> Callable[[Any, UserRecord], Any]:
            return lambda s, a: routing.try_rule(s, a, rule.id, **v)

        self.app.push_screen(
            FormModal(f"Test rule {rule.name!r} on a message", fields, submit, dry_run=True,
                      show_result=rule_test_text, form_id="rule-test-form",
                      hint="ctrl+s tries it (nothing is stored or sent) · escape closes"),
        )  # fmt: skip


def palette_commands(app: Any) -> list[PaletteCommand]:
    """The queue commands offered everywhere: each opens the Queues screen, then acts."""

    def opener(tab: str, then: str | None = None) -> Callable[[], None]:
        return lambda: app.push_screen(QueuesScreen(tab=tab, then=then))

    return [
        PaletteCommand("queue: open", "The queues you manage", opener("mailboxes")),
        PaletteCommand("queue: create", "Create a queue", opener("mailboxes", "create")),
        PaletteCommand("queue: link mailbox", "Link a mailbox to a queue",
                       opener("mailboxes", "link_mailbox")),
        PaletteCommand("queue: add member", "Add a user to a queue",
                       opener("members", "add_member")),
        PaletteCommand("queue: assignment", "Assignment rule of a queue",
                       opener("assignment", "assignment")),
        PaletteCommand("queue: working hours", "Working hours of a queue",
                       opener("hours", "hours")),
        PaletteCommand("queue: add routing rule", "Add a routing rule",
                       opener("routing", "rule_add")),
        PaletteCommand("queue: routing rules", "Routing rules in order", opener("routing")),
    ]  # fmt: skip


def visible_to(session: Any, actor: UserRecord) -> bool:
    """The menu shows Queues to global admins and to queue admins (services.queues.managed)."""
    return actor.is_admin or bool(queues.managed(session, actor))
