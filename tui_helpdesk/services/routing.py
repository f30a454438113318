"""Routing rules (F34): which queue, priority and tag an inbound message gets.

Rules belong to an organisation and are tried in order of `position`; the first enabled rule
whose conditions match decides (first match wins), and a message no rule matches goes to the
first queue linked to its mailbox. Matching is case-insensitive. Regular expressions come from
admins but run on text from strangers, so they are bounded: a length limit, a refusal of nested
repetition (the classic catastrophic-backtracking shape) and a cap on the text they scan.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, Queue, QueueMailbox, RoutingRule
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import RoutingConditionRecord, RoutingRuleRecord, UserRecord
from tui_helpdesk.services import audit, permissions

if TYPE_CHECKING:
    from tui_helpdesk.mail.parse import ParsedMessage

try:  # the regex parser is the only reliable way to see the shape of a pattern
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]

FIELDS = ("sender_address", "sender_domain", "subject", "body", "recipient")
HEADER_PREFIX = "header:"
OPS = ("equals", "contains", "matches")
MATCH_MODES = ("all", "any")
PRIORITIES = ("low", "normal", "high", "urgent")
MAX_CONDITIONS = 20
MAX_VALUE = 500
MAX_NAME = 255
MAX_SCANNED = 1_000_000  # characters a keyword (equals/contains) condition looks at
MAX_REGEX_SCANNED = 2_048  # characters a regular expression looks at: bounds its worst case
MAX_REGEX_STEPS = 40_000_000  # tries allowed over those characters: well under a second
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 field name: printable, no colon
_TAG = re.compile(r"^\w[\w.:/+-]{0,63}$")
_REPEATS = {
    _sre_parse.MAX_REPEAT,
    _sre_parse.MIN_REPEAT,
    getattr(_sre_parse, "POSSESSIVE_REPEAT", None),
}
UNSET: Any = object()  # marks an argument that was not given ("leave it as it is")


@dataclass(frozen=True)
class RouteDecision:
    queue_id: int | None
    priority: str | None
    tags: tuple[str, ...]
    rule_id: int | None


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


# --- validation ------------------------------------------------------------------------------


def _parts(op: Any, arg: Any) -> list[Any]:
    """The sub-patterns inside one parsed regex token (sequences of tokens)."""
    if op is _sre_parse.SUBPATTERN:
        return [arg[-1]]
    if op is _sre_parse.BRANCH:
        return list(arg[1])
    if op in (_sre_parse.ASSERT, _sre_parse.ASSERT_NOT):
        return [arg[1]]
    if op is getattr(_sre_parse, "ATOMIC_GROUP", None):
        return [arg]
    if op is _sre_parse.GROUPREF_EXISTS:
        return [part for part in arg[1:] if part is not None]
    return []


def _unbounded(high: int) -> bool:
    return high == _sre_parse.MAXREPEAT or high > 100


def _risk(tokens: Any, inside: bool = False) -> str | None:
    """The shape that makes a pattern backtrack exponentially, or None.

    Inside a repetition, another unbounded repetition ((a+)+) or an alternation ((a|ab)*)
    can match the same text in exponentially many ways.
    """
    for op, arg in tokens:
        if op in _REPEATS:
            _low, high, sub = arg
            if inside and _unbounded(high):
                return "repeats a repetition"
            found = _risk(sub, inside or high > 1)
            if found is None and _unbounded(high) and _has_branch(sub):
                found = "repeats an alternation"
        else:
            found = next(filter(None, (_risk(part, inside) for part in _parts(op, arg))), None)
        if found:
            return found
    return None


def _has_branch(tokens: Any) -> bool:
    return any(
        op is _sre_parse.BRANCH or any(_has_branch(part) for part in _parts(op, arg))
        for op, arg in tokens
    )


def _paths(tokens: Any, scanned: int) -> float:
    """An upper bound of the ways one start position can be tried: a product over the
    repetitions in sequence (an unbounded one counts the whole scanned text)."""
    total = 1.0
    for op, arg in tokens:
        if op in _REPEATS:
            _low, high, sub = arg
            total *= (min(high, scanned) + 1) * _paths(sub, scanned)
        elif op is _sre_parse.BRANCH:
            total *= sum(_paths(branch, scanned) for branch in arg[1])
        else:
            for part in _parts(op, arg):
                total *= _paths(part, scanned)
    return total


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an admin's regular expression, refusing shapes that can take too long.

    Python's engine backtracks and cannot be interrupted from another thread, so the bound is
    structural: no exponential shapes, and at most MAX_REGEX_STEPS tries over the
    MAX_REGEX_SCANNED characters a condition looks at (in practice: one unbounded *, + or
    {n,}, plus small bounded ones).
    """
    if len(pattern) > MAX_VALUE:
        raise Invalid(f"pattern longer than {MAX_VALUE} characters", field="value")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible nested set" notes
            parsed = _sre_parse.parse(pattern, re.IGNORECASE)
            compiled = re.compile(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Invalid(f"not a valid regular expression: {exc}", field="value") from None
    risk = _risk(parsed)
    if risk:
        raise Invalid(
            f"regular expression {pattern!r} {risk}, which can take exponential time on "
            "hostile mail; simplify it (e.g. (ab)+ instead of (a+b*)+, [ab]+ instead of (a|b)+)",
            field="value",
        )
    if MAX_REGEX_SCANNED * _paths(parsed, MAX_REGEX_SCANNED) > MAX_REGEX_STEPS:
        raise Invalid(
            f"regular expression {pattern!r} can backtrack too much on hostile mail: use at "
            "most one unbounded *, + or {n,} (a search finds the text anywhere, so a leading "
            "or trailing .* is never needed)",
            field="value",
        )
    return compiled


def pattern_matches(pattern: str, text: str) -> bool:
    """Search the first MAX_REGEX_SCANNED characters of `text` (the bound of the worst case)."""
    return compile_pattern(pattern).search(text[:MAX_REGEX_SCANNED]) is not None


def validate_condition(raw: object, *, where: str) -> Condition:
    """One {"field", "op", "value"} entry, with errors naming the rule and the condition."""
    if not isinstance(raw, dict):
        raise Invalid(f"{where}: expected {{field, op, value}}, got {raw!r}", field="conditions")
    field, op, value = raw.get("field"), raw.get("op"), raw.get("value")
    if not isinstance(field, str) or not _known_field(field):
        raise Invalid(
            f"{where}: field must be one of {', '.join(FIELDS)} or header:<Name>, got {field!r}",
            field="conditions",
        )
    if op not in OPS:
        raise Invalid(
            f"{where}: op must be one of {', '.join(OPS)}, got {op!r}", field="conditions"
        )
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE:
        raise Invalid(
            f"{where}: value must be 1-{MAX_VALUE} characters of text", field="conditions"
        )
    if op == "matches":
        try:
            compile_pattern(value)
        except Invalid as exc:
            raise Invalid(f"{where}: {exc.message}", field="conditions") from None
    field = field.lower() if not field.lower().startswith(HEADER_PREFIX) else _header_field(field)
    return Condition(field=field, op=str(op), value=value if op == "matches" else value.strip())


def _known_field(field: str) -> bool:
    if field.lower().startswith(HEADER_PREFIX):
        return bool(_HEADER_NAME.match(field[len(HEADER_PREFIX) :].strip()))
    return field.lower() in FIELDS


def _header_field(field: str) -> str:
    return HEADER_PREFIX + field[len(HEADER_PREFIX) :].strip()


def validate_conditions(raw: object, *, rule: str) -> list[Condition]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise Invalid(f"rule {rule!r}: give at least one condition", field="conditions")
    if len(raw) > MAX_CONDITIONS:
        raise Invalid(f"rule {rule!r}: at most {MAX_CONDITIONS} conditions", field="conditions")
    return [
        validate_condition(item, where=f"rule {rule!r}, condition {n}")
        for n, item in enumerate(raw, start=1)
    ]


def validate_priority(value: object, *, rule: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in PRIORITIES:
        raise Invalid(
            f"rule {rule!r}: priority must be one of {', '.join(PRIORITIES)}, got {value!r}",
            field="priority",
        )
    return str(value)


def validate_tag(value: object, *, rule: str) -> str | None:
    if value is None or value == "":
        return None
    tag = value.strip().lower() if isinstance(value, str) else ""
    if not _TAG.match(tag):
        raise Invalid(
            f"rule {rule!r}: tag must be 1-64 letters, digits or . : / + - _ without spaces, "
            f"got {value!r}",
            field="tag",
        )
    return tag


def validate_name(value: object) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"name: give a rule name of 1-{MAX_NAME} characters", field="name")
    return name


# --- matching (pure) -------------------------------------------------------------------------


def _values(field: str, parsed: ParsedMessage, recipients: tuple[str, ...]) -> list[str]:
    """The texts a condition on `field` looks at; any one matching is enough."""
    sender = parsed.sender.address if parsed.sender else ""
    if field == "sender_address":
        return [sender] if sender else []
    if field == "sender_domain":
        return [sender.rpartition("@")[2]] if "@" in sender else []
    if field == "subject":
        return [parsed.subject]
    if field == "body":
        return [parsed.text_body]
    if field == "recipient":
        return [r for r in recipients if r]
    name = field[len(HEADER_PREFIX) :].lower()
    return [value for key, value in parsed.headers if key.lower() == name]


def condition_matches(
    condition: Condition, parsed: ParsedMessage, recipients: tuple[str, ...]
) -> bool:
    for text in _values(condition.field, parsed, recipients):
        if condition.op == "matches":
            if pattern_matches(condition.value, text):
                return True
            continue
        text = text[:MAX_SCANNED].casefold()
        wanted = condition.value.casefold()
        if wanted == text.strip() if condition.op == "equals" else wanted in text:
            return True
    return False


def rule_matches(
    match: str,
    conditions: Iterable[Condition],
    parsed: ParsedMessage,
    recipients: tuple[str, ...],
) -> bool:
    results = (condition_matches(c, parsed, recipients) for c in conditions)
    return any(results) if match == "any" else all(results)


def _stored_conditions(rule: RoutingRule) -> list[Condition] | None:
    """A stored rule's conditions, or None if they no longer validate (such a rule is skipped)."""
    try:
        return validate_conditions(rule.conditions, rule=rule.name)
    except Invalid:
        return None


Usable = tuple[tuple[RoutingRule, tuple[Condition, ...]], ...]


def usable_rules(rules: Iterable[RoutingRule]) -> Usable:
    """The enabled rules in the order they are tried (position, then id), each with its
    validated conditions; a rule whose stored conditions no longer validate is skipped."""
    usable = []
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        conditions = _stored_conditions(rule) if rule.enabled else None
        if conditions:
            usable.append((rule, tuple(conditions)))
    return tuple(usable)


def _first(
    usable: Usable, parsed: ParsedMessage, recipients: tuple[str, ...]
) -> RoutingRule | None:
    return next(
        (rule for rule, conditions in usable
         if rule_matches(rule.match, conditions, parsed, recipients)),
        None,
    )  # fmt: skip


def first_match(
    rules: Iterable[RoutingRule], parsed: ParsedMessage, recipients: tuple[str, ...]
) -> RoutingRule | None:
    """The first enabled rule (by position, then id) whose conditions hold."""
    return _first(usable_rules(rules), parsed, recipients)


# --- inbound ---------------------------------------------------------------------------------


def default_queue_id(session: Session, mailbox: Mailbox) -> int | None:
    """The mailbox's first linked queue: lowest link position, then lowest queue id."""
    return session.scalar(
        select(QueueMailbox.queue_id)
        .where(QueueMailbox.mailbox_id == mailbox.id)
        .order_by(QueueMailbox.position, QueueMailbox.queue_id)
        .limit(1)
    )


@dataclass(frozen=True)
class InboundRouting:
    """What routing reads for one mailbox: its organisation's enabled rules, in the order they
    are tried, with their validated conditions, and the mailbox's default queue.

    Ingest loads it once per write transaction (a batch of mail), not once per message.
    """

    rules: Usable
    default_queue_id: int | None


def load_inbound_routing(session: Session, mailbox: Mailbox) -> InboundRouting:
    rules = session.scalars(
        select(RoutingRule).where(
            RoutingRule.organisation_id == mailbox.organisation_id, RoutingRule.enabled.is_(True)
        )
    ).all()
    return InboundRouting(usable_rules(rules), default_queue_id(session, mailbox))


def decide(
    routing: InboundRouting, mailbox: Mailbox, parsed: ParsedMessage, recipient: str
) -> RouteDecision:
    """Queue, priority and tags for one message as received by one mailbox (first match wins).

    `recipient` conditions match the address the mail was delivered to, the mailbox's address
    or its alias, so a rule written with either works however the mail arrived.
    """
    recipients = tuple(
        dict.fromkeys(a.lower() for a in (recipient, mailbox.email_address, mailbox.alias) if a)
    )
    rule = _first(routing.rules, parsed, recipients)
    queue_id = rule.action_queue_id if rule is not None else None
    if queue_id is None:
        queue_id = routing.default_queue_id
    return RouteDecision(
        queue_id=queue_id,
        priority=rule.action_priority if rule is not None else None,
        tags=(rule.action_tag,) if rule is not None and rule.action_tag else (),
        rule_id=rule.id if rule is not None else None,
    )


def route_inbound(
    session: Session, mailbox: Mailbox, parsed: ParsedMessage, recipient: str
) -> RouteDecision:
    """Decide queue, priority and tags for one message (see `decide`), reading the rules now."""
    return decide(load_inbound_routing(session, mailbox), mailbox, parsed, recipient)


# --- admin services --------------------------------------------------------------------------


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
    return [_record(session, r) for r in rules]
