"""The worker's sender (F17, F73) against real aiosmtpd servers on 127.0.0.1: exact bytes,
connection reuse, 4xx retried on a clock the test moves, 5xx visible on the conversation,
transports with STARTTLS, implicit TLS and AUTH."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_cli import Cli
from test_ingest_support import build_mail, deliver, make_desk, only_conversation
from test_outbox_support import (
    T0,
    CaptureServer,
    Clock,
    jobs,
    make_ca,
    queue_replies,
    running_sender,
    sending_settings,
    statuses,
    wait_for,
)

from tui_helpdesk.services import autoresponder, transports
from tui_helpdesk.services.outbox import JobResult
from tui_helpdesk.worker.sender import Recorder


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "stepwise"])
def test_queued_jobs_leave_byte_for_byte_over_one_reused_connection(
    db, settings, pipelining
) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    made = queue_replies(db, desk.org.admin, "support@acme.test", 20, size=2048)
    with (
        CaptureServer(pipelining=pipelining) as server,
        running_sender(sending_settings(settings, server.port), clock=Clock()) as sender,
    ):
        wait_for(lambda: statuses(db) == {"sent": 20}, what="20 jobs sent")
        assert sender.pool.opened == 1
    raws = {job.id: job.raw for job in _with_raw(db)}
    assert [r.data for r in server.received] == [raws[job_id] for job_id, _ in made]
    assert {r.mail_from for r in server.received} == {"support@acme.test"}
    assert all(job.sent_at == Clock().now for job in jobs(db))


def _with_raw(db):  # type: ignore[no-untyped-def]
    from sqlalchemy import select
    from sqlalchemy.orm import undefer

    from tui_helpdesk.db.models import OutboxJob

    with db.read() as session:
        return list(session.scalars(select(OutboxJob).options(undefer(OutboxJob.raw))))


def test_a_4xx_is_retried_after_the_backoff_on_the_senders_clock(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    clock = Clock()
    with (
        CaptureServer(answers=["451 4.3.0 greylisted, come back later"]) as server,
        running_sender(sending_settings(settings, server.port), clock=clock),
    ):
        wait_for(lambda: statuses(db) == {"retrying": 1}, what="the 451")
        [job] = jobs(db)
        assert job.last_error == "451 4.3.0 greylisted, come back later"
        assert T0 + timedelta(seconds=15) <= job.next_attempt_at <= T0 + timedelta(seconds=30)
        assert server.received == []
        clock.now = job.next_attempt_at  # due now: the next poll sends it
        wait_for(lambda: statuses(db) == {"sent": 1}, what="the second attempt")
    [job] = jobs(db)
    assert (job.attempts, job.last_error) == (2, "")
    assert len(server.received) == 1


def test_a_5xx_fails_the_job_and_the_conversation_shows_the_answer(db, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    with db.write() as session:
        autoresponder.configure(session, desk.org.admin, "support@acme.test", enabled=True,
                                body="We got your mail.")  # fmt: skip
    conversation_id = only_conversation(
        deliver(db, settings, build_mail(), desk.support.alias, at=T0)
    )
    refusing = CaptureServer(answers=["550 5.7.1 relaying denied for support@acme.test"])
    with refusing, running_sender(sending_settings(settings, refusing.port), clock=Clock()):
        wait_for(lambda: statuses(db) == {"failed": 1}, what="the 550")
    shown = Cli(db_url)("conversation", "show", str(conversation_id), "--as", "ada@acme.test")
    assert "delivery:    failed: 550 5.7.1 relaying denied for support@acme.test" in shown.stdout
    data = Cli(db_url).json("conversation", "show", str(conversation_id), "--as", "ada@acme.test")
    ours = data["messages"][1]
    assert (ours["delivery"], ours["delivery_error"]) == (
        "failed", "550 5.7.1 relaying denied for support@acme.test")  # fmt: skip


def test_a_server_that_is_down_is_a_temporary_failure(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    with CaptureServer() as server:
        port = server.port
    with running_sender(sending_settings(settings, port), clock=Clock()):
        wait_for(lambda: statuses(db) == {"retrying": 1}, what="the refused connection")
    assert f"127.0.0.1:{port}" in jobs(db)[0].last_error


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_mailbox_sends_through_its_own_server_with_tls_and_auth(
    db, settings, tmp_path, security: str
) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    ca = make_ca(tmp_path)
    made = queue_replies(db, desk.org.admin, "sales@acme.test", 3)
    relay = CaptureServer()
    own = CaptureServer(tls=ca.server_context, implicit_tls=security == "tls",
                        logins={"sales-bot": "s3cret-pass!"})  # fmt: skip
    with relay, own:
        with db.write() as session:
            transports.set_transport(
                session, desk.org.admin, "sales@acme.test", host="127.0.0.1", port=own.port,
                security=security, username="sales-bot", password="s3cret-pass!",
            )  # fmt: skip
        configured = sending_settings(settings, relay.port).replace(
            outbound={"ca_file": ca.ca_file}
        )
        with running_sender(configured, clock=Clock()):
            wait_for(lambda: statuses(db) == {"sent": 3}, what="3 sent over TLS")
    assert relay.received == []
    assert [r.message_id for r in own.received] == [message_id for _, message_id in made]
    raws = {job.id: job.raw for job in _with_raw(db)}
    assert [r.data for r in own.received] == [raws[job_id] for job_id, _ in made]
    assert {r.login for r in own.received} == {"sales-bot"}


def test_a_certificate_from_an_unknown_ca_is_refused(db, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    ca = make_ca(tmp_path)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    with CaptureServer(tls=ca.server_context, implicit_tls=True) as server:
        relay = sending_settings(settings, server.port).replace(outbound={"security": "tls"})
        with running_sender(relay, clock=Clock()):  # no ca_file: the system's CAs only
            wait_for(lambda: statuses(db) == {"retrying": 1}, what="the refused certificate")
    assert "certificate" in jobs(db)[0].last_error.lower()
    assert server.received == []


def test_wrong_credentials_fail_without_showing_the_password(
    db, settings, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    ca = make_ca(tmp_path)
    queue_replies(db, desk.org.admin, "support@acme.test", 1)
    with CaptureServer(tls=ca.server_context, logins={"bot": "right-password"}) as server:
        relay = sending_settings(settings, server.port).replace(
            outbound={"security": "starttls", "username": "bot", "password": "wrong-password-xy",
                      "ca_file": ca.ca_file})  # fmt: skip
        with running_sender(relay, clock=Clock()):
            wait_for(lambda: statuses(db) == {"failed": 1}, what="the 535")
    [job] = jobs(db)
    assert job.last_error.endswith("535 5.7.8 Authentication credentials invalid")
    assert "wrong-password-xy" not in job.last_error + caplog.text


def test_results_are_committed_together_once_every_worker_has_one_or_one_is_needed() -> None:
    """Three workers: nothing is committed while two results wait and the third worker is
    still sending; the third result makes the commit. Later, a worker that needs its result
    before DATA (the duplicate bound) gets it committed alone."""
    commits: list[list[int]] = []

    async def scenario() -> None:
        async def write(results: list[JobResult]) -> None:
            commits.append([r.job.id for r in results])

        recorder = Recorder(write, senders=lambda: 3)
        running = asyncio.ensure_future(recorder.run())
        first, second = recorder.add(_result(1)), recorder.add(_result(2))
        await _turns()
        assert commits == [] and not first.done()
        recorder.add(_result(3))
        await _turns()
        assert commits == [[1, 2, 3]] and second.done()
        fourth = recorder.add(_result(4))
        await _turns()
        assert commits == [[1, 2, 3]]
        await asyncio.wait_for(recorder.wait(fourth), 60)
        assert commits == [[1, 2, 3], [4]]
        recorder.add(_result(5))
        recorder.stop()  # what is left is written before run() ends
        await asyncio.wait_for(running, 60)
        assert commits[-1] == [5] and recorder.recorded == 5

    asyncio.run(scenario())


def _result(job_id: int) -> JobResult:
    from tui_helpdesk.services.outbox import ClaimedJob

    return JobResult(ClaimedJob(job_id, "reply", None, 1, T0, b""), "sent")


async def _turns() -> None:
    for _ in range(5):  # let the recorder's task run, if it has anything to do
        await asyncio.sleep(0)


def test_a_sent_reply_tells_open_screens(db, settings) -> None:  # type: ignore[no-untyped-def]
    """The result of a conversation's job is a change the TUI sees (PostgreSQL: the NOTIFY
    in the statement that records it; SQLite: the change counter's trigger)."""
    from test_changes import _poll_until

    from tui_helpdesk.services import changes

    desk = make_desk(db, settings)
    with db.write() as session:
        autoresponder.configure(session, desk.org.admin, "support@acme.test", enabled=True,
                                body="We got your mail.")  # fmt: skip
    deliver(db, settings, build_mail(), desk.support.alias, at=T0)
    watcher = changes.ChangeWatcher(db)
    try:
        watcher.poll()  # the ingest's own change
        assert not watcher.poll()
        with CaptureServer() as server, running_sender(sending_settings(settings, server.port),
                                                       clock=Clock()):  # fmt: skip
            wait_for(lambda: statuses(db) == {"sent": 1}, what="the auto-reply sent")
        assert _poll_until(watcher)
    finally:
        watcher.close()


@pytest.mark.postgresql_only
def test_lease_renewals_amid_group_commits_never_stall_the_sender(db, settings) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a group of results is a transaction that stays open across the sender
    loop's turns; a lease renewal that blocked the loop while waiting for one of its rows
    would wait for ever (the results are written by that loop). Renewals every few
    milliseconds, four connections' results committed together: every job still goes."""
    desk = make_desk(db, settings)
    queue_replies(db, desk.org.admin, "support@acme.test", 300)
    with CaptureServer() as server:
        sending = sending_settings(settings, server.port, connections_per_destination=4,
                                   lease_seconds=0.03)  # fmt: skip
        with running_sender(sending) as sender:
            wait_for(lambda: statuses(db) == {"sent": 300}, timeout=60, what="300 jobs sent")
            assert sender.recorder.commits < sender.recorder.recorded  # results were grouped


async def test_workers_that_end_together_leave_no_claimed_job_without_a_worker(settings) -> None:  # type: ignore[no-untyped-def]
    """Eight workers of a lane wait for one commit, jobs for the lane are claimed meanwhile
    (no room for more workers), then the commit wakes all eight and they end in the same turn
    of the loop: their successors must start (bench/outbox.py once stalled here, every
    claimed job waiting in a lane that no worker served)."""
    from tui_helpdesk.worker.sender import Lane, OutboxSender

    sender = OutboxSender(settings.replace(outbox={"concurrency": 8,
                                                   "connections_per_destination": 8}),
                          name="test")  # fmt: skip
    sender._stop = asyncio.Event()
    commit = asyncio.Event()
    started: list[int] = []

    async def work(lane: Lane) -> None:  # _work's shape: send what the lane holds, then
        started.append(len(started))  # wait for the last result's commit before leaving
        try:
            while lane.jobs:
                lane.jobs.popleft()
                await asyncio.sleep(0)
        finally:
            await commit.wait()
            lane.workers -= 1

    sender._work = work  # type: ignore[method-assign]
    lane = sender._lanes[("smtp", "relay")] = Lane(("smtp", "relay"))
    lane.jobs.extend(range(8))
    sender._spawn()
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(started) == 8 and not lane.jobs
    lane.jobs.extend(range(8, 60))  # a claim lands: every place is taken
    sender._spawn()
    assert len(started) == 8
    commit.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(started) > 8 and not lane.jobs
