"""How inbound mail is handled: queue assignment and hours, mailbox autoresponders (F19, F32, F33).

These commands sit on the `queue` and `mailbox` groups (QUEUE_COMMANDS, MAILBOX_COMMANDS).
Compact specs keep scripts short: `--day mon-fri=09:00-17:00`, `--slot EMAIL=mon,tue@09:00-13:00`,
`--weight EMAIL=N`, `--window 2026-12-24T00:00/2026-12-27T00:00`. This module only splits them
into the services' shapes; the services check every value, so errors name the field to change.
Options left out keep their current value.
"""

from __future__ import annotations

from typing import Any

import click

from tui_helpdesk.cli.context import Cx, common, emit, read_text
from tui_helpdesk.cli.output import key_values, table
from tui_helpdesk.cli.routing import acting
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import AssignmentRecord, AutoresponderRecord, QueueHoursRecord
from tui_helpdesk.services.vocabulary import ASSIGNMENT_RULES, DAYS
from tui_helpdesk.terminal_text import clean

pass_cx = click.make_pass_decorator(Cx)
QUEUE = click.argument("queue_name", metavar="QUEUE")
ADDRESS = click.argument("address")
NOTHING = "nothing to change: give at least one option (see --help)"


# --- specs -----------------------------------------------------------------------------------


def parse_days(text: str, *, field: str) -> list[str]:
    """ "mon,wed-fri" → ["mon", "wed", "thu", "fri"]; a range may wrap around (fri-mon)."""

    chosen: set[str] = set()
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise Invalid(
                f"{field}: {part.strip()!r} is not a day or a range like mon-fri "
                f"(days: {', '.join(DAYS)})",
                field=field,
            )
        start, end = DAYS.index(first), DAYS.index(last or first)
        chosen.update(DAYS[(start + i) % 7] for i in range((end - start) % 7 + 1))
    return [day for day in DAYS if day in chosen]


def parse_ranges(text: str, *, field: str) -> list[tuple[str, str]]:
    """ "09:00-12:00,13:00-17:00" → [("09:00", "12:00"), ...] (the service checks the times)."""
    ranges = []
    for part in text.split(","):
        start, dash, end = part.strip().partition("-")
        if not dash or not start or not end:
            raise Invalid(f"{field}: {part!r} is not a time range like 09:00-17:00", field=field)
        ranges.append((start.strip(), end.strip()))
    return ranges


def _split(spec: str, sep: str, *, field: str, example: str) -> tuple[str, str]:
    left, found, right = spec.rpartition(sep)
    if not found or not left.strip():
        raise Invalid(f"{field}: write {example}, got {spec!r}", field=field)
    return left.strip(), right.strip()


def parse_day(spec: str) -> dict[str, list[list[str]]]:
    """ "mon-fri=09:00-17:00" → those days' intervals; "sat,sun=closed" closes them."""
    days, spec_hours = _split(
        spec, "=", field="schedule", example="DAYS=HOURS like mon-fri=09:00-17:00 or sun=closed"
    )
    closed = spec_hours.lower() in ("", "closed")
    intervals = [] if closed else [list(r) for r in parse_ranges(spec_hours, field="schedule")]
    return {day: intervals for day in parse_days(days, field="schedule")}


def parse_slots(specs: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """EMAIL=DAYS@HOURS (repeatable, one slot per range) → slots per member; EMAIL=none clears."""
    slots: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        email, slot = _split(
            spec, "=", field="slots", example="EMAIL=DAYS@HOURS like bob@x.test=mon-fri@09:00-13:00"
        )
        member = slots.setdefault(email, [])
        if slot.lower() == "none":
            continue
        days, at, ranges = slot.partition("@")
        if not at:
            raise Invalid(
                f"slots: write DAYS@HOURS like mon,tue@09:00-13:00, got {slot!r}", field="slots"
            )
        day_list = parse_days(days, field="slots")
        member += [
            {"days": day_list, "start": start, "end": end}
            for start, end in parse_ranges(ranges, field="slots")
        ]
    return slots


def parse_weights(specs: tuple[str, ...]) -> dict[str, int]:
    weights = {}
    for spec in specs:
        email, number = _split(spec, "=", field="weights", example="EMAIL=N like bob@x.test=30")
        try:
            weights[email] = int(number)
        except ValueError:
            raise Invalid(
                f"weights: {number!r} is not a whole number ({spec!r})", field="weights"
            ) from None
    return weights


def parse_window(spec: str) -> dict[str, str]:
    start, end = _split(
        spec, "/", field="windows", example="START/END like 2026-12-24T00:00/2026-12-27T00:00"
    )
    return {"start": start, "end": end}


# --- text ------------------------------------------------------------------------------------


def days_text(days: list[str]) -> str:
    """["mon", "tue", "wed", "sat"] → "mon-wed,sat": runs of three or more as ranges."""

    runs: list[list[str]] = []
    for day in (d for d in DAYS if d in days):
        if runs and DAYS.index(runs[-1][-1]) + 1 == DAYS.index(day):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(r) for r in runs)


def _slot_rows(record: AssignmentRecord) -> list[tuple[str, str, str]]:
    return [
        (m.email, days_text(s.get("days", [])), f"{s.get('start')}-{s.get('end')}")
        for m in record.members
        for s in m.slots
    ]


def assignment_text(record: AssignmentRecord) -> str:
    head = key_values([
        ("queue", record.queue), ("rule", record.rule), ("fallback", record.fallback),
        ("sticky days", record.sticky_days or "off"),
    ])  # fmt: skip
    members = table(["member", "availability", "active", "weight", "slots"], [
        (m.email, m.availability, m.active, m.weight, len(m.slots)) for m in record.members
    ], empty="(no members)")  # fmt: skip
    text = f"{head}\n\nMembers\n{members}"
    slots = _slot_rows(record)
    return text + (f"\n\nTime slots\n{table(['member', 'days', 'hours'], slots)}" if slots else "")


def _body(title: str, body: str) -> str:
    """A titled block of text, indented; mail-like text keeps its lines, loses control codes."""
    lines = clean(body).split("\n") if body.strip() else ["(empty)"]
    return title + "\n" + "\n".join(f"  {line}".rstrip() for line in lines)


def hours_text(record: QueueHoursRecord) -> str:
    head = key_values([
        ("queue", record.queue), ("working hours", "on" if record.enabled else "off (always open)"),
        ("timezone", record.timezone), ("holidays", list(record.holidays)),
        ("outside-hours message", record.outside_hours_enabled),
        ("outside-hours subject", record.outside_hours_subject),
    ])  # fmt: skip
    week = table(["day", "hours"], [
        (day, ", ".join(f"{s}-{e}" for s, e in record.schedule.get(day, [])) or "closed")
        for day in DAYS
    ])  # fmt: skip
    return f"{head}\n\nWeek\n{week}\n\n" + _body("Outside-hours body", record.outside_hours_body)


def autoresponder_text(record: AutoresponderRecord) -> str:
    head = key_values([
        ("mailbox", record.mailbox), ("enabled", record.enabled), ("subject", record.subject),
        ("timezone", record.timezone), ("delay", f"{record.delay_seconds} s"),
        ("updated at", record.updated_at),
    ])  # fmt: skip
    windows = table(["from", "until"], [
        (w.get("start", "").replace("T", " "), w.get("end", "").replace("T", " "))
        for w in record.windows
    ], empty="(none: active whenever enabled)")  # fmt: skip
    return f"{head}\n\nWindows ({record.timezone})\n{windows}\n\n" + _body("Body", record.body)


# --- queue assignment ------------------------------------------------------------------------


@click.command("assignment")
@QUEUE
@common
@pass_cx
def queue_assignment(cx: Cx, queue_name: str) -> None:
    """Show who gets new conversations: rule, fallback, sticky days, weights and slots."""

    from tui_helpdesk.services import assignment

    with acting(cx) as (session, actor):
        emit(assignment.get_assignment(session, actor, queue_name), assignment_text)


@click.command("set-assignment")
@QUEUE
@click.option("--rule", type=click.Choice(ASSIGNMENT_RULES), help="How new work is shared out.")
@click.option("--fallback", metavar="EMAIL|none", help="Who gets work nobody else can take.")
@click.option("--sticky-days", type=int, help="Back to the contact's last agent within N days.")
@click.option("--weight", "weights", multiple=True, metavar="EMAIL=N",
              help="A member's share for --rule percentage (0-100). Repeatable.")  # fmt: skip
@click.option("--slot", "slots", multiple=True, metavar="EMAIL=DAYS@HOURS",
              help="A member's hours for --rule time, e.g. bob@x.test=mon-fri@09:00-13:00; "
              "replaces that member's slots; EMAIL=none clears them. Repeatable.")  # fmt: skip
@common
@pass_cx
def queue_set_assignment(
    cx: Cx, queue_name: str, rule: str | None, fallback: str | None, sticky_days: int | None,
    weights: tuple[str, ...], slots: tuple[str, ...],
) -> None:  # fmt: skip
    """Change the queue's assignment set-up (queue admins)."""

    from tui_helpdesk.services import assignment

    changes: dict[str, Any] = {"rule": rule, "sticky_days": sticky_days}
    changes = {key: value for key, value in changes.items() if value is not None}
    if fallback is not None:
        changes["fallback"] = None if fallback.strip().lower() in ("", "none") else fallback
    if weights:
        changes["weights"] = parse_weights(weights)
    if slots:
        changes["slots"] = parse_slots(slots)
    if not changes:
        raise click.UsageError(NOTHING)
    with acting(cx, write=True) as (session, actor):
        record = assignment.set_assignment(session, actor, queue_name, **changes)
    emit(record, assignment_text)


# --- queue hours -----------------------------------------------------------------------------


@click.command("hours")
@QUEUE
@common
@pass_cx
def queue_hours(cx: Cx, queue_name: str) -> None:
    """Show the queue's working hours, holidays and outside-hours message."""

    from tui_helpdesk.services import hours

    with acting(cx) as (session, actor):
        emit(hours.get_hours(session, actor, queue_name), hours_text)


@click.command("set-hours")
@QUEUE
@click.option("--enable/--disable", "enabled", default=None, help="Use working hours or not.")
@click.option("--timezone", help="IANA timezone the hours are read in, e.g. Europe/Madrid.")
@click.option("--day", "days", multiple=True, metavar="DAYS=HOURS",
              help="e.g. mon-fri=09:00-13:00,14:00-18:00 or sun=closed; days not named keep "
              "their hours. Repeatable.")  # fmt: skip
@click.option("--holiday", "holidays", multiple=True, metavar="DATE",
              help="Add a closed date like 2026-12-25. Repeatable.")  # fmt: skip
@click.option("--clear-holidays", is_flag=True, help="Remove every holiday (before --holiday).")
@click.option("--outside-hours/--no-outside-hours", "outside_hours_enabled", default=None,
              help="Answer mail that arrives outside working hours.")  # fmt: skip
@click.option("--outside-hours-subject", help="Subject of that answer.")
@click.option("--outside-hours-body", help="Text of that answer ({{next_opening}} is filled).")
@click.option("--outside-hours-body-file", type=click.Path(exists=True, dir_okay=False,
              allow_dash=True), help="Read the text from a UTF-8 file (- = stdin).")  # fmt: skip
@common
@pass_cx
def queue_set_hours(
    cx: Cx, queue_name: str, days: tuple[str, ...], holidays: tuple[str, ...],
    clear_holidays: bool, outside_hours_body_file: str | None, **fields: Any,
) -> None:  # fmt: skip
    """Change working hours and the outside-hours message (queue admins)."""

    from tui_helpdesk.services import hours

    changes = {key: value for key, value in fields.items() if value is not None}
    if outside_hours_body_file is not None:
        if "outside_hours_body" in changes:
            raise click.UsageError("give --outside-hours-body or --outside-hours-body-file")
        changes["outside_hours_body"] = read_text(
            outside_hours_body_file, field="outside_hours_body"
        )
    week = {day: hours for spec in days for day, hours in parse_day(spec).items()}
    if not (changes or week or holidays or clear_holidays):
        raise click.UsageError(NOTHING)
    with acting(cx, write=True) as (session, actor):
        if week or holidays or clear_holidays:
            current = hours.get_hours(session, actor, queue_name)
            if week:
                changes["schedule"] = current.schedule | week
            if holidays or clear_holidays:
                kept = [] if clear_holidays else list(current.holidays)
                changes["holidays"] = kept + list(holidays)
        record = hours.set_hours(session, actor, queue_name, **changes)
    emit(record, hours_text)


# --- mailbox autoresponder -------------------------------------------------------------------


@click.command("autoresponder")
@ADDRESS
@common
@pass_cx
def mailbox_autoresponder(cx: Cx, address: str) -> None:
    """Show the mailbox's automatic reply."""

    from tui_helpdesk.services import autoresponder

    with acting(cx) as (session, actor):
        emit(autoresponder.get(session, actor, address), autoresponder_text)


@click.command("set-autoresponder")
@ADDRESS
@click.option("--enable/--disable", "enabled", default=None, help="Send it or not.")
@click.option("--subject", help='Subject ("" = "Re: " and the original subject).')
@click.option("--body", help="Text of the reply ({{subject}}, {{conversation_id}} are filled).")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="Read the text from a UTF-8 file (- = stdin).")  # fmt: skip
@click.option("--window", "windows", multiple=True, metavar="START/END",
              help="Only send between these local times, e.g. "
              "2026-12-24T00:00/2026-12-27T00:00. Adds to the windows. Repeatable.")  # fmt: skip
@click.option("--clear-windows", is_flag=True, help="Remove every window (before --window).")
@click.option("--delay", "delay_seconds", type=int, help="Seconds to wait before sending.")
@common
@pass_cx
def mailbox_set_autoresponder(
    cx: Cx, address: str, body_file: str | None, windows: tuple[str, ...], clear_windows: bool,
    **fields: Any,
) -> None:  # fmt: skip
    """Set up the mailbox's automatic reply (admins). No windows = whenever enabled."""

    from tui_helpdesk.services import autoresponder

    changes = {key: value for key, value in fields.items() if value is not None}
    if body_file is not None:
        if "body" in changes:
            raise click.UsageError("give --body or --body-file, not both")
        changes["body"] = read_text(body_file, field="body")
    added = [parse_window(spec) for spec in windows]
    if not (changes or added or clear_windows):
        raise click.UsageError(NOTHING)
    with acting(cx, write=True) as (session, actor):
        if added or clear_windows:
            kept = [] if clear_windows else list(autoresponder.get(session, actor, address).windows)
            changes["windows"] = kept + added
        record = autoresponder.configure(session, actor, address, **changes)
    emit(record, autoresponder_text)


QUEUE_COMMANDS = (queue_assignment, queue_set_assignment, queue_hours, queue_set_hours)
MAILBOX_COMMANDS = (mailbox_autoresponder, mailbox_set_autoresponder)
