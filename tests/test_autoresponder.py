"""Autoresponders without loops (F19, F33, F72, RFC 3834), on both backends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from factories import add_mailbox, add_queue, add_user, make_org
from sqlalchemy import func, select

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import (
    AutoReplyLog,
    Conversation,
    Mailbox,
    Message,
    OutboxJob,
    Queue,
)
from tui_helpdesk.errors import Invalid, PermissionDenied
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.services import audit, autoresponder, hours
from tui_helpdesk.services.autoresponder import rules as autoresponder_rules

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday 11:00 in Paris


def raw_mail(
    *,
    sender: str = "Jane Doe <jane@example.com>",
    subject: str = "Help please",
    extra: str = "",
    message_id: str = "<m1@example.com>",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@acme.test\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nReferences: <r0@example.com>\r\n"
        f"In-Reply-To: <r0@example.com>\r\n{extra}\r\nHello there\r\n"
    ).encode()


@dataclass(frozen=True)
class Sent:
    """What on_inbound queued, read back after the commit."""

    job: OutboxJob
    message: Message
    conversation_id: int
    headers: dict[str, str]
    body: str


@pytest.fixture
def acme(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    org = make_org(db, timezone="UTC")
    add_mailbox(db, settings, org.admin, "support", display_name="Acme Support",
                timezone="Europe/Paris")  # fmt: skip
    add_mailbox(db, settings, org.admin, "sales")
    queue = add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    return org, queue


def turn_on(db: Database, org, **fields) -> None:  # type: ignore[no-untyped-def]
    values = {"enabled": True, "body": "Thanks, we got your message."} | fields
    with db.write() as session:
        autoresponder.configure(session, org.admin, "support@acme.test", **values)


def deliver(
    db: Database,
    settings: Settings,
    raw: bytes,
    *,
    envelope_from: str = "jane@example.com",
    now: datetime = NOW,
    mailbox: str = "support@acme.test",
) -> Sent | None:
    """What ingest does: store the inbound message in a conversation, then call on_inbound."""
    parsed = parse_message(raw)
    with db.write() as session:
        box = session.scalars(select(Mailbox).where(Mailbox.email_address == mailbox)).one()
        queue = session.scalars(select(Queue).where(Queue.name == "Support")).one()
        conversation = Conversation(
            organisation_id=box.organisation_id, mailbox_id=box.id, queue_id=queue.id,
            subject=parsed.subject, last_message_at=now, message_count=1,
        )  # fmt: skip
        session.add(conversation)
        session.flush()
        message = Message(
            conversation_id=conversation.id, mailbox_id=box.id, envelope_from=envelope_from,
            raw=raw, raw_sha256=parsed.sha256, raw_size=len(raw), received_at=now,
            message_id_header=parsed.message_id, subject=parsed.subject,
        )  # fmt: skip
        session.add(message)
        session.flush()
        job = autoresponder.on_inbound(
            session, settings, mailbox=box, queue=queue, conversation=conversation,
            message=message, parsed=parsed, now=now,
        )  # fmt: skip
        if job is None:
            return None
        reply = session.get_one(Message, job.message_id)
        job_raw, reply_raw = job.raw, reply.raw
        conversation_id = conversation.id
    email = message_from_bytes(job_raw, policy=policy.default)
    assert reply_raw == job_raw
    return Sent(
        job=job, message=reply, conversation_id=conversation_id,
        headers={k: str(v) for k, v in email.items()}, body=email.get_content(),
    )  # fmt: skip


def log_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AutoReplyLog)) or 0


# --- the reply -------------------------------------------------------------------------------


def test_reply_headers_storage_and_outbox_job(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    sent = deliver(db, settings, raw_mail(), envelope_from="bounces+jane@example.com")
    assert sent is not None
    h = sent.headers
    assert h["From"] == "Acme Support <support@acme.test>"
    assert h["To"] == "bounces+jane@example.com"  # RFC 3834: the return path, not From
    assert h["Subject"] == f"Re: Help please [HD#{sent.conversation_id}]"
    assert h["Auto-Submitted"] == "auto-replied"
    assert h["X-TUI-Helpdesk-Loop"] == "support@acme.test"
    assert h["In-Reply-To"] == "<m1@example.com>"
    assert h["References"] == "<r0@example.com> <m1@example.com>"
    assert h["Message-ID"].startswith("<") and h["Message-ID"].endswith("@acme.test>")
    assert "Date" in h and sent.body.strip() == "Thanks, we got your message."
    job, reply = sent.job, sent.message
    assert (job.kind, job.status, job.mail_from, job.rcpt_to) == (
        "auto_reply", "queued", "support@acme.test", ["bounces+jane@example.com"],
    )  # fmt: skip
    assert job.next_attempt_at == NOW and job.conversation_id == sent.conversation_id
    assert (reply.direction, reply.kind, reply.auto_submitted) == (
        "outbound", "auto_reply", "auto-replied",
    )  # fmt: skip
    assert reply.message_id_header == h["Message-ID"]
    assert reply.raw_sha256 == hashlib.sha256(job.raw).hexdigest()
    assert reply.raw_size == len(job.raw) and reply.subject == h["Subject"]
    with db.read() as session:
        conversation = session.get_one(Conversation, sent.conversation_id)
        assert conversation.message_count == 2
        (entry,) = session.scalars(select(AutoReplyLog)).all()
    assert (entry.recipient, entry.kind, entry.sent_at) == (
        "bounces+jane@example.com", "autoresponder", NOW,
    )  # fmt: skip


def test_configured_subject_placeholders_and_token_once(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org, subject="We got: {{subject}}", body="Ticket {{conversation_id}}. {{unknown}}")
    sent = deliver(db, settings, raw_mail(subject="Re: Broken [HD#77]"))
    assert sent is not None
    cid = sent.conversation_id
    assert sent.headers["Subject"] == f"We got: Re: Broken [HD#{cid}]"  # a foreign token goes
    assert sent.body.strip() == f"Ticket {cid}. {{{{unknown}}}}"


def test_hostile_subject_cannot_inject_headers(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    sent = deliver(db, settings, raw_mail(subject="=?utf-8?q?hi=0D=0ABcc:_evil@x.test?="))
    assert sent is not None
    assert "Bcc" not in sent.headers and b"\r\nBcc:" not in sent.job.raw
    assert sent.headers["Subject"].startswith("Re: hi Bcc: evil@x.test [HD#")


def test_delay_sets_the_first_attempt(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org, delay_seconds=300)
    sent = deliver(db, settings, raw_mail())
    assert sent is not None and sent.job.next_attempt_at == NOW + timedelta(seconds=300)


# --- never answering what must not be answered (RFC 3834, F72) -------------------------------


DSN = "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n"
SUPPRESSED: dict[str, tuple[str, dict[str, str]]] = {  # case: (reason, how the mail looks)
    "auto-replied": ("Auto-Submitted", {"extra": "Auto-Submitted: auto-replied\r\n"}),
    "auto-generated": ("Auto-Submitted", {"extra": "Auto-Submitted: Auto-Generated\r\n"}),
    "precedence bulk": ("Precedence", {"extra": "Precedence: bulk\r\n"}),
    "precedence list": ("Precedence", {"extra": "Precedence: list\r\n"}),
    "precedence junk": ("Precedence", {"extra": "Precedence: junk\r\n"}),
    "list-id": ("mailing list", {"extra": "List-Id: <users.lists.example.com>\r\n"}),
    "list-unsubscribe": ("mailing list", {"extra": "List-Unsubscribe: <mailto:x@example.com>\r\n"}),
    "dsn": ("delivery status", {"extra": DSN}),
    "loop header": ("loop header", {"extra": "X-TUI-Helpdesk-Loop: support@other.test\r\n"}),
    "exchange suppress": ("Suppress", {"extra": "X-Auto-Response-Suppress: OOF, AutoReply\r\n"}),
    "other autoresponder": ("itself an automatic reply", {"extra": "X-Autoreply: yes\r\n"}),
    "null return path": ("return path", {"envelope_from": ""}),
    "null return path <>": ("return path", {"envelope_from": "<>"}),
    "mailer-daemon": ("automated sender", {"envelope_from": "MAILER-DAEMON@mx.example.com"}),
    "postmaster sender": ("automated sender", {"sender": "postmaster@example.com"}),
    "noreply sender": ("automated sender", {"sender": "No Reply <no-reply@example.com>"}),
    "list owner": ("automated sender", {"envelope_from": "owner-users@lists.example.com"}),
    "list request": ("automated sender", {"sender": "users-request@lists.example.com"}),
    "our mailbox": (
        "our own mail",
        {"sender": "sales@acme.test", "envelope_from": "sales@acme.test"},
    ),
    "our own address as From": ("our own mail", {"sender": "Support <SUPPORT@acme.test>"}),
    "platform domain": ("our own mail", {"envelope_from": "abc123@in.helpdesk.localhost"}),
    "unparseable sender": ("not parseable", {"sender": "not an address"}),
    "garbage return path": ("return path", {"envelope_from": "jane at example"}),
}


@pytest.mark.parametrize("case", list(SUPPRESSED))
def test_suppressed(db, settings, acme, case: str) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    expected, fields = SUPPRESSED[case]
    fields = dict(fields)
    envelope = fields.pop("envelope_from", "jane@example.com")
    assert deliver(db, settings, raw_mail(**fields), envelope_from=envelope) is None
    assert log_count(db) == 0
    own = frozenset({"sales@acme.test", "support@acme.test"})
    reason = autoresponder_rules.suppression_reason(
        parse_message(raw_mail(**fields)), envelope, own_addresses=own,
        platform_domain=settings.mail.platform_domain,
    )  # fmt: skip
    assert reason is not None and expected in reason  # suppressed for the reason under test


def test_auto_submitted_no_is_answered(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    assert deliver(db, settings, raw_mail(extra="Auto-Submitted: no\r\n")) is not None


def test_our_own_alias_is_never_answered(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    with db.read() as session:
        alias = session.scalar(select(Mailbox.alias).where(Mailbox.local_part == "sales"))
    assert alias is not None
    other_settings = settings.replace(mail={"platform_domain": "elsewhere.test"})
    assert deliver(db, other_settings, raw_mail(), envelope_from=alias.upper()) is None


def test_suppression_reason_names_the_cause() -> None:
    def reason(raw: bytes, envelope: str = "jane@example.com") -> str | None:
        return autoresponder_rules.suppression_reason(
            parse_message(raw), envelope, own_addresses=frozenset(), platform_domain="in.x.test"
        )

    assert reason(raw_mail()) is None
    assert reason(raw_mail(extra="Precedence: bulk\r\n")) == "Precedence: bulk"
    assert reason(raw_mail(), "<>") == "empty or unusable return path"
    assert reason(raw_mail(extra="List-Id: x\r\n")) == "mailing list (List-* header)"


# --- limits and switches ---------------------------------------------------------------------


def test_one_reply_per_sender_per_mailbox_per_period(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    with db.write() as session:
        autoresponder.configure(
            session, org.admin, "sales@acme.test", enabled=True, body="Sales will answer."
        )
    period = settings.mail.autoreply_period_hours
    assert deliver(db, settings, raw_mail()) is not None
    assert (
        deliver(db, settings, raw_mail(message_id="<m2@x>"), now=NOW + timedelta(hours=1)) is None
    )
    # the limit is per sender, address compared without case
    assert deliver(db, settings, raw_mail(), envelope_from="JANE@EXAMPLE.COM") is None
    assert deliver(db, settings, raw_mail(), envelope_from="joe@example.com") is not None
    # and per mailbox
    assert deliver(db, settings, raw_mail(), mailbox="sales@acme.test") is not None
    edge = NOW + timedelta(hours=period)
    assert deliver(db, settings, raw_mail(), now=edge) is not None  # the period has passed
    assert log_count(db) == 4


def test_period_is_configurable(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    hourly = settings.replace(mail={"autoreply_period_hours": 1})
    assert deliver(db, hourly, raw_mail()) is not None
    assert deliver(db, hourly, raw_mail(), now=NOW + timedelta(minutes=59)) is None
    assert deliver(db, hourly, raw_mail(), now=NOW + timedelta(minutes=61)) is not None


def test_global_switch_turns_every_autoresponder_off(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org)
    off = settings.replace(mail={"autoresponders_enabled": False})
    assert deliver(db, off, raw_mail()) is None
    assert log_count(db) == 0


def test_disabled_autoresponder_sends_nothing(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    assert deliver(db, settings, raw_mail()) is None  # never configured
    turn_on(db, org, enabled=False)
    assert deliver(db, settings, raw_mail()) is None


def test_windows_are_read_in_the_mailbox_timezone(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    turn_on(db, org, windows=[{"start": "2026-12-24T00:00", "end": "2026-12-27T00:00"}])
    # 23:30 UTC on the 23rd is 00:30 on the 24th in Paris: inside
    assert deliver(db, settings, raw_mail(), now=datetime(2026, 12, 23, 23, 30, tzinfo=UTC))
    assert deliver(
        db, settings, raw_mail(), envelope_from="joe@example.com",
        now=datetime(2026, 12, 23, 22, 30, tzinfo=UTC),  # 23:30 on the 23rd in Paris: before
    ) is None  # fmt: skip
    assert deliver(
        db, settings, raw_mail(), envelope_from="joe@example.com",
        now=datetime(2026, 12, 26, 23, 0, tzinfo=UTC),  # 00:00 on the 27th: the end is exclusive
    ) is None  # fmt: skip
    assert deliver(
        db, settings, raw_mail(), envelope_from="joe@example.com",
        now=datetime(2026, 12, 26, 22, 59, tzinfo=UTC),
    ) is not None  # fmt: skip


# --- outside working hours (F33) -------------------------------------------------------------


def set_office_hours(db: Database, org, queue_id: int) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        hours.set_hours(
            session, org.admin, queue_id, enabled=True, timezone="Europe/Paris",
            schedule={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            outside_hours_enabled=True, outside_hours_subject="Closed until {{next_opening}}",
            outside_hours_body="We are closed; we open again {{next_opening}}.",
        )  # fmt: skip


def test_outside_hours_message_when_the_queue_is_closed(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, queue = acme
    set_office_hours(db, org, queue.id)
    assert deliver(db, settings, raw_mail()) is None  # Monday 11:00: open, no autoresponder
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    sent = deliver(db, settings, raw_mail(), now=saturday)
    assert sent is not None
    opening = "Mon 2026-11-30 09:00 Europe/Paris"
    assert sent.headers["Subject"] == f"Closed until {opening} [HD#{sent.conversation_id}]"
    assert sent.body.strip() == f"We are closed; we open again {opening}."
    assert sent.job.next_attempt_at == saturday
    with db.read() as session:
        assert session.scalars(select(AutoReplyLog.kind)).all() == ["outside_hours"]


def test_autoresponder_window_first_then_outside_hours(db, settings, acme) -> None:  # type: ignore[no-untyped-def]
    org, queue = acme
    set_office_hours(db, org, queue.id)
    turn_on(db, org, subject="Holidays", windows=[{"start": "2026-12-24T00:00",
                                                    "end": "2026-12-27T00:00"}])  # fmt: skip
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    sent = deliver(db, settings, raw_mail(), now=christmas)
    assert sent is not None and sent.headers["Subject"].startswith("Holidays [HD#")
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # outside the window, queue closed
    sent = deliver(db, settings, raw_mail(), envelope_from="joe@example.com", now=saturday)
    assert sent is not None and sent.headers["Subject"].startswith("Closed until")


# --- configure -------------------------------------------------------------------------------


def test_configure_stores_normalises_and_audits(db, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    with db.write() as session:
        record = autoresponder.configure(
            session, org.admin, "support@acme.test", enabled=True, subject=" Away ",
            body="Back soon", delay_seconds=60,
            windows=[{"start": "2026-12-31T18:00", "end": "2027-01-02T09:00"},
                     {"start": "2026-12-24T00:00:00", "end": "2026-12-27T00:00"}],
        )  # fmt: skip
    assert record.enabled and record.subject == "Away" and record.delay_seconds == 60
    assert record.timezone == "Europe/Paris"
    assert record.windows == (
        {"start": "2026-12-24T00:00", "end": "2026-12-27T00:00"},
        {"start": "2026-12-31T18:00", "end": "2027-01-02T09:00"},
    )
    with db.write() as session:
        assert autoresponder.get(session, org.admin, "support@acme.test") == record
        changed = autoresponder.configure(session, org.admin, "support@acme.test", enabled=False)
        assert not changed.enabled and changed.body == "Back soon"  # left-out fields stay
        entries = [
            e for e in audit.list_entries(session, org.admin, entity_type="mailbox")
            if e.action == "mailbox.autoresponder.update"
        ]  # fmt: skip
    assert [e.after["enabled"] for e in entries] == [False, True]
    assert entries[1].before["enabled"] is False and entries[1].after["delay_seconds"] == 60


def test_configure_rejects_bad_input_and_non_admins(db, acme) -> None:  # type: ignore[no-untyped-def]
    org, _queue = acme
    agent = add_user(db, org.admin, "bob@acme.test")
    attempts = [
        ({"subject": "x" * 256}, "subject: at most 255"),
        ({"subject": "two\nlines"}, "subject: must be one line"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": 86_401}, "delay_seconds"),
        ({"enabled": True}, "body: write the text"),
        ({"enabled": True, "body": "   "}, "body: write the text"),
        ({"windows": [{"start": "2026-12-27T00:00", "end": "2026-12-24T00:00"}]},
         "window 1: start must be before end"),
        ({"windows": [{"start": "2026-12-24T00:00+01:00", "end": "2026-12-27T00:00"}]},
         "no offset"),
        ({"windows": [{"start": "Christmas", "end": "2026-12-27T00:00"}]}, "local date and time"),
        ({"windows": "always"}, "expected a list"),
    ]  # fmt: skip
    for fields, message in attempts:
        with pytest.raises(Invalid, match=message), db.write() as session:
            autoresponder.configure(session, org.admin, "support@acme.test", **fields)
    with pytest.raises(PermissionDenied), db.write() as session:
        autoresponder.configure(session, agent, "support@acme.test", enabled=False)
    with db.read() as session:
        assert autoresponder.get(session, agent, "support@acme.test").enabled is False
        assert session.scalar(select(func.count()).select_from(AutoReplyLog)) == 0
