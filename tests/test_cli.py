"""The CLI end to end (F81): bootstrap, --json shapes, --as anywhere, exit codes 0/2/3/4/5/6."""

from __future__ import annotations

import json
import os
import pwd
import signal
import smtplib
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tui_helpdesk.cli import cli
from tui_helpdesk.cli.context import Cx
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Contact, Conversation, Mailbox, Message

ADA = ["--as", "ada@acme.test"]
BOB = ["--as", "bob@acme.test"]


class Cli:
    """Runs `tui-helpdesk ARGS` in-process against one database (as `uid`, default: ours)."""

    def __init__(self, db_url: str, *, uid: int | None = None, **env: str) -> None:
        self.env = {"TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_SMTP_PORT": "0", **env}
        self.uid = uid

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> Result:
        obj = None if self.uid is None else Cx(None, uid=self.uid)
        result = CliRunner().invoke(cli, list(args), env=self.env, input=input, obj=obj)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    def json(self, *args: str, code: int = 0, input: str | None = None) -> Any:
        return json.loads(self(*args, "--json", code=code, input=input).stdout)


@pytest.fixture
def run(db_url: str) -> Cli:
    return Cli(db_url)


@pytest.fixture
def acme(run: Cli) -> Cli:
    return bootstrap(run)


def bootstrap(run: Cli) -> Cli:
    """Bootstrapped: Acme, acme.test, admin ada, agent bob, mailbox support@acme.test."""
    run("init")
    run("org", "create", "Acme", "--timezone", "Europe/Madrid", "--language", "en")
    run("user", "add", "ada@acme.test", "--name", "Ada Lovelace", "--role", "admin")
    run("user", "add", "bob@acme.test", "--name", "Bob", "--role", "agent", *ADA)
    run("domain", "add", "acme.test", *ADA)
    run("mailbox", "create", "--display-name", "Support", "--local-part", "support",
        "--domain", "acme.test", *ADA)  # fmt: skip
    return run


def test_bootstrap_then_everyone_must_act_as_someone(run: Cli) -> None:
    first = run.json("init")
    assert first["migrated"] is True and first["demo"] is None
    run("init")  # idempotent
    run("mailbox", "list", code=6)  # no users yet: says how to bootstrap
    org = run.json("org", "create", "Acme", "--timezone", "Europe/Madrid", "--language", "en")
    assert org["timezone"] == "Europe/Madrid"
    run("user", "add", "bob@acme.test", "--name", "Bob", "--role", "agent", code=6)
    ada = run.json("user", "add", "ada@acme.test", "--name", "Ada", "--role", "admin")
    assert ada["role"] == "admin"
    result = run("user", "add", "eve@acme.test", "--name", "Eve", "--role", "admin", code=6)
    assert "is not mapped to a helpdesk user" in result.stderr
    run("user", "add", "eve@acme.test", "--name", "Eve", "--role", "admin", *ADA)
    users = run.json("user", "list", *ADA)
    assert [u["email"] for u in users] == ["ada@acme.test", "eve@acme.test"]


def test_mailbox_create_json_shape_and_as_after_arguments(acme: Cli) -> None:
    box = acme.json("mailbox", "show", "support@acme.test", *ADA)
    for key in ("id", "email_address", "alias", "display_name", "status", "created_at",
                "updated_at"):  # fmt: skip
        assert key in box
    assert box["email_address"] == "support@acme.test" and box["status"] == "pending"
    assert datetime.fromisoformat(box["created_at"]).tzinfo is not None
    made = acme.json("mailbox", "create", "--display-name", "Sales", "--local-part", "sales",
                     "--domain", "acme.test", "--timezone", "UTC", *ADA)  # fmt: skip
    assert made["alias"].endswith("@in.helpdesk.localhost") and made["alias"] != box["alias"]
    # the options may come before the subcommand's arguments, or on the group
    shown = json.loads(acme("mailbox", "show", "--json", *ADA, "sales@acme.test").stdout)
    sending = {key: shown.pop(key) for key in ("transport", "webhook")}  # shown to admins
    assert shown == made
    assert sending["transport"]["platform"] is True and sending["webhook"]["url"] == ""
    on_group = json.loads(acme(*ADA, "mailbox", "--json", "show", "sales@acme.test").stdout)
    assert on_group["id"] == made["id"]


def test_exit_codes(db_url: str, acme: Cli) -> None:
    acme("mailbox", "create", "--display-name", "S", "--local-part", "Sales",
         "--domain", "acme.test", *ADA, code=2)  # fmt: skip
    error = acme.json("mailbox", "create", "--display-name", "S", "--local-part", "Sales",
                      "--domain", "acme.test", *ADA, code=2)  # fmt: skip
    assert error == {"error": "invalid", "message": "local part must be lowercase: 'Sales'",
                     "field": "local_part"}  # fmt: skip
    assert acme.json("mailbox", "show", "ghost@acme.test", *ADA, code=3)["error"] == "not_found"
    acme("mailbox", "create", "--display-name", "S", "--local-part", "support",
         "--domain", "acme.test", *ADA, code=4)  # fmt: skip
    limited = Cli(db_url, TUI_HELPDESK_LIMITS_MAILBOXES_PER_ORGANISATION="1")
    limit = limited.json("mailbox", "create", "--display-name", "S", "--local-part", "two",
                         "--domain", "acme.test", *ADA, code=5)  # fmt: skip
    assert limit["error"] == "limit"
    denied = acme.json("mailbox", "deactivate", "support@acme.test", *BOB, code=6)
    assert denied["error"] == "permission"
    acme("mailbox", "list", "--as", "nobody@acme.test", code=3)


def test_usage_errors_exit_2(acme: Cli) -> None:
    acme("user", "add", "x@acme.test", "--name", "X", "--role", "owner", *ADA, code=2)
    acme("mailbox", "show", *ADA, code=2)
    acme("mailbox", "create", "--display-name", "S", "--domain", "acme.test", *ADA, code=2)
    acme("mailbox", "update", "support@acme.test", *ADA, code=2)
    acme("mailbox", "update", "support@acme.test", "--alias", "x@y.z", *ADA, code=2)
    acme("conversation", "list", "--limit", "5", "--all", *ADA, code=2)
    acme("conversation", "list", "--limit", "0", *ADA, code=2)
    acme("no-such-command", code=2)


def test_bad_config_file_exits_2_naming_the_file(acme: Cli, tmp_path: Path) -> None:
    config = tmp_path / "helpdesk.toml"
    config.write_text("[smtp]\nport = 'many'\n")
    result = acme("--config", str(config), "mailbox", "list", *ADA, code=2)
    assert str(config) in result.stderr and "smtp.port" in result.stderr
    acme("--config", str(tmp_path / "missing.toml"), "mailbox", "list", *ADA, code=2)


def test_uninitialised_database_says_run_init(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    run = Cli(f"sqlite:///{path}")
    result = run("mailbox", "list", *ADA, code=2)
    assert "run `tui-helpdesk init`" in result.stderr
    assert not path.exists()
    Database(f"sqlite:///{path}").engine.connect().close()  # an empty file, no schema
    assert "tui-helpdesk init" in run("user", "list", *ADA, code=2).stderr
    run("init")
    run("org", "create", "Acme", "--timezone", "UTC", "--language", "en")


def test_os_login_maps_to_user(acme: Cli, db_url: str) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid  # a real account that is not the database's owner
    acme("user", "add", "carol@acme.test", "--name", "Carol", "--os-user", "nobody", *ADA)
    as_nobody = Cli(db_url, uid=nobody)
    assert [m["local_part"] for m in as_nobody.json("mailbox", "list")] == ["support"]
    assert as_nobody.json("user", "whoami")["email"] == "carol@acme.test"
    as_nobody("mailbox", "deactivate", "support@acme.test", code=6)  # carol is an agent
    acme("user", "deactivate", "carol@acme.test", *ADA)
    assert "inactive" in as_nobody("mailbox", "list", code=6).stderr
    acme("user", "activate", "carol@acme.test", *ADA)
    root = Cli(db_url, uid=0)
    assert "is not mapped" in root("mailbox", "list", code=6).stderr  # root maps to nobody here
    assert root.json("user", "whoami", *ADA)["email"] == "ada@acme.test"  # root may use --as


def test_as_is_refused_for_anyone_but_the_owner(acme: Cli, db_url: str, tmp_path: Path) -> None:
    """The owner: of the SQLite file, or (PostgreSQL) of the config file that holds the URL."""
    config = tmp_path / "helpdesk.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n")
    nobody = pwd.getpwnam("nobody").pw_uid
    acme("user", "add", "carol@acme.test", "--name", "Carol", "--os-user", "nobody", *ADA)
    as_nobody = Cli(db_url, uid=nobody, TUI_HELPDESK_CONFIG=str(config))
    refused = as_nobody.json("mailbox", "list", *ADA, code=6)
    assert refused["field"] == "as"
    assert "honoured only for the owner of the database" in refused["message"]
    assert "you are nobody" in refused["message"]
    owner = Cli(db_url, uid=os.geteuid(), TUI_HELPDESK_CONFIG=str(config))  # we made both files
    assert owner.json("user", "whoami", *BOB)["email"] == "bob@acme.test"


def test_mailbox_life_cycle(acme: Cli) -> None:
    before = acme.json("mailbox", "show", "support@acme.test", *ADA)
    changed = acme.json("mailbox", "update", "support@acme.test", "--display-name", "Help",
                        "--local-part", "help", "--department", "Ops", *ADA)  # fmt: skip
    assert (changed["email_address"], changed["display_name"]) == ("help@acme.test", "Help")
    assert changed["alias"] == before["alias"]
    acme("queue", "create", "Support", *ADA)
    acme("queue", "add-mailbox", "Support", "help@acme.test", *ADA)
    acme("mailbox", "deactivate", "help@acme.test", *ADA, code=4)
    assert "'Support'" in acme("mailbox", "delete", "help@acme.test", "--yes", *ADA, code=4).stderr
    acme("queue", "remove-mailbox", "Support", "help@acme.test", *ADA)
    assert acme.json("mailbox", "deactivate", "help@acme.test", *ADA)["status"] == "inactive"
    assert acme.json("mailbox", "list", "--status", "active", *ADA) == []
    assert acme.json("mailbox", "activate", "help@acme.test", *ADA)["status"] == "pending"
    acme.json("mailbox", "delete", "help@acme.test", *ADA, code=2)  # --json needs --yes
    acme("mailbox", "delete", "help@acme.test", *ADA, input="n\n", code=1)
    acme("mailbox", "delete", "help@acme.test", *ADA, input="y\n")
    acme("mailbox", "show", "help@acme.test", *ADA, code=3)
    actions = [e["action"] for e in acme.json("audit", "list", "--entity-type", "mailbox", *ADA)]
    assert actions[:4] == ["mailbox.delete", "mailbox.activate", "mailbox.deactivate",
                           "mailbox.update"]  # fmt: skip


def test_queue_commands(acme: Cli) -> None:
    acme("mailbox", "create", "--display-name", "Sales", "--local-part", "sales",
         "--domain", "acme.test", *ADA)  # fmt: skip
    queue = acme.json("queue", "create", "Support", "--description", "Front line",
                      "--colour", "#3366ff", *ADA)  # fmt: skip
    assert queue["mailboxes"] == [] and queue["default_mailbox"] is None
    acme("queue", "add-mailbox", "Support", "support@acme.test", *ADA)
    queue = acme.json("queue", "add-mailbox", "Support", "sales@acme.test", *ADA)
    assert queue["default_mailbox"] == "support@acme.test"
    queue = acme.json("queue", "set-default", "Support", "sales@acme.test", *ADA)
    assert [m["is_default"] for m in queue["mailboxes"]] == [False, True]
    acme("queue", "add-member", "Support", "bob@acme.test", "--role", "admin", *ADA)
    # bob is now a queue admin: he manages this queue's links and members, nothing else
    queue = acme.json("queue", "remove-mailbox", "Support", "sales@acme.test", *BOB)
    assert queue["default_mailbox"] == "support@acme.test"
    acme("queue", "create", "Other", *BOB, code=6)
    queue = acme.json("queue", "add-member", "support", "bob@acme.test", "--role", "agent", *BOB)
    assert [(m["email"], m["role"]) for m in queue["members"]] == [("bob@acme.test", "agent")]
    acme("queue", "add-mailbox", "Support", "sales@acme.test", *BOB, code=6)
    acme("queue", "set-default", "Support", "sales@acme.test", *ADA, code=4)  # not linked
    acme("queue", "remove-member", "Support", "bob@acme.test", *ADA)
    acme("queue", "remove-member", "Support", "bob@acme.test", *ADA, code=3)
    listed = acme.json("queue", "list", *BOB)
    assert [(q["name"], q["default_mailbox"]) for q in listed] == [("Support", "support@acme.test")]
    text = acme("queue", "show", "Support", *BOB).stdout
    assert "support@acme.test" in text and "Members" in text


def add_conversations(db_url: str, count: int) -> list[int]:
    """Conversations with one message each (two for the first), newest has the highest id."""
    db = Database(db_url)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids = []
    with db.write() as session:
        mailbox = session.query(Mailbox).one()
        contact = Contact(organisation_id=mailbox.organisation_id, email="cu@example.com",
                          name="Customer")  # fmt: skip
        session.add(contact)
        session.flush()
        for n in range(count):
            when = start + timedelta(minutes=n)
            conversation = Conversation(
                organisation_id=mailbox.organisation_id, mailbox_id=mailbox.id,
                contact_id=contact.id, subject=f"Question {n} \x1b[31mred\x1b[0m",
                status=("open", "pending", "closed")[n % 3], last_message_at=when,
                created_at=when, message_count=2 if n == 0 else 1,
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            ids.append(conversation.id)
            for m in range(conversation.message_count):
                session.add(Message(
                    conversation_id=conversation.id, mailbox_id=mailbox.id,
                    subject=conversation.subject, from_address="cu@example.com",
                    text_body=f"body {m}", raw=b"x", raw_sha256=f"{n}-{m}", raw_size=1,
                    received_at=when + timedelta(seconds=m),
                ))  # fmt: skip
    db.dispose()
    return ids


def test_conversation_list_and_show(db_url: str, acme: Cli) -> None:
    ids = add_conversations(db_url, 55)
    default = acme.json("conversation", "list", *ADA)
    assert len(default) == 50
    assert [c["id"] for c in default[:2]] == [ids[-1], ids[-2]]  # newest first
    for key in ("id", "subject", "status", "mailbox", "contact", "created_at"):
        assert key in default[0]
    assert default[0]["mailbox"] == "support@acme.test"
    assert default[0]["contact"] == "cu@example.com"
    assert {c["status"] for c in default} == {"open", "pending", "closed"}
    assert len(acme.json("conversation", "list", "--all", *ADA)) == 55
    assert len(acme.json("conversation", "list", "--limit", "3", *ADA)) == 3
    pending = acme.json("conversation", "list", "--status", "pending", "--all", *ADA)
    assert len(pending) == 18 and {c["status"] for c in pending} == {"pending"}
    by_mailbox = acme.json("conversation", "list", "--mailbox", "support@acme.test", *ADA)
    assert len(by_mailbox) == 50
    shown = acme.json("conversation", "show", str(ids[0]), *ADA)
    assert shown["id"] == ids[0] and len(shown["messages"]) == 2
    assert [m["text_body"] for m in shown["messages"]] == ["body 0", "body 1"]
    text = acme("conversation", "show", str(ids[0]), *ADA).stdout
    assert "body 1" in text and "\x1b" not in text
    assert "Question 0 red" in text and "[31m" not in text
    assert "\x1b" not in acme("conversation", "list", *ADA).stdout
    # bob is in no queue: he sees nothing, and showing one is "not found"
    assert acme.json("conversation", "list", *BOB) == []
    acme("conversation", "show", str(ids[0]), *BOB, code=3)
    acme("conversation", "show", "999999", *ADA, code=3)


def test_text_output_is_readable(acme: Cli) -> None:
    shown = acme("mailbox", "show", "support@acme.test", *ADA).stdout
    assert "email address:" in shown and "support@acme.test" in shown
    listed = acme("user", "list", *ADA).stdout.splitlines()
    assert listed[0].split()[:3] == ["EMAIL", "NAME", "ROLE"]
    assert len(listed) == 3


def test_tui_starts_with_resolved_actor_and_embedded_worker(
    acme: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Any]] = []

    def run_tui(settings: Any, *, resolve: Any, start_worker: Any = None, **_cache: Any) -> int:
        """As the app does after its first frame: who acts, then the embedded worker."""
        actor_email = resolve()
        worker_address = None if start_worker is None else start_worker()
        if worker_address is not None:  # the embedded worker really listens
            with smtplib.SMTP(*worker_address, timeout=5) as client:
                assert client.noop()[0] == 250
        calls.append((actor_email, worker_address))
        return 0

    fake = types.ModuleType("tui_helpdesk.tui.app")
    fake.run_tui = run_tui  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui_helpdesk.tui.app", fake)
    acme("--no-worker", *ADA)
    acme(*BOB)
    acme("--as", "ghost@acme.test", code=3)
    assert calls[0] == ("ada@acme.test", None)
    assert calls[1][0] == "bob@acme.test" and calls[1][1][0] == "127.0.0.1"
    assert len(calls) == 2


def test_worker_command_listens_and_stops_on_sigterm(acme: Cli, db_url: str) -> None:
    env = {**os.environ, "TUI_HELPDESK_DATABASE_URL": db_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_helpdesk", "worker", "--smtp-host", "127.0.0.1",
         "--smtp-port", "0"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = ""
        while "listening on" not in line:
            line = process.stderr.readline()
            assert line, "the worker exited before listening"
        host, port = line.rsplit("listening on ", 1)[1].strip().rsplit(":", 1)
        with smtplib.SMTP(host, int(port), timeout=5) as client:
            assert client.noop()[0] == 250
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
