"""`tui-helpdesk rule ...`: the organisation's routing rules (F34), for admins.

Rules are named by their id and tried in order of position (1 first; first match wins).
A condition is given as `--when FIELD OP VALUE`, e.g. `--when subject contains refund`;
the service checks fields, operators and regular expressions, so errors name the condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit, wants_json
from tui_helpdesk.cli.output import key_values, table
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import RoutingConditionRecord, RoutingRuleRecord, UserRecord
from tui_helpdesk.services.vocabulary import MATCH_MODES, PRIORITIES, ROUTING_FIELDS, ROUTING_OPS
from tui_helpdesk.terminal_text import clean

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

pass_cx = click.make_pass_decorator(Cx)
RULE_ID = click.argument("rule_id", metavar="ID", type=int)
FIELDS_HELP = f"{', '.join(ROUTING_FIELDS)} or header:NAME"


@contextmanager
def acting(cx: Cx, *, write: bool = False) -> Iterator[tuple[Session, UserRecord]]:
    """cx.session for commands that always need someone acting (never the bootstrap case)."""

    from tui_helpdesk.services import permissions

    with cx.session(write=write) as (session, actor):
        yield session, permissions.require_actor(actor)


def _when_option(help_suffix: str) -> Any:
    return click.option(
        "--when", "conditions", nargs=3, multiple=True, metavar="FIELD OP VALUE",
        help=f"A condition; FIELD is {FIELDS_HELP}, OP is {', '.join(ROUTING_OPS)}."
        f" Repeatable.{help_suffix}",
    )  # fmt: skip


def action_options(command: Any) -> Any:
    """Match mode and actions, shared by add and update ("" clears an action on update)."""
    for option in reversed([
        click.option("--match", type=click.Choice(MATCH_MODES),
                     help="all conditions must hold (default), or any one."),
        click.option("--queue", metavar="NAME", help="Send matching mail to this queue."),
        click.option("--priority", metavar="|".join(PRIORITIES),
                     help="Give matching conversations this priority."),
        click.option("--tag", help="Tag matching conversations."),
    ]):  # fmt: skip
        command = option(command)
    return command


def _conditions(raw: tuple[tuple[str, str, str], ...]) -> list[dict[str, str]]:
    return [{"field": field, "op": op, "value": value} for field, op, value in raw]


def condition_text(condition: RoutingConditionRecord) -> str:
    return f"{condition.field} {condition.op} {condition.value!r}"


def rule_text(record: RoutingRuleRecord) -> str:
    head = key_values([
        ("id", record.id), ("name", record.name), ("position", record.position),
        ("enabled", record.enabled), ("match", record.match), ("queue", record.queue),
        ("priority", record.priority), ("tag", record.tag),
        ("created at", record.created_at), ("updated at", record.updated_at),
    ])  # fmt: skip
    how = "all must hold" if record.match == "all" else "any one is enough"
    conditions = [clean(condition_text(c), one_line=True) for c in record.conditions]
    lines = [f"  {n}. {condition}" for n, condition in enumerate(conditions, 1)]
    return f"{head}\n\nConditions ({how})\n" + "\n".join(lines)


def _when(record: RoutingRuleRecord) -> str:
    joiner = " and " if record.match == "all" else " or "
    return joiner.join(condition_text(c) for c in record.conditions)


def rules_text(records: list[RoutingRuleRecord]) -> str:
    headers = ["pos", "id", "name", "enabled", "when", "queue", "priority", "tag"]
    return table(headers, [
        (r.position, r.id, r.name, r.enabled, _when(r), r.queue, r.priority, r.tag)
        for r in records
    ], empty="No routing rules: mail goes to the first queue linked to its mailbox.")  # fmt: skip


@click.group(cls=HelpdeskGroup)
@common
def rule() -> None:
    """Routing rules: which queue, priority and tag inbound mail gets (first match wins)."""


@rule.command("list")
@common
@pass_cx
def rule_list(cx: Cx) -> None:
    """Every rule in the order it is tried."""

    from tui_helpdesk.services import routing

    with acting(cx) as (session, actor):
        emit(routing.list_rules(session, actor), rules_text)


@rule.command("show")
@RULE_ID
@common
@pass_cx
def rule_show(cx: Cx, rule_id: int) -> None:
    from tui_helpdesk.services import routing

    with acting(cx) as (session, actor):
        emit(routing.get_rule(session, actor, rule_id), rule_text)


@rule.command("add")
@click.argument("name")
@_when_option(" At least one.")
@action_options
@click.option("--position", type=int, help="1 = tried first (default: last).")
@click.option("--disabled", is_flag=True, help="Create it switched off.")
@common
@pass_cx
def rule_add(
    cx: Cx, name: str, conditions: tuple[tuple[str, str, str], ...], match: str | None,
    position: int | None, disabled: bool, **actions: str | None,
) -> None:  # fmt: skip
    """Add a rule; it needs a condition and an action (--queue, --priority or --tag)."""

    from tui_helpdesk.services import routing

    with acting(cx, write=True) as (session, actor):
        record = routing.create_rule(
            session, actor,
            name=name, conditions=_conditions(conditions), match=match or "all",
            enabled=not disabled, position=position, **actions,
        )  # fmt: skip
    emit(record, rule_text)


@rule.command("update")
@RULE_ID
@click.option("--name")
@_when_option(" Replaces all the rule's conditions.")
@action_options
@click.option("--enable/--disable", "enabled", default=None, help="Switch the rule on or off.")
@common
@pass_cx
def rule_update(
    cx: Cx, rule_id: int, conditions: tuple[tuple[str, str, str], ...], **fields: Any
) -> None:
    """Change some fields of a rule ("" clears --queue, --priority or --tag)."""

    from tui_helpdesk.services import routing

    changes = {key: value for key, value in fields.items() if value is not None}
    if conditions:
        changes["conditions"] = _conditions(conditions)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option such as --when")
    with acting(cx, write=True) as (session, actor):
        record = routing.update_rule(session, actor, rule_id, **changes)
    emit(record, rule_text)


@rule.command("move")
@RULE_ID
@click.argument("position", type=int)
@common
@pass_cx
def rule_move(cx: Cx, rule_id: int, position: int) -> None:
    """Put a rule at POSITION (1 = tried first); prints the new order."""

    from tui_helpdesk.services import routing

    with acting(cx, write=True) as (session, actor):
        records = routing.move_rule(session, actor, rule_id, position)
    emit(records, rules_text)


@rule.command("delete")
@RULE_ID
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common
@pass_cx
def rule_delete(cx: Cx, rule_id: int, yes: bool) -> None:
    """Delete a rule; the ones after it move up. Prints the deleted rule."""

    from tui_helpdesk.services import routing

    if not yes:
        if wants_json():
            raise Invalid("deleting cannot be undone: pass --yes to confirm", field="yes")
        click.confirm(f"Delete routing rule {rule_id}? This cannot be undone", abort=True)
    with acting(cx, write=True) as (session, actor):
        record = routing.get_rule(session, actor, rule_id)
        routing.delete_rule(session, actor, rule_id)
    emit(record, lambda r: f"Deleted routing rule {r.id} ({clean(r.name, one_line=True)}).")
