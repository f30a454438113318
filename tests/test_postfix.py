"""A real Postfix in front of the worker (issue 11, point 5), configured as deploy/postfix.md says.

The test runs its own Postfix instance (`postfix -c DIR`): config, queue and data directories
in a temporary folder, nothing listening (mail enters with its `sendmail -C DIR`), the system
instance never touched. Postfix's master runs as root and its daemons as the `postfix` user
Debian's package creates; .ci/run installs the package when it is missing.

One backend (SQLite): a second connection holding `BEGIN EXCLUSIVE` is how the database is
"locked" here, so the worker (busy timeout 200 ms) answers 451 and Postfix must queue the mail.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from test_ingest_support import build_mail, make_desk, message_id_of, start_worker_process

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Message

GUIDE = Path(__file__).parent.parent / "deploy" / "postfix.md"
DOC_DOMAIN, DOC_NEXT_HOP = "in.helpdesk.example.net", "smtp:[127.0.0.1]:2525"
# Postfix's daemons, without smtpd (nothing listens) and with chroot off (no copied /etc).
MASTER_CF = """\
pickup    unix  n  -  n  60  1  pickup
cleanup   unix  n  -  n  -   0  cleanup
qmgr      unix  n  -  n  300 1  qmgr
rewrite   unix  -  -  n  -   -  trivial-rewrite
bounce    unix  -  -  n  -   0  bounce
defer     unix  -  -  n  -   0  bounce
trace     unix  -  -  n  -   0  bounce
verify    unix  -  -  n  -   1  verify
flush     unix  n  -  n  1000? 0 flush
proxymap  unix  -  -  n  -   -  proxymap
smtp      unix  -  -  n  -   -  smtp
relay     unix  -  -  n  -   -  smtp
showq     unix  n  -  n  -   -  showq
error     unix  -  -  n  -   -  error
retry     unix  -  -  n  -   -  error
discard   unix  -  -  n  -   -  discard
anvil     unix  -  -  n  -   1  anvil
scache    unix  -  -  n  -   1  scache
postlog   unix-dgram n - n - 1 postlogd
"""


def guide_lines() -> tuple[list[str], str]:
    """The main.cf lines and the transport line deploy/postfix.md tells an admin to write."""
    text = GUIDE.read_text()
    main_cf = re.findall(r"^(?:relay_domains|transport_maps) = .*$", text, re.MULTILINE)
    [transport] = re.findall(rf"^{re.escape(DOC_DOMAIN)}\s+\S+$", text, re.MULTILINE)
    assert len(main_cf) == 2, main_cf
    return main_cf, transport


class Postfix:
    """One private Postfix instance in `folder`; `run` runs its commands with `-c`/`-C`."""

    def __init__(self, folder: Path, domain: str, port: int) -> None:
        self.folder = folder
        self.config = folder / "etc"
        self.maillog = folder / "maillog"
        main_cf, transport = guide_lines()
        for name in ("etc", "queue", "data"):
            (folder / name).mkdir()
        shutil.chown(folder / "data", user="postfix")  # master.lock is made there as postfix
        (self.config / "master.cf").write_text(MASTER_CF)
        next_hop = f"smtp:[127.0.0.1]:{port}"
        transport = transport.replace(DOC_DOMAIN, domain).replace(DOC_NEXT_HOP, next_hop)
        (self.config / "transport").write_text(transport + "\n")
        guide = "\n".join(main_cf).replace(DOC_DOMAIN, domain)
        text = self.main_cf() + guide.replace("/etc/postfix", str(self.config)) + "\n"
        (self.config / "main.cf").write_text(text)
        settled = time.time() - 60  # Postfix waits for a file written this very second to settle
        for written in self.config.iterdir():
            os.utime(written, (settled, settled))

    def main_cf(self) -> str:
        return f"""\
compatibility_level = 3.6
queue_directory = {self.folder / "queue"}
data_directory = {self.folder / "data"}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.postfix-test.localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_transport = error:5.1.1 no local delivery here
alias_maps =
alias_database =
smtp_dns_support_level = disabled
maillog_file = {self.maillog}
maillog_file_prefixes = {self.folder}
"""

    def run(self, *command: str, stdin: bytes = b"") -> str:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr.decode(), self.log())
        return done.stdout.decode()

    def start(self) -> None:
        self.run("postmap", "-c", str(self.config), f"hash:{self.config / 'transport'}")
        self.run("postfix", "-c", str(self.config), "check")
        self.run("postfix", "-c", str(self.config), "start")

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.config), "stop"], capture_output=True, timeout=60)

    def sendmail(self, raw: bytes, sender: str, recipient: str) -> None:
        self.run("sendmail", "-C", str(self.config), "-i", "-f", sender, recipient, stdin=raw)

    def queue(self) -> list[dict[str, object]]:
        """`postqueue -j`: one entry per queued mail, with each recipient's delay reason."""
        out = self.run("postqueue", "-c", str(self.config), "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        self.run("postqueue", "-c", str(self.config), "-f")

    def log(self) -> str:
        return self.maillog.read_text() if self.maillog.exists() else "(no maillog)"


def wait_for(condition: Callable[[], bool], what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}\n{log()}"
        time.sleep(0.05)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A temporary folder the postfix user can reach (pytest's tmp_path is root's alone)."""
    assert shutil.which("postfix") and shutil.which("postqueue"), "install postfix (.ci/run does)"
    assert os.geteuid() == 0, "Postfix's master runs as root only: run this test as root"
    pwd.getpwnam("postfix")  # the account Debian's package creates
    path = Path(tempfile.mkdtemp(prefix="hd-postfix-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_postfix_queues_while_the_worker_answers_451_and_delivers_once_after(
    sqlite_template: Path, tmp_path: Path, folder: Path
) -> None:
    path = tmp_path / "helpdesk.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    db = Database.from_settings(settings)
    alias = make_desk(db, settings).support.alias
    worker, (_, port) = start_worker_process(url, TUI_HELPDESK_DATABASE_BUSY_TIMEOUT_MS="200")
    postfix = Postfix(folder, settings.mail.platform_domain, port)
    first = build_mail(subject="Printer on fire", to=alias)
    reply = build_mail(subject="Re: Printer on fire", to=alias,
                       in_reply_to=message_id_of(first))  # fmt: skip
    other = build_mail(subject="Invoice missing", to=alias)

    def stored() -> list[bytes]:
        with db.read() as session:
            return list(session.scalars(select(Message.raw).order_by(Message.id)))

    try:
        postfix.start()
        postfix.sendmail(first, "carol@customer.test", alias)
        wait_for(lambda: len(stored()) == 1 and not postfix.queue(), "first mail", postfix.log)
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # the database is locked: the worker answers 451
        try:
            postfix.sendmail(reply, "carol@customer.test", alias)
            postfix.sendmail(other, "dave@customer.test", alias)
            wait_for(lambda: deferred_by_451(postfix.queue()) == 2, "both deferred", postfix.log)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert len(stored()) == 1  # nothing stored meanwhile, nothing lost: both queued
        postfix.flush()  # a queue run now, not after minimal_backoff_time
        wait_for(lambda: len(stored()) == 3 and not postfix.queue(), "delivered", postfix.log)
    finally:
        postfix.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    log = postfix.log()
    assert log.count("status=deferred") == 2 and "said: 451 4.3.0" in log
    assert log.count("status=sent") == 3
    with db.read() as session:
        rows = session.execute(select(Message.message_id_header, Message.conversation_id)).all()
        conversations = session.scalars(select(Conversation.id)).all()
    db.dispose()
    thread = dict(rows)  # Message-ID -> conversation; a duplicate would make rows longer
    assert len(rows) == 3 and len(conversations) == 2
    assert sorted(thread) == sorted(message_id_of(m) for m in (first, reply, other))
    assert thread[message_id_of(reply)] == thread[message_id_of(first)]  # threaded
    assert thread[message_id_of(other)] != thread[message_id_of(first)]


def deferred_by_451(queue: list[dict[str, object]]) -> int:
    """How many queued mails wait because the worker said 451 (not yet tried do not count)."""
    return sum(
        1
        for entry in queue
        if entry["queue_name"] == "deferred"
        and all("451 4.3.0" in str(r.get("delay_reason", "")) for r in entry["recipients"])  # type: ignore[attr-defined,union-attr]
    )
