"""Routing rules (F34): conditions, first match wins, order, regex safety, admin services."""

from __future__ import annotations

import pytest
from factories import add_mailbox, add_queue, add_user, make_org
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Mailbox, Organisation, Queue, RoutingRule
from tui_helpdesk.errors import Invalid, NotFound, PermissionDenied
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services import audit, routing
from tui_helpdesk.services.routing import conditions, patterns
from tui_helpdesk.services.routing import rules as routing_rules
from tui_helpdesk.services.routing.conditions import Condition
from tui_helpdesk.services.vocabulary import ROUTING_FIELDS

RECIPIENTS = ("k3x9q2ab@in.helpdesk.localhost", "support@acme.test")


def mail(
    *,
    sender: str = "Jane Doe <Jane.Doe@Example.COM>",
    subject: str = "Question about my invoice",
    body: str = "Hello, where is my refund?",
    extra: str = "",
) -> ParsedMessage:
    raw = (
        f"From: {sender}\r\nTo: support@acme.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <1@example.com>\r\n{extra}\r\n{body}\r\n"
    )
    return parse_message(raw.encode())


def rule(rule_id: int, position: int, conditions: list[dict[str, str]], **fields) -> RoutingRule:  # type: ignore[no-untyped-def]
    values = {"name": f"rule {rule_id}", "enabled": True, "match": "all"} | fields
    return RoutingRule(id=rule_id, position=position, conditions=conditions, **values)


def matches(field: str, op: str, value: str, parsed: ParsedMessage | None = None) -> bool:
    condition = conditions.validate_condition({"field": field, "op": op, "value": value}, where="t")
    return routing_rules.condition_matches(condition, parsed or mail(), RECIPIENTS)


# --- conditions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("sender_address", "equals", "jane.doe@example.com", True),  # case-insensitive
        ("sender_address", "equals", "jane@example.com", False),
        ("sender_address", "contains", "DOE@", True),
        ("sender_domain", "equals", "example.com", True),
        ("sender_domain", "equals", "ample.com", False),  # equals is the whole domain
        ("sender_domain", "matches", r"(^|\.)example\.com$", True),
        ("subject", "contains", "INVOICE", True),
        ("subject", "contains", "refund", False),
        ("subject", "equals", "question about my invoice", True),
        ("body", "contains", "refund", True),
        ("body", "contains", "invoice", False),
        ("recipient", "equals", "support@acme.test", True),  # the mailbox address
        ("recipient", "equals", "K3X9Q2AB@in.helpdesk.localhost", True),  # or its alias
        ("recipient", "equals", "sales@acme.test", False),
        ("subject", "matches", r"\binvoice\b", True),
        ("subject", "matches", r"^invoice", False),
    ],
)
def test_condition_fields_and_ops(field: str, op: str, value: str, expected: bool) -> None:
    assert matches(field, op, value) is expected


def test_header_conditions_look_at_every_value_of_that_header() -> None:
    parsed = mail(extra="X-Priority: 1 (Highest)\r\nX-Tag: one\r\nx-tag: Two\r\n")
    assert matches("header:X-Priority", "matches", r"^1\b", parsed)
    assert matches("header:x-priority", "contains", "highest", parsed)
    assert matches("header:X-Tag", "equals", "two", parsed)  # the second occurrence
    assert not matches("header:X-Missing", "contains", "1", parsed)


def test_no_sender_never_matches_sender_conditions() -> None:
    parsed = parse_message(b"Subject: hi\r\n\r\nbody\r\n")
    assert not matches("sender_address", "contains", "@", parsed)
    assert not matches("sender_domain", "matches", ".*", parsed)


def test_match_all_and_any() -> None:
    conditions = [
        Condition("subject", "contains", "invoice"),
        Condition("sender_domain", "equals", "other.test"),
    ]
    assert not routing_rules.rule_matches("all", conditions, mail(), RECIPIENTS)
    assert routing_rules.rule_matches("any", conditions, mail(), RECIPIENTS)


# --- first match wins ------------------------------------------------------------------------


def test_first_match_by_position_disabled_rules_skipped() -> None:
    billing = [{"field": "subject", "op": "contains", "value": "invoice"}]
    example = [{"field": "sender_domain", "op": "equals", "value": "example.com"}]
    rules = [
        rule(1, 3, example),
        rule(2, 2, billing),
        rule(3, 1, billing, enabled=False),
        rule(4, 2, example),  # same position as rule 2: the lower id comes first
    ]
    assert routing_rules.first_match(rules, mail(), RECIPIENTS).id == 2
    rules[1].enabled = False
    assert routing_rules.first_match(rules, mail(), RECIPIENTS).id == 4
    assert routing_rules.first_match(rules, mail(sender="x@other.test"), RECIPIENTS) is None


def test_a_stored_rule_that_no_longer_validates_is_skipped() -> None:
    broken = rule(1, 1, [{"field": "subject", "op": "matches", "value": r"(a)\1"}])
    fine = rule(2, 2, [{"field": "subject", "op": "contains", "value": "invoice"}])
    assert routing_rules.first_match([broken, fine], mail(subject="aa invoice"), ()).id == 2


def test_invalid_or_huge_patterns_are_refused_with_the_rule_named() -> None:
    with pytest.raises(
        Invalid, match=r"rule 'VIP', condition 2: regular expression .* not accepted"
    ):
        conditions.validate_conditions(
            [
                {"field": "subject", "op": "contains", "value": "x"},
                {"field": "subject", "op": "matches", "value": "(unclosed"},
            ],
            rule="VIP",
        )
    with pytest.raises(Invalid, match="value must be 1-500"):
        conditions.validate_conditions(
            [{"field": "subject", "op": "matches", "value": "a" * 501}], rule="VIP"
        )


def test_regex_scans_a_bounded_prefix_keywords_the_whole_field() -> None:
    body = "x" * (patterns.MAX_REGEX_SCANNED + 10) + " invoice"
    assert not matches("body", "matches", r"invoice", mail(body=body))  # beyond the regex window
    assert matches("body", "contains", "invoice", mail(body=body))  # keywords see it all
    assert matches("body", "matches", r"in\w+ce", mail(body="x" * 100 + " invoice"))


def test_condition_validation_messages() -> None:
    bad = [
        ({"field": "from", "op": "equals", "value": "x"}, "field must be one of"),
        ({"field": "header:", "op": "equals", "value": "x"}, "field must be one of"),
        ({"field": "header:Bad Name", "op": "equals", "value": "x"}, "field must be one of"),
        ({"field": "subject", "op": "startswith", "value": "x"}, "op must be one of"),
        ({"field": "subject", "op": "equals", "value": "  "}, "value must be"),
        ({"field": "subject", "op": "equals"}, "value must be"),
        ("subject contains x", "expected {field, op, value}"),
    ]
    for condition, message in bad:
        with pytest.raises(Invalid) as caught:
            conditions.validate_conditions([condition], rule="Billing")
        assert message in caught.value.message and "rule 'Billing'" in caught.value.message
    with pytest.raises(Invalid, match="at least one condition"):
        conditions.validate_conditions([], rule="Billing")


# --- route_inbound and the admin services, on both backends ----------------------------------


@pytest.fixture
def acme(db: Database, settings):  # type: ignore[no-untyped-def]
    org = make_org(db)
    box = add_mailbox(db, settings, org.admin, "support")
    add_mailbox(db, settings, org.admin, "sales")
    support = add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    billing = add_queue(db, settings, org.admin, "Billing", mailboxes=["support@acme.test"])
    return org, box, support, billing


def route(db: Database, address: str, parsed: ParsedMessage, recipient: str = ""):  # type: ignore[no-untyped-def]
    with db.read() as session:
        mailbox = session.query(Mailbox).filter_by(email_address=address).one()
        return routing.route_inbound(session, mailbox, parsed, recipient or mailbox.alias)


def test_no_rule_goes_to_the_mailbox_first_linked_queue(db, acme) -> None:  # type: ignore[no-untyped-def]
    _org, _box, support, _billing = acme
    decision = route(db, "support@acme.test", mail())
    assert decision == routing.RouteDecision(support.id, None, (), None)
    assert route(db, "sales@acme.test", mail()).queue_id is None  # linked to no queue


def test_rules_route_tag_and_prioritise(db, acme) -> None:  # type: ignore[no-untyped-def]
    org, _box, support, billing = acme
    with db.write() as session:
        invoices = routing.create_rule(
            session, org.admin, name="Invoices", queue="billing", priority="high", tag="Invoice",
            conditions=[{"field": "subject", "op": "contains", "value": "invoice"}],
        )  # fmt: skip
        vip = routing.create_rule(
            session, org.admin, name="VIP", tag="vip", match="any",
            conditions=[
                {"field": "sender_domain", "op": "equals", "value": "bigcustomer.test"},
                {"field": "header:X-Customer-Tier", "op": "equals", "value": "gold"},
            ],
        )  # fmt: skip
    assert (invoices.position, vip.position) == (1, 2)
    decision = route(db, "support@acme.test", mail())
    assert decision == routing.RouteDecision(billing.id, "high", ("invoice",), invoices.id)
    gold = mail(subject="hello", extra="X-Customer-Tier: Gold\r\n")
    # a rule with only a tag: the queue is still the mailbox's default one
    assert route(db, "support@acme.test", gold) == routing.RouteDecision(
        support.id, None, ("vip",), vip.id
    )
    with db.write() as session:  # reorder: VIP first, so a VIP's invoice is tagged vip
        order = routing.move_rule(session, org.admin, vip.id, 1)
    assert [r.name for r in order] == ["VIP", "Invoices"] and [r.position for r in order] == [1, 2]
    vip_invoice = mail(sender="ceo@bigcustomer.test")
    assert route(db, "support@acme.test", vip_invoice).rule_id == vip.id
    with db.write() as session:  # disabled rules are skipped
        routing.update_rule(session, org.admin, vip.id, enabled=False)
    assert route(db, "support@acme.test", vip_invoice).rule_id == invoices.id


def test_recipient_rule_works_for_address_and_alias(db, acme) -> None:  # type: ignore[no-untyped-def]
    org, box, _support, billing = acme
    with db.write() as session:
        routing.create_rule(
            session, org.admin, name="Support box", queue="Billing",
            conditions=[{"field": "recipient", "op": "equals", "value": "support@acme.test"}],
        )  # fmt: skip
    assert route(db, "support@acme.test", mail(), recipient=box.alias).queue_id == billing.id
    assert route(db, "support@acme.test", mail(), "support@acme.test").queue_id == billing.id
    assert route(db, "sales@acme.test", mail()).queue_id is None


def test_rules_of_another_organisation_are_ignored(db, acme) -> None:  # type: ignore[no-untyped-def]
    org, _box, support, _billing = acme
    with db.write() as session:  # the bootstrap services make one organisation; add one by hand
        other = Organisation(name="Other")
        session.add(other)
        session.flush()
        theirs = Queue(organisation_id=other.id, name="Theirs")
        session.add(theirs)
        session.flush()
        session.add(
            RoutingRule(
                organisation_id=other.id, name="All mine", position=1, action_queue_id=theirs.id,
                conditions=[{"field": "subject", "op": "matches", "value": "."}],
            )
        )  # fmt: skip
    with db.read() as session:
        assert routing.list_rules(session, org.admin) == []
    assert route(db, "support@acme.test", mail()).queue_id == support.id


def test_rule_services_validate_audit_and_check_permission(db, acme) -> None:  # type: ignore[no-untyped-def]
    org, _box, _support, _billing = acme
    agent = add_user(db, org.admin, "bob@acme.test")
    subject = [{"field": "subject", "op": "contains", "value": "x"}]
    attempts = [
        ({"name": "", "conditions": subject, "tag": "x"}, Invalid, "name"),
        ({"name": "R", "conditions": subject}, Invalid, "rule 'R': give at least one action"),
        ({"name": "R", "conditions": subject, "queue": "Nope"}, NotFound, "rule 'R': queue 'Nope'"),
        ({"name": "R", "conditions": subject, "priority": "asap"}, Invalid, "priority must be"),
        ({"name": "R", "conditions": subject, "tag": "two words"}, Invalid, "tag must be"),
        ({"name": "R", "conditions": subject, "tag": "x", "match": "most"}, Invalid, "all or any"),
        ({"name": "R", "conditions": subject, "tag": "x", "position": 3}, Invalid, "from 1 to 1"),
    ]
    for fields, error, message in attempts:
        with pytest.raises(error, match=message), db.write() as session:
            routing.create_rule(session, org.admin, **fields)
    with pytest.raises(PermissionDenied), db.write() as session:
        routing.create_rule(session, agent, name="R", conditions=subject, tag="x")
    with db.write() as session:
        first = routing.create_rule(session, org.admin, name="A", conditions=subject, tag="a")
        second = routing.create_rule(
            session, org.admin, name="B", conditions=subject, tag="b", position=1
        )
        assert [r.name for r in routing.list_rules(session, org.admin)] == ["B", "A"]
        updated = routing.update_rule(
            session, org.admin, first.id, name="A2", priority="urgent", tag=None, queue="Support"
        )
        assert (updated.name, updated.priority, updated.tag, updated.queue) == (
            "A2", "urgent", None, "Support",
        )  # fmt: skip
        with pytest.raises(Invalid, match="rule 'A2': give at least one action"):
            routing.update_rule(session, org.admin, first.id, priority=None, queue=None)
    with db.write() as session:
        routing.delete_rule(session, org.admin, second.id)
        remaining = routing.list_rules(session, org.admin)
        assert [(r.name, r.position) for r in remaining] == [("A2", 1)]
        with pytest.raises(NotFound):
            routing.delete_rule(session, org.admin, second.id)
        actions = [
            e.action for e in audit.list_entries(session, org.admin, entity_type="routing_rule")
        ]
    assert actions == ["routing_rule.delete", "routing_rule.update", "routing_rule.create",
                       "routing_rule.create"]  # fmt: skip


# --- hostile input never breaks routing ------------------------------------------------------


@hypothesis_settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400), keyword=st.text(min_size=1, max_size=8).filter(str.strip))
def test_conditions_on_arbitrary_mail_never_raise(raw: bytes, keyword: str) -> None:
    parsed = parse_message(raw)
    for field in (*ROUTING_FIELDS, "header:Subject"):
        for op in ("equals", "contains"):
            condition = Condition(field, op, keyword.strip())
            assert routing_rules.condition_matches(condition, parsed, RECIPIENTS) in (True, False)
