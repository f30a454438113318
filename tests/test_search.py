"""Search over real ingested mail, on both backends: words, filters, negation, visibility,
paging, escaping of full-text syntax, and mail written after the index was built."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from factories import add_user
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from test_ingest_support import Desk, build_mail, deliver, inbound, make_desk, only_conversation

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Attachment, Blob, Conversation, ConversationTag, Message
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import ingest, users
from tui_helpdesk.services.search import indexer, results
from tui_helpdesk.services.search.results import search

NASTY = [
    '"', '""', '"""', "*", "**", "a*b", "NEAR(a b)", "NEAR", "a NEAR/2 b", "AND", "OR", "NOT",
    "a OR b", "-", "--x", "(", ")", "a)", "{a b}: c", "subject:", ":", "a:b", "^a", "a^",
    "'", "''", "a'b", "\\", "a\\'", "!", "a & b", "a | b", "a <-> b", "a:*", "'a':A",
    "\x00", "\u202e", "é", "日本語", "a\u0301", "🙂", "%", "_", "a_b", "[a]", "\t\n",
]  # fmt: skip


@pytest.fixture
def desk(db: Database, settings: Settings) -> Desk:
    return make_desk(db, settings)


def _mail(db: Database, settings: Settings, rcpt: str, **fields: object) -> int:
    at = fields.pop("at", None)
    raw = build_mail(**fields)  # type: ignore[arg-type]
    return only_conversation(deliver(db, settings, raw, rcpt, **({"at": at} if at else {})))


def _found(db: Database, who: UserRecord, query: str, **kwargs: object) -> list[int]:
    """The hits, the same before and after PostgreSQL's indexer filled the new rows' vectors
    (until then search computes them: services/search/indexer.py)."""
    with db.read() as session:
        page = search(session, who, query, **kwargs)  # type: ignore[arg-type]
    with db.write() as session:
        filled = indexer.index_pending(session)
    if filled:
        with db.read() as session:
            again = search(session, who, query, **kwargs)  # type: ignore[arg-type]
        assert [(h.conversation.id, h.message_id, h.snippet) for h in again.hits] == [
            (h.conversation.id, h.message_id, h.snippet) for h in page.hits
        ]
    return [hit.conversation.id for hit in page.hits]


def _actor(db: Database, email: str) -> UserRecord:
    with db.read() as session:
        return users.resolve_actor(session, email=email, os_user=None)


def test_words_phrases_prefixes_and_participants(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    alias = desk.support.alias
    fire = _mail(db, settings, alias, subject="Printer on fire", body="Smoke everywhere.\r\n")
    paper = _mail(db, settings, alias, subject="Paper jam", body="Fire drill was fine.\r\n",
                  sender="Dan Doe <dan@other.example>",
                  cc="Erin <erin@partner.example>")  # fmt: skip
    ada = desk.org.admin
    assert _found(db, ada, "fire") == [paper, fire]  # newest match first
    assert _found(db, ada, '"on fire"') == [fire]
    assert _found(db, ada, '"fire on"') == []
    assert _found(db, ada, "smok*") == [fire]
    assert _found(db, ada, "SMOKE") == [fire]
    assert _found(db, ada, "dan") == [paper]  # the sender's name
    assert _found(db, ada, "partner.example") == [paper]  # a Cc address, by its domain
    assert _found(db, ada, "from:carol@customer.test") == [fire]
    assert _found(db, ada, "from:customer.test") == [fire]
    assert _found(db, ada, 'from:"Dan Doe"') == [paper]
    assert _found(db, ada, "to:erin@partner.example") == [paper]
    assert _found(db, ada, "from:erin") == []  # Erin is a recipient, not the sender
    assert _found(db, ada, "to:support@acme.test fire") == [paper, fire]


def test_negation_excludes_conversations_any_of_whose_messages_match(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    alias = desk.support.alias
    raw = build_mail(subject="Printer on fire", body="Please help.\r\n")
    fire = only_conversation(deliver(db, settings, raw, alias))
    other = _mail(db, settings, alias, subject="Printer offline", body="Please help.\r\n")
    ada = desk.org.admin
    assert _found(db, ada, "printer -fire") == [other]
    reply = build_mail(subject="Re: Printer on fire", body="Toner smell now.\r\n",
                       in_reply_to=_message_id(raw))  # fmt: skip
    assert only_conversation(deliver(db, settings, reply, alias)) == fire
    assert _found(db, ada, "printer -toner") == [other]  # the reply holds it
    assert _found(db, ada, 'help -"on fire"') == [other]
    assert _found(db, ada, "-toner status:open") == [other]
    assert _found(db, ada, "-from:carol@customer.test") == []


def _message_id(raw: bytes) -> str:
    from test_ingest_support import message_id_of

    return message_id_of(raw)


def test_each_filter_and_its_negation(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    bob = _actor(db, "bob@acme.test")
    first = _mail(db, settings, desk.support.alias, subject="One")
    second = _mail(db, settings, desk.sales.alias, subject="Two")
    third = _mail(db, settings, desk.support.alias, subject="Three")
    with db.write() as session:
        session.execute(update(Conversation).where(Conversation.id == second)
                        .values(status="pending"))  # fmt: skip
        session.execute(update(Conversation).where(Conversation.id == third)
                        .values(assignee_id=bob.id))  # fmt: skip
        session.add(ConversationTag(conversation_id=first, tag="vip"))
        message = session.scalars(select(Message.id).where(Message.conversation_id == third)).one()
        session.add(Blob(sha256="0" * 64, size=1, data=b"x"))
        session.flush()
        session.add(Attachment(message_id=message, filename="a.pdf", size=1, sha256="0" * 64))
    ada = desk.org.admin
    everything = [third, second, first]
    cases = {
        "status:open": [third, first], "status:pending": [second], "-status:open": [second],
        "queue:support": [third, first], "queue:Sales": [second], "-queue:Sales": [third, first],
        "mailbox:sales@acme.test": [second], f"mailbox:{desk.support.alias}": [third, first],
        "-mailbox:sales@acme.test": [third, first], "assignee:bob@acme.test": [third],
        "assignee:none": [second, first], "-assignee:none": [third],
        "-assignee:bob@acme.test": [second, first], "tag:VIP": [first], "-tag:vip": [third, second],
        "has:attachment": [third], "-has:attachment": [second, first],
        "status:open tag:vip": [first], "status:open -tag:vip": [third],
    }  # fmt: skip
    for query, expected in cases.items():
        assert _found(db, ada, query) == expected, query
    assert _found(db, bob, "assignee:me") == [third]
    assert _found(db, ada, "assignee:me") == []
    assert sorted(_found(db, ada, "-status:closed")) == sorted(everything)


def test_dates_are_days_of_the_searchers_timezone(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    # 23:30 UTC on 30 Nov is already 1 Dec in Madrid (UTC+1) but not in New York (UTC-5).
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    evening = _mail(db, settings, desk.support.alias, subject="Evening", at=late)
    earlier = _mail(db, settings, desk.support.alias, subject="Earlier",
                    at=late - timedelta(days=2))  # fmt: skip
    ada = desk.org.admin
    with db.write() as session:
        users.set_timezone(session, ada, ada.email, "Europe/Madrid")
    ada = _actor(db, ada.email)
    assert _found(db, ada, "after:2026-12-01") == [evening]
    assert _found(db, ada, "before:2026-12-01") == [earlier]
    with db.write() as session:
        users.set_timezone(session, ada, ada.email, "America/New_York")
    ada = _actor(db, ada.email)
    assert _found(db, ada, "after:2026-12-01") == []
    assert _found(db, ada, "after:2026-11-30 before:2026-12-01") == [evening]
    assert _found(db, ada, "-after:2026-11-30") == [earlier]


def test_names_that_do_not_exist_are_errors_not_empty_results(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    _mail(db, settings, desk.support.alias)
    for query, message in [
        ("queue:Suport", "queue: no queue named 'Suport'"),
        ("mailbox:nope@acme.test", "mailbox: no mailbox with address 'nope@acme.test'"),
        ("assignee:nobody@acme.test", "assignee: no user with email 'nobody@acme.test'"),
        ("printer form:carol", "unknown filter 'form:' — did you mean from:?"),
    ]:
        with db.read() as session, pytest.raises(Invalid) as raised:
            search(session, desk.org.admin, query)
        assert raised.value.message == message


def test_full_text_syntax_from_a_user_is_only_text(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    odd = _mail(db, settings, desk.support.alias, subject="Odd",
                body="Call NEAR me at 10:30, a_b or (x) 'quoted' \"dq\" C++ a*b\r\n")  # fmt: skip
    ada = desk.org.admin
    for query in NASTY:
        for text in (query, f"-{query}", f"from:{query}", f'"{query}"', f"{query}*"):
            with contextlib.suppress(Invalid):  # refused is fine; a database error is not
                _found(db, ada, text)
    assert _found(db, ada, "NEAR") == [odd]
    assert _found(db, ada, '"10:30"') == [odd]
    assert _found(db, ada, "(x)") == [odd]
    assert _found(db, ada, "'quoted'") == [odd]
    assert _found(db, ada, '"dq"') == [odd]
    assert _found(db, ada, "a*b") == [odd]


@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(query=st.text(max_size=60))
def test_no_query_raises_a_database_error(db: Database, query: str) -> None:
    who = _admin(db)
    with db.read() as session, contextlib.suppress(Invalid):
        search(session, who, query)  # a database error would propagate and fail the test


def _admin(db: Database) -> UserRecord:
    from test_tui_data import seed

    with db.read() as session:
        found = users.find(session, "ada@acme.test")
    if found is None:
        seed(db)
    return _actor(db, "ada@acme.test")


def test_results_are_what_the_searcher_may_see(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    support = _mail(db, settings, desk.support.alias, subject="Printer")
    sales = _mail(db, settings, desk.sales.alias, subject="Printer quote")
    cy = add_user(db, desk.org.admin, "cy@acme.test")
    assert _found(db, desk.org.admin, "printer") == [sales, support]
    assert _found(db, _actor(db, "bob@acme.test"), "printer") == [support]
    assert _found(db, cy, "printer") == []
    assert _found(db, cy, "status:open") == []


@pytest.mark.parametrize("few", [results.FEW, 0])
def test_pages_cover_every_hit_once(db, settings, desk, few, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Also with every word "common" (few=0): PostgreSQL then reads matches in chunks, newest
    first, as it does for common words on a large table."""
    monkeypatch.setattr(results, "FEW", few)
    ids = [_mail(db, settings, desk.support.alias, subject=f"Order {n}", body="refund please\r\n")
           for n in range(11)]  # fmt: skip
    # A second matching message in an old conversation: it still comes once, at its newest.
    with db.write() as session:
        old = session.get(Conversation, ids[0])
        assert old is not None
        ingest.store_inbound(session, settings, inbound(
            build_mail(subject="Re: Order 0", body="refund still?\r\n",
                       in_reply_to=_first_message_id(session, ids[0])),
            desk.support.alias))  # fmt: skip
    ada = desk.org.admin
    for query in ("refund", "status:open"):
        seen, after = [], None
        while True:
            with db.read() as session:
                page = search(session, ada, query, limit=3, after=after)
            seen += [hit.conversation.id for hit in page.hits]
            if page.next is None:
                break
            after = page.next
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen)), query
    assert _found(db, ada, "refund")[0] == ids[0]  # its reply is the newest match


def _first_message_id(session, conversation_id: int) -> str:  # type: ignore[no-untyped-def]
    return session.scalars(
        select(Message.message_id_header).where(Message.conversation_id == conversation_id)
    ).first()


def test_hits_carry_the_matching_message_and_an_excerpt(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    body = "Hello,\r\n" + "We tried everything. " * 8 + "Then the toner exploded.\r\n"
    _mail(db, settings, desk.support.alias, subject="Printer", body=body)
    with db.read() as session:
        (hit,) = search(session, desk.org.admin, "toner").hits
        message = session.get(Message, hit.message_id)
    assert message is not None and "toner" in message.text_body
    assert hit.snippet.startswith("…") and "Then the toner exploded." in hit.snippet
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["toner"]


def test_mail_stored_after_the_index_exists_is_found_whoever_writes_it(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada = desk.org.admin
    batch = [inbound(build_mail(subject=f"Batch {n}", body="xylophone\r\n"), desk.support.alias)
             for n in range(3)]  # fmt: skip
    stored = ingest.store_batch(db, settings, batch)  # the worker's bulk path
    assert len(_found(db, ada, "xylophone")) == 3
    single = _mail(db, settings, desk.support.alias, subject="Single", body="marimba\r\n")
    assert _found(db, ada, "marimba") == [single]
    message_id = stored[0].message_ids[0]  # type: ignore[union-attr]
    with db.write() as session:  # an edit by another path is indexed anew
        session.execute(update(Message).where(Message.id == message_id)
                        .values(text_body="glockenspiel"))  # fmt: skip
    assert len(_found(db, ada, "xylophone")) == 2
    assert len(_found(db, ada, "glockenspiel")) == 1
    with db.write() as session:  # and a deleted message leaves the index
        session.execute(delete(Attachment).where(Attachment.message_id == message_id))
        session.execute(delete(Message).where(Message.id == message_id))
    assert _found(db, ada, "glockenspiel") == []
