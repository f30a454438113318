"""Routing rules (F34): which queue, priority and tag an inbound message gets.

Rules belong to an organisation and are tried in order of `position`; the first enabled rule
whose conditions match decides (first match wins), and a message no rule matches goes to the
first queue linked to its mailbox. Matching is case-insensitive. Regular expressions come from
admins but run on text from strangers, so they are bounded: a length limit, a refusal of nested
repetition (the classic catastrophic-backtracking shape) and a cap on the text they scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, QueueMailbox, RoutingRule
from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.routing.conditions import (
    HEADER_PREFIX,
    Condition,
    validate_conditions,
)
from tui_helpdesk.services.routing.patterns import (
    pattern_matches,
)

if TYPE_CHECKING:
    from tui_helpdesk.mail.parsed import ParsedMessage

MAX_SCANNED = 1_000_000  # characters a keyword (equals/contains) condition looks at


@dataclass(frozen=True)
class RouteDecision:
    queue_id: int | None
    priority: str | None
    tags: tuple[str, ...]
    rule_id: int | None


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
