"""F48 end to end: mail sent over SMTP to a worker shows up in an open TUI at the next poll.

The worker runs as a separate process (`python -m tui_helpdesk worker --smtp-port 0`), so the
change reaches the app only through the database: PRAGMA data_version on SQLite, LISTEN/NOTIFY
on PostgreSQL. A second test does the same with the worker embedded in the TUI's process.
"""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from factories import add_mailbox, add_queue, make_org
from test_tui import conversation_list, list_lines, loaded, wait_for

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.tui.app import make_app
from tui_helpdesk.worker.runtime import EmbeddedWorker

LISTENING = re.compile(r"listening on (127\.0\.0\.1):(\d+)")
SIZE = (120, 30)


def _mail(subject: str) -> bytes:
    return (
        "From: Carol Customer <carol@customer.test>\r\n"
        "To: support@acme.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{time.monotonic_ns()}@customer.test>\r\n"
        "\r\n"
        "The printer is on fire.\r\n"
    ).encode()


def _send(address: tuple[str, int], rcpt: str, raw: bytes) -> None:
    with smtplib.SMTP(*address, timeout=30) as client:
        client.sendmail("carol@customer.test", [rcpt], raw)


@pytest.fixture
def desk(db: Database, settings: Settings) -> str:
    """Acme with admin ada, one mailbox in one queue; returns the mailbox alias."""
    org = make_org(db)
    box = add_mailbox(db, settings, org.admin, "support")
    add_queue(db, settings, org.admin, "Support", mailboxes=[box.email_address])
    return box.alias


@pytest.fixture
def worker_process(db_url: str, desk: str) -> Iterator[tuple[str, int]]:
    env = dict(os.environ, TUI_HELPDESK_DATABASE_URL=db_url)
    env.pop("TUI_HELPDESK_CONFIG", None)
    command = [sys.executable, "-m", "tui_helpdesk", "worker"]
    command += ["--smtp-host", "127.0.0.1", "--smtp-port", "0"]
    process = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stderr is not None
    try:
        seen = []
        for line in process.stderr:
            seen.append(line)
            found = LISTENING.search(line)
            if found:
                yield found.group(1), int(found.group(2))
                break
        else:
            raise AssertionError("the worker did not say where it listens:\n" + "".join(seen))
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _polls_until_seen(settings: Settings, address: tuple[str, int], rcpt: str) -> int:
    """Which poll saw the change, counted from the last poll begun before the 250 (counted, not
    timed: a busy machine slows every poll alike). 1 means the first poll that began after the
    commit, or one already running; with the default interval of 0.25 s, within half a second."""
    app = make_app(settings.replace(tui={"refresh_interval_seconds": 0.25}), "ada@acme.test")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await wait_for(pilot, lambda: app.poller.polls > 0)  # the watcher's baseline is set
        assert conversation_list(app).total == 0
        await asyncio.to_thread(_send, address, rcpt, _mail("Live from SMTP"))
        polls_at_250 = app.poller.polls
        await wait_for(pilot, lambda: conversation_list(app).total == 1, seconds=30)
        await wait_for(pilot, lambda: list_lines(app)[1].startswith("Live from SMTP"))
        assert "Carol Customer" in list_lines(app)[1]
        return app.poller.change_seen_at - polls_at_250  # 0: a poll running at the 250 saw it


async def test_mail_from_a_separate_worker_process_appears_within_a_second(
    settings: Settings, worker_process: tuple[str, int], desk: str
) -> None:
    assert await _polls_until_seen(settings, worker_process, desk) <= 1


async def test_mail_from_the_embedded_worker_appears_within_a_second(
    settings: Settings, desk: str
) -> None:
    worker = EmbeddedWorker(settings)
    address = worker.start()
    try:
        polls = await _polls_until_seen(settings, address, desk)
    finally:
        worker.stop()
    assert polls <= 1
