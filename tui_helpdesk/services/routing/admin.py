"""Routing rule administration (F34): list, create, update, delete and reorder, audited.

Admins only. Positions are kept 1..n in evaluation order; a refused change leaves the rule as
it was.
"""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Queue, RoutingRule
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.records import (
    RoutingConditionRecord,
    RoutingRuleRecord,
    RuleConditionResult,
    RuleTestRecord,
    UserRecord,
)
from tui_helpdesk.services import audit, permissions
from tui_helpdesk.services.changes import notify as notify_change
from tui_helpdesk.services.routing.conditions import (
    Condition,
    validate_conditions,
    validate_name,
    validate_priority,
    validate_tag,
)
from tui_helpdesk.services.routing.rules import condition_matches, first_match, rule_matches
from tui_helpdesk.services.unset import UNSET
from tui_helpdesk.services.vocabulary import MATCH_MODES


def to_record(rule: RoutingRule, queue_name: str | None) -> RoutingRuleRecord:
    return RoutingRuleRecord(
        id=rule.id,
        name=rule.name,
        position=rule.position,
        enabled=rule.enabled,
        match=rule.match,
        conditions=tuple(
            RoutingConditionRecord(
                field=str(c.get("field", "")),
                op=str(c.get("op", "")),
                value=str(c.get("value", "")),
            )
            for c in rule.conditions
            if isinstance(c, dict)
        ),
        queue=queue_name,
        priority=rule.action_priority,
        tag=rule.action_tag,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _record(session: Session, rule: RoutingRule) -> RoutingRuleRecord:
    queue = session.get(Queue, rule.action_queue_id) if rule.action_queue_id else None
    return to_record(rule, queue.name if queue else None)


def _audit_view(record: RoutingRuleRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "position": record.position,
        "enabled": record.enabled,
        "match": record.match,
        "conditions": [{"field": c.field, "op": c.op, "value": c.value} for c in record.conditions],
        "queue": record.queue,
        "priority": record.priority,
        "tag": record.tag,
    }


def _ordered(session: Session, organisation_id: int) -> list[RoutingRule]:
    return list(
        session.scalars(
            select(RoutingRule)
            .where(RoutingRule.organisation_id == organisation_id)
            .order_by(RoutingRule.position, RoutingRule.id)
        )
    )


def _rule_for(session: Session, actor: UserRecord, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None or rule.organisation_id != actor.organisation_id:
        raise NotFound(f"routing rule {rule_id} not found", field="rule")
    return rule


def _queue_id(session: Session, actor: UserRecord, name: object, *, rule: str) -> int | None:
    if name is None or name == "":
        return None
    queue_id = session.scalar(
        select(Queue.id).where(
            Queue.organisation_id == actor.organisation_id,
            func.lower(Queue.name) == str(name).strip().lower(),
        )
    )
    if queue_id is None:
        raise NotFound(f"rule {rule!r}: queue {name!r} not found", field="queue")
    return queue_id


def _check_match(value: object, *, rule: str) -> str:
    if value not in MATCH_MODES:
        raise Invalid(f"rule {rule!r}: match must be all or any, got {value!r}", field="match")
    return str(value)


def _check_has_action(
    name: str, *, action_queue_id: int | None, action_priority: str | None, action_tag: str | None
) -> None:
    if action_queue_id is None and not action_priority and not action_tag:
        raise Invalid(
            f"rule {name!r}: give at least one action (queue, priority or tag)", field="queue"
        )


def _actions(rule: RoutingRule, changes: dict[str, Any]) -> dict[str, Any]:
    """The rule's actions as they would be after `changes`."""
    keys = ("action_queue_id", "action_priority", "action_tag")
    return {key: changes.get(key, getattr(rule, key)) for key in keys}


def _renumber(rules: list[RoutingRule]) -> None:
    for position, rule in enumerate(rules, start=1):
        rule.position = position


def list_rules(session: Session, actor: UserRecord) -> list[RoutingRuleRecord]:
    """The organisation's rules in evaluation order (admins only: they show the routing set-up)."""
    permissions.require_admin(actor)
    return [_record(session, rule) for rule in _ordered(session, actor.organisation_id)]


def get_rule(session: Session, actor: UserRecord, rule_id: int) -> RoutingRuleRecord:
    permissions.require_admin(actor)
    return _record(session, _rule_for(session, actor, rule_id))


def create_rule(
    session: Session,
    actor: UserRecord,
    *,
    name: str,
    conditions: list[dict[str, Any]],
    match: str = "all",
    queue: str | None = None,
    priority: str | None = None,
    tag: str | None = None,
    enabled: bool = True,
    position: int | None = None,
) -> RoutingRuleRecord:
    """Add a rule; at the end unless `position` (1 = evaluated first) says otherwise."""
    permissions.require_admin(actor)
    label = validate_name(name)
    rule = RoutingRule(
        organisation_id=actor.organisation_id,
        name=label,
        match=_check_match(match, rule=label),
        conditions=[dataclasses.asdict(c) for c in validate_conditions(conditions, rule=label)],
        action_queue_id=_queue_id(session, actor, queue, rule=label),
        action_priority=validate_priority(priority, rule=label),
        action_tag=validate_tag(tag, rule=label),
        enabled=_check_enabled(enabled),
    )
    _check_has_action(label, **_actions(rule, {}))
    rules = _ordered(session, actor.organisation_id)
    index = len(rules) if position is None else _index(position, len(rules) + 1)
    session.add(rule)
    rules.insert(index, rule)
    _renumber(rules)
    session.flush()
    record = _record(session, rule)
    audit.record(
        session,
        actor,
        "routing_rule.create",
        "routing_rule",
        rule.id,
        organisation_id=rule.organisation_id,
        after=_audit_view(record),
    )
    notify_change(session)
    return record


def _check_enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"enabled: expected true or false, got {value!r}", field="enabled")
    return value


def _index(position: object, count: int) -> int:
    """1-based position → list index; refuses positions outside 1..count."""
    if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= count:
        raise Invalid(f"position must be a number from 1 to {count}", field="position")
    return position - 1


def update_rule(
    session: Session,
    actor: UserRecord,
    rule_id: int,
    *,
    name: str = UNSET,
    conditions: list[dict[str, Any]] = UNSET,
    match: str = UNSET,
    queue: str | None = UNSET,
    priority: str | None = UNSET,
    tag: str | None = UNSET,
    enabled: bool = UNSET,
) -> RoutingRuleRecord:
    """Change some fields of a rule; None (or "") clears an action."""
    permissions.require_admin(actor)
    rule = _rule_for(session, actor, rule_id)
    before = _record(session, rule)
    label = validate_name(name) if name is not UNSET else rule.name
    changes: dict[str, Any] = {"name": label}
    if conditions is not UNSET:
        valid = validate_conditions(conditions, rule=label)
        changes["conditions"] = [dataclasses.asdict(c) for c in valid]
    if match is not UNSET:
        changes["match"] = _check_match(match, rule=label)
    if queue is not UNSET:
        changes["action_queue_id"] = _queue_id(session, actor, queue, rule=label)
    if priority is not UNSET:
        changes["action_priority"] = validate_priority(priority, rule=label)
    if tag is not UNSET:
        changes["action_tag"] = validate_tag(tag, rule=label)
    if enabled is not UNSET:
        changes["enabled"] = _check_enabled(enabled)
    _check_has_action(label, **_actions(rule, changes))
    for key, value in changes.items():  # only now: a refused change leaves the rule untouched
        setattr(rule, key, value)
    session.flush()
    after = _record(session, rule)
    if _audit_view(after) != _audit_view(before):
        audit.record(
            session,
            actor,
            "routing_rule.update",
            "routing_rule",
            rule.id,
            organisation_id=rule.organisation_id,
            before=_audit_view(before),
            after=_audit_view(after),
        )
        notify_change(session)
    return after


def delete_rule(session: Session, actor: UserRecord, rule_id: int) -> None:
    permissions.require_admin(actor)
    rule = _rule_for(session, actor, rule_id)
    before = _record(session, rule)
    rules = [r for r in _ordered(session, actor.organisation_id) if r.id != rule.id]
    session.delete(rule)
    _renumber(rules)
    session.flush()
    audit.record(
        session,
        actor,
        "routing_rule.delete",
        "routing_rule",
        rule_id,
        organisation_id=actor.organisation_id,
        before=_audit_view(before),
    )
    notify_change(session)


def move_rule(
    session: Session, actor: UserRecord, rule_id: int, position: int
) -> list[RoutingRuleRecord]:
    """Put a rule at `position` (1 = evaluated first) and renumber the rest; returns the order."""
    permissions.require_admin(actor)
    rule = _rule_for(session, actor, rule_id)
    rules = _ordered(session, actor.organisation_id)
    old = rules.index(rule) + 1
    rules.remove(rule)
    rules.insert(_index(position, len(rules) + 1), rule)
    _renumber(rules)
    session.flush()
    if old != rule.position:
        audit.record(
            session,
            actor,
            "routing_rule.move",
            "routing_rule",
            rule.id,
            organisation_id=rule.organisation_id,
            before={"position": old},
            after={"position": rule.position},
        )
        notify_change(session)
    return [_record(session, r) for r in rules]


# --- dry run ---------------------------------------------------------------------------------

MAX_SAMPLE = 100_000  # characters of a sample body


def _sample(sender: str, recipient: str, subject: str, body: str, headers: str) -> bytes:
    """The sample as raw mail, so the real parser reads it exactly as it reads inbound mail."""
    if len(body) > MAX_SAMPLE:
        raise Invalid(f"body: at most {MAX_SAMPLE} characters in a test", field="body")
    message = EmailMessage(policy=SMTP)
    try:
        for name, value in (("From", sender), ("To", recipient), ("Subject", subject)):
            if value.strip():
                message[name] = value.strip()
        for line in headers.splitlines():
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip() or " " in name.strip():
                raise Invalid(
                    f"headers: write one header a line, like X-Priority: 1; got {line!r}",
                    field="headers",
                )
            message[name.strip()] = value.strip()
        message.set_content(body or "")
    except (ValueError, TypeError) as exc:
        raise Invalid(f"sample message: {exc}", field="headers") from None
    return message.as_bytes()


def try_rule(
    session: Session,
    actor: UserRecord,
    rule_id: int,
    *,
    sender: str = "",
    recipient: str = "",
    subject: str = "",
    body: str = "",
    headers: str = "",
) -> RuleTestRecord:
    """Try one rule on a sample message (a dry run: nothing is stored, routed or sent).

    Says which conditions hold, whether the rule matches, what it would set, and which rule
    would decide for that message among all the enabled rules in order (first match wins).
    Admins only, as the rules are.
    """
    permissions.require_admin(actor)
    rule = _rule_for(session, actor, rule_id)
    parsed = parse_message(_sample(sender, recipient, subject, body, headers))
    recipients = tuple(a.strip().lower() for a in recipient.split(",") if a.strip())
    try:
        conditions = validate_conditions(rule.conditions, rule=rule.name)
    except Invalid:
        conditions = []  # a stored rule that no longer validates never matches
    results = tuple(
        RuleConditionResult(
            field=c.field, op=c.op, value=c.value,
            matched=condition_matches(c, parsed, recipients),
        )
        for c in conditions
    )  # fmt: skip
    matched = bool(conditions) and rule_matches(
        rule.match, [Condition(r.field, r.op, r.value) for r in results], parsed, recipients
    )
    deciding = first_match(_ordered(session, actor.organisation_id), parsed, recipients)
    record = _record(session, rule)
    return RuleTestRecord(
        rule_id=rule.id,
        rule=rule.name,
        enabled=rule.enabled,
        matched=matched,
        conditions=results,
        queue=record.queue,
        priority=record.priority,
        tag=record.tag,
        deciding_rule=deciding.name if deciding is not None else None,
    )
