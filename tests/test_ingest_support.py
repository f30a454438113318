"""Shared builders for the ingest, threading and worker tests (this module holds no tests).

Mail is built as exact CRLF bytes, because smtplib rewrites bare LF and what we check is
that the bytes stored are the bytes sent.
"""

from __future__ import annotations

import itertools
import os
import re
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from factories import Org, add_mailbox, add_queue, add_user, make_org
from sqlalchemy import select
from sqlalchemy.orm import undefer

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Message
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.records import MailboxRecord, QueueRecord
from tui_helpdesk.services.ingest import StoredMail, store_inbound

_counter = itertools.count(1)
BASE_TIME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Desk:
    """Acme with two mailboxes (support, sales), each in its own queue, and agent bob."""

    org: Org
    support: MailboxRecord
    sales: MailboxRecord
    support_queue: QueueRecord
    sales_queue: QueueRecord


def make_desk(db: Database, settings: Settings) -> Desk:
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test")
    support = add_mailbox(db, settings, org.admin, "support")
    sales = add_mailbox(db, settings, org.admin, "sales")
    support_queue = add_queue(db, settings, org.admin, "Support", mailboxes=[support.email_address],
                              members={"bob@acme.test": "agent"})  # fmt: skip
    sales_queue = add_queue(db, settings, org.admin, "Sales", mailboxes=[sales.email_address])
    return Desk(org, support, sales, support_queue, sales_queue)


def new_message_id() -> str:
    return f"<m{next(_counter)}.{id(_counter)}@customer.test>"


def build_mail(
    *,
    subject: str = "Printer on fire",
    sender: str = "Carol Customer <carol@customer.test>",
    to: str = "support@acme.test",
    cc: str | None = None,
    message_id: str | None = "auto",
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    body: str = "Hello,\r\nthe printer is on fire.\r\n",
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """An RFC 5322 message as exact CRLF bytes, ending in CRLF."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
             "Date: Mon, 23 Nov 2026 09:00:00 +0000"]  # fmt: skip
    if cc:
        lines.append(f"Cc: {cc}")
    if message_id:
        lines.append(f"Message-ID: {new_message_id() if message_id == 'auto' else message_id}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    refs = list(references)
    if refs:
        lines.append("References: " + " ".join(refs))
    lines += [f"{name}: {value}" for name, value in headers]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", ""]
    text = "\r\n".join(lines) + "\r\n" + body
    return text.encode("utf-8")


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Message-ID in that mail")


def inbound(
    raw: bytes,
    rcpt: str | Iterable[str],
    *,
    mail_from: str = "carol@customer.test",
    at: datetime | None = None,
) -> InboundMail:
    rcpts = (rcpt,) if isinstance(rcpt, str) else tuple(rcpt)
    when = at or BASE_TIME + timedelta(seconds=next(_counter))
    return InboundMail(raw=raw, mail_from=mail_from, rcpt_tos=rcpts, received_at=when)


def deliver(
    db: Database, settings: Settings, raw: bytes, rcpt: str | Iterable[str], **kwargs: object
) -> StoredMail:
    """store_inbound in its own transaction, as the worker's writer would."""
    with db.write() as session:
        return store_inbound(session, settings, inbound(raw, rcpt, **kwargs))  # type: ignore[arg-type]


def only_conversation(result: StoredMail) -> int:
    assert len(result.conversation_ids) == 1, result
    return result.conversation_ids[0]


def conversation(db: Database, conversation_id: int) -> Conversation:
    with db.read() as session:
        found = session.get(Conversation, conversation_id)
        assert found is not None
        return found


def messages_in(db: Database, conversation_id: int) -> list[Message]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Message)
                .options(undefer(Message.raw))
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            )
        )


def send(
    host: str,
    port: int,
    raw: bytes,
    rcpts: Iterable[str],
    mail_from: str = "carol@customer.test",
    source: str = "",
) -> tuple[int, bytes]:
    """One SMTP transaction with smtplib (from address `source`); the final reply to DATA."""
    with smtplib.SMTP(
        host, port, timeout=30, source_address=(source, 0) if source else None
    ) as client:
        client.ehlo("client.test")
        code, reply = client.mail(mail_from)
        assert code == 250, reply
        for rcpt in rcpts:
            code, reply = client.rcpt(rcpt)
            assert code == 250, reply
        return client.data(raw)


def dsn(original_id: str, failed: str) -> bytes:
    """A delivery status notification (multipart/report) for the mail with original_id."""
    lines = [
        "From: MAILER-DAEMON@mx.customer.test",
        "To: support@acme.test",
        "Subject: Undelivered Mail Returned to Sender",
        "Message-ID: <dsn1@mx.customer.test>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        "",
        "--B",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "--B",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.customer.test",
        "",
        f"Final-Recipient: rfc822; {failed}",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown",
        "",
        "--B",
        "Content-Type: text/rfc822-headers",
        "",
        f"Message-ID: {original_id}",
        "Subject: Re: Printer on fire",
        "",
        "--B--",
        "",
    ]
    return "\r\n".join(lines).encode()


LISTENING = re.compile(r"listening on (127\.0\.0\.1):(\d+)")


def start_worker_process(
    db_url: str, **settings: str
) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    """`tui-helpdesk worker` as a process on a free port; settings are TUI_HELPDESK_* names."""
    env = dict(os.environ, TUI_HELPDESK_DATABASE_URL=db_url, **settings)
    env.pop("TUI_HELPDESK_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_helpdesk", "worker", "--smtp-host", "127.0.0.1",
         "--smtp-port", "0"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = LISTENING.search(line)
        if found:
            return process, (found.group(1), int(found.group(2)))
    process.kill()
    raise AssertionError("worker did not report its port:\n" + "".join(seen))


def store_processes(pid: int) -> list[int]:
    """The worker's child processes started by multiprocessing's spawn (not its helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still running")


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def busy_store_process(worker_pid: int, timeout: float = 60) -> int:
    """The worker's store process, once it is seen working (CPU time growing by 0.3 s)."""
    deadline = time.monotonic() + timeout
    start: dict[int, int] = {}
    while time.monotonic() < deadline:
        for pid in store_processes(worker_pid):
            try:
                ticks = cpu_ticks(pid)
            except OSError:
                continue
            if ticks - start.setdefault(pid, ticks) >= 30:
                return pid
        time.sleep(0.05)
    raise AssertionError("the store process never got busy")


def notify_messages(sock: socket.socket, until: str) -> list[str]:
    """What the worker told systemd (sd_notify), up to the message that contains `until`."""
    seen: list[str] = []
    while not any(until in message for message in seen):
        seen.append(sock.recv(4096).decode())
    return seen
