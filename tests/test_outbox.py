"""The outbox's rules (F73) on both backends, driven with a clock the test sets: claims and
leases, retries with backoff and their bounds, failures with the server's answer, the list,
`retry`, and the delivery state a conversation shows."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from factories import add_user
from test_ingest_support import build_mail, deliver, make_desk, only_conversation
from test_outbox_support import T0, jobs, queue_replies

from tui_helpdesk.db.models import OutboxJob
from tui_helpdesk.errors import Conflict, PermissionDenied
from tui_helpdesk.services import audit, autoresponder, outbox
from tui_helpdesk.services.conversations.thread import get_conversation
from tui_helpdesk.services.outbox import JobResult

LEASE = 300.0


def claim(db, settings, claimer: str, now, limit: int = 10):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return outbox.claim(session, settings, claimer=claimer, now=now, limit=limit)


def record(db, settings, claimer: str, results, now):  # type: ignore[no-untyped-def]
    with db.write() as session:
        outbox.record(session, settings, results, claimer=claimer, now=now,
                      rng=random.Random(7))  # fmt: skip


def test_a_claim_takes_due_jobs_once_and_a_dead_claim_is_taken_over(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    [(job_id, _)] = queue_replies(db, desk.org.admin, "support@acme.test", 1)
    queue_replies(db, desk.org.admin, "support@acme.test", 1, not_before=T0 + timedelta(hours=1))
    [first] = claim(db, settings, "a", T0)
    assert (first.id, first.attempts, first.host, first.port) == (job_id, 1, "127.0.0.1", 25)
    assert claim(db, settings, "b", T0) == []  # held by a; the other job is not due yet
    assert claim(db, settings, "b", T0 + timedelta(seconds=LEASE - 1)) == []
    [taken] = claim(db, settings, "b", T0 + timedelta(seconds=LEASE + 1))
    assert (taken.id, taken.attempts) == (job_id, 2)
    # a, late, cannot overwrite what b records
    record(db, settings, "a", [JobResult(first, "permanent", "550 too late")], T0)
    assert jobs(db)[0].status == "sending"
    record(db, settings, "b", [JobResult(taken, "sent")], T0 + timedelta(seconds=LEASE + 2))
    sent = jobs(db)[0]
    assert (sent.status, sent.claimed_by, sent.lease_until, sent.last_error) == (
        "sent",
        "b",
        None,
        "",
    )


def test_a_renewed_lease_is_not_taken_over(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    [held] = claim(db, settings, "a", T0)
    later = T0 + timedelta(seconds=LEASE - 10)
    with db.write() as session:
        outbox.renew(session, settings, claimer="a", ids=[held.id], now=later)
    assert claim(db, settings, "b", T0 + timedelta(seconds=LEASE + 1)) == []
    assert len(claim(db, settings, "b", later + timedelta(seconds=LEASE + 1))) == 1


def test_a_claim_takes_the_oldest_due_first_whatever_their_state(db, settings) -> None:  # type: ignore[no-untyped-def]
    """Queued, retrying and taken-over jobs in one order of due time, `limit` at a time (on
    SQLite the statuses are read apart and merged)."""
    desk = make_desk(db, settings)
    [(dead, _)] = queue_replies(db, desk.org.admin, "support@acme.test", 1, not_before=T0)
    [(retried, _)] = queue_replies(db, desk.org.admin, "support@acme.test", 1,
                                   not_before=T0 + timedelta(seconds=1))  # fmt: skip
    [(later, _), (latest, _)] = queue_replies(db, desk.org.admin, "support@acme.test", 2,
                                              not_before=T0 + timedelta(seconds=2))  # fmt: skip
    [(early, _)] = queue_replies(db, desk.org.admin, "support@acme.test", 1,
                                 not_before=T0 + timedelta(seconds=1, microseconds=5))  # fmt: skip
    [held] = claim(db, settings, "a", T0, limit=1)  # its worker dies: due again after the lease
    assert held.id == dead
    [attempt] = claim(db, settings, "a", T0 + timedelta(seconds=1), limit=1)
    record(db, settings, "a", [JobResult(attempt, "temporary", "451 later")], T0)
    with db.write() as session:  # the retry is due between the others
        session.get(OutboxJob, retried).next_attempt_at = T0 + timedelta(seconds=1, microseconds=1)
    after_lease = T0 + timedelta(seconds=LEASE + 1)
    first = claim(db, settings, "b", after_lease, limit=3)
    assert [job.id for job in first] == [dead, retried, early]
    assert [job.id for job in claim(db, settings, "b", after_lease, limit=3)] == [later, latest]


def test_released_jobs_are_due_again_as_if_never_claimed(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 2)
    held = claim(db, settings, "a", T0)
    with db.write() as session:
        outbox.release(session, claimer="a", ids=[job.id for job in held])
    assert [(j.status, j.attempts) for j in jobs(db)] == [("queued", 0), ("queued", 0)]
    assert [j.attempts for j in claim(db, settings, "b", T0)] == [1, 1]


def test_temporary_failures_back_off_with_jitter_until_the_attempts_run_out(db, settings) -> None:  # type: ignore[no-untyped-def]
    settings = settings.replace(outbox={"max_attempts": 4, "backoff_base_seconds": 60,
                                        "backoff_max_seconds": 150})  # fmt: skip
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    now, waits = T0, []
    for ceiling in (60, 120, 150):  # base * 2^(n-1), capped at the maximum
        [job] = claim(db, settings, "a", now)
        record(db, settings, "a", [JobResult(job, "temporary", "451 4.3.0 try later")], now)
        row = jobs(db)[0]
        assert (row.status, row.last_error) == ("retrying", "451 4.3.0 try later")
        wait = (row.next_attempt_at - now).total_seconds()
        assert ceiling / 2 <= wait <= ceiling
        assert claim(db, settings, "a", row.next_attempt_at - timedelta(seconds=1)) == []
        waits.append(wait)
        now = row.next_attempt_at
    [job] = claim(db, settings, "a", now)
    record(db, settings, "a", [JobResult(job, "temporary", "451 4.3.0 try later")], now)
    row = jobs(db)[0]
    assert (row.status, row.attempts) == ("failed", 4)
    assert row.last_error == "gave up after 4 attempts: 451 4.3.0 try later"
    assert claim(db, settings, "a", now + timedelta(days=30)) == []


def test_a_job_older_than_the_maximum_age_gives_up(db, settings) -> None:  # type: ignore[no-untyped-def]
    settings = settings.replace(outbox={"max_age_hours": 2})
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    late = T0 + timedelta(hours=2, seconds=1)
    [job] = claim(db, settings, "a", late)
    record(db, settings, "a", [JobResult(job, "temporary", "connection refused")], late)
    assert jobs(db)[0].status == "failed"
    assert jobs(db)[0].last_error == "gave up after 2 hours: connection refused"


def test_jitter_spreads_the_waits() -> None:
    from tui_helpdesk.config import OutboxSettings

    rng = random.Random(1)
    waits = {outbox.backoff_seconds(3, OutboxSettings(), rng) for _ in range(50)}
    assert len(waits) == 50 and min(waits) >= 60 and max(waits) <= 120


def test_a_permanent_failure_fails_at_once_with_the_answer(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    [job] = claim(db, settings, "a", T0)
    record(db, settings, "a", [JobResult(job, "permanent", "550 5.7.1 relaying denied")], T0)
    row = jobs(db)[0]
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "550 5.7.1 relaying denied")


def test_recipients_refused_for_now_are_tried_again_alone(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    rcpts = ("carol@customer.test", "dave@customer.test")
    queue_replies(db, desk.org.admin, "support@acme.test", 1, rcpts=rcpts)
    [job] = claim(db, settings, "a", T0)
    partly = JobResult(job, "sent", "dave@customer.test: 452 4.2.2 mailbox full",
                       retry_rcpts=("dave@customer.test",))  # fmt: skip
    record(db, settings, "a", [partly], T0)
    row = jobs(db)[0]
    assert (row.status, row.rcpt_to) == ("retrying", ["dave@customer.test"])
    assert "452 4.2.2 mailbox full" in row.last_error


def test_list_and_retry_are_for_admins_and_retry_is_audited(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    bob = add_user(db, desk.org.admin, "bob2@acme.test")
    queue_replies(db, desk.org.admin, "support@acme.test", 2)
    [first, second] = claim(db, settings, "a", T0)
    record(db, settings, "a", [JobResult(first, "permanent", "550 no such user"),
                               JobResult(second, "sent")], T0)  # fmt: skip
    with db.write() as session:
        listed = outbox.list_jobs(session, desk.org.admin, status="failed")
        assert [(j.id, j.status, j.last_error) for j in listed] == [
            (first.id, "failed", "550 no such user")]  # fmt: skip
        assert listed[0].mailbox == "support@acme.test"
        with pytest.raises(PermissionDenied):
            outbox.list_jobs(session, bob)
        with pytest.raises(Conflict, match="only a failed job"):
            outbox.retry_job(session, desk.org.admin, second.id, now=T0)
        again = outbox.retry_job(session, desk.org.admin, first.id, now=T0 + timedelta(days=2))
        assert (again.status, again.attempts, again.last_error) == ("queued", 0, "")
        [entry] = audit.list_entries(session, desk.org.admin, entity_type="outbox_job")
        assert entry.action == "outbox.retry" and entry.before["status"] == "failed"
    [retried] = claim(db, settings, "a", T0 + timedelta(days=2))
    assert (retried.id, retried.attempts) == (first.id, 1)


def test_the_conversation_shows_the_delivery_of_our_reply(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    with db.write() as session:
        autoresponder.configure(session, desk.org.admin, "support@acme.test", enabled=True,
                                body="We got your mail.")  # fmt: skip
    conversation_id = only_conversation(
        deliver(db, settings, build_mail(), desk.support.alias, at=T0)
    )

    def thread():  # type: ignore[no-untyped-def]
        with db.read() as session:
            detail = get_conversation(session, desk.org.admin, conversation_id)
        return [(m.direction, m.delivery, m.delivery_error) for m in detail.messages]

    assert thread() == [("inbound", "", ""), ("outbound", "queued", "")]
    [job] = claim(db, settings, "a", T0 + timedelta(minutes=1))
    assert thread()[1] == ("outbound", "sending", "")
    record(db, settings, "a", [JobResult(job, "permanent", "550 5.1.1 user unknown")], T0)
    assert thread()[1] == ("outbound", "failed", "550 5.1.1 user unknown")
