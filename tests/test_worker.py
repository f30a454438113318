"""The worker as a process (F70, F76): listens, stores, reports its health, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select
from test_ingest_support import (
    build_mail,
    make_desk,
    send,
    start_worker_process,
    store_processes,
    wait_until_dead,
)

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.models import Message, WorkerStatus
from tui_helpdesk.worker.runtime import EmbeddedWorker, run_worker


def test_worker_process_stores_mail_and_exits_0_on_sigterm(db, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    process, address = start_worker_process(db_url)
    try:
        raw = build_mail()
        code, reply = send(*address, raw, [desk.support.alias])
        assert code == 250 and reply.startswith(b"2.0.0 OK queued as ")
        with db.read() as session:
            assert session.scalars(select(Message.raw)).all() == [raw]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with db.read() as session:
        status = session.scalars(select(WorkerStatus)).one()
    assert status.pid == process.pid and status.accepted_count == 1
    assert status.smtp_address == f"{address[0]}:{address[1]}"
    assert status.last_accepted_at is not None and status.heartbeat_at >= status.last_accepted_at


def test_a_killed_store_process_is_replaced_and_stopping_ends_it(db, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    process, address = start_worker_process(db_url)
    try:
        assert send(*address, build_mail(), [desk.support.alias])[0] == 250
        [store] = store_processes(process.pid)  # parsing and storing run in this process
        os.kill(store, signal.SIGKILL)
        wait_until_dead(store)
        raw = build_mail(subject="After the crash")
        assert send(*address, raw, [desk.support.alias])[0] == 250
        [replacement] = store_processes(process.pid)
        assert replacement != store
        with db.read() as session:
            assert raw in session.scalars(select(Message.raw)).all()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not Path(f"/proc/{replacement}").exists()  # the worker ended its store process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_embedded_worker_reports_health_and_stops(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    embedded = EmbeddedWorker(settings)
    host, port = embedded.start()
    assert host == "127.0.0.1" and port > 0
    try:
        assert send(host, port, build_mail(), [desk.support.alias])[0] == 250
        assert send(host, port, b"\x00\xff not mail at all\r\n", [desk.support.alias])[0] == 250
    finally:
        embedded.stop()
    with db.read() as session:
        status = session.scalars(select(WorkerStatus)).one()
        errors = session.scalars(select(Message.processing_error)).all()
    assert status.accepted_count == 2 and status.smtp_address == f"{host}:{port}"
    assert status.error_count == sum(1 for e in errors if e)
    with pytest.raises(OSError):  # stopped means no longer listening
        send(host, port, build_mail(), [desk.support.alias])


def _settings_for(url: str) -> Settings:
    return load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url, "TUI_HELPDESK_SMTP_PORT": "0"})


def test_run_worker_refuses_an_uninitialised_database(tmp_path: Path) -> None:
    assert run_worker(_settings_for(f"sqlite:///{tmp_path / 'empty.sqlite3'}")) == 1


def test_run_worker_refuses_an_unreachable_database() -> None:
    assert run_worker(_settings_for("postgresql://nobody@127.0.0.1:9/none")) == 1


def test_recent_intake_counts_this_workers_last_minute_and_hour() -> None:
    """F76: from the running total at each heartbeat, no counting on the SMTP path."""
    from tui_helpdesk.worker.runtime import RecentIntake

    clock = [0.0]
    intake = RecentIntake(clock=lambda: clock[0])
    assert intake.recent(0) == (0, 0)
    clock[0] = 30.0
    assert intake.recent(30) == (30, 30)  # younger than a minute: everything since start
    for second in range(35, 4001, 5):  # a beat every 5 s, one message a second
        clock[0] = float(second)
        recent = intake.recent(second)
    assert recent == (60, 3600)
    clock[0] = 4600.0  # ten quiet minutes
    assert intake.recent(4000) == (0, 3000)
    assert len(intake._beats) < 800  # beats older than the hour's baseline are dropped
