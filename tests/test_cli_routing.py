"""CLI for routing rules, queue assignment and hours, mailbox autoresponders (F19, F32-F34, F81).

End to end through click on both backends: each command's happy path and --json shape, invalid
input (exit 2 naming the field), not found (3) and permission denied (6).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from factories import add_mailbox, add_queue, add_user, make_org

from tui_helpdesk.cli import cli
from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database

ADA = ["--as", "ada@acme.test"]  # global admin
BOB = ["--as", "bob@acme.test"]  # agent, member of Support
CAROL = ["--as", "carol@acme.test"]  # agent, admin of Support
DAN = ["--as", "dan@acme.test"]  # agent, member of no queue
RULE_KEYS = {"id", "name", "position", "enabled", "match", "conditions", "queue", "priority",
             "tag", "created_at", "updated_at"}  # fmt: skip


class Cli:
    """Runs `tui-helpdesk ARGS` in-process against one database."""

    def __init__(self, db_url: str) -> None:
        self.env = {"TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_SMTP_PORT": "0"}

    def __call__(self, *args: str, code: int = 0, input: str | bytes | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), env=self.env, input=input)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    def json(self, *args: str, code: int = 0, input: str | bytes | None = None) -> Any:
        return json.loads(self(*args, "--json", code=code, input=input).stdout)

    def invalid(self, *args: str, field: str) -> str:
        """Run a command that must be refused as invalid (2) because of `field`."""
        error = self.json(*args, code=2)
        assert (error["error"], error["field"]) == ("invalid", field), error
        return str(error["message"])


@pytest.fixture
def acme(db: Database, settings: Settings, db_url: str) -> Cli:
    """Acme (Europe/Madrid): mailbox support@, queue Support (bob agent, carol admin), Billing."""
    org = make_org(db, timezone="Europe/Madrid")
    for email in ("bob@acme.test", "carol@acme.test", "dan@acme.test"):
        add_user(db, org.admin, email)
    add_mailbox(db, settings, org.admin, "support")
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"],
              members={"bob@acme.test": "agent", "carol@acme.test": "admin"})  # fmt: skip
    add_queue(db, settings, org.admin, "Billing")
    return Cli(db_url)


# --- rule ------------------------------------------------------------------------------------


def test_rule_add_list_move_update_delete(acme: Cli) -> None:
    refunds = acme.json(
        "rule", "add", "Refunds", "--when", "subject", "contains", "refund",
        "--when", "sender_domain", "equals", "bank.test", "--match", "any",
        "--queue", "Billing", "--priority", "high", "--tag", "billing", *ADA,
    )  # fmt: skip
    assert set(refunds) == RULE_KEYS
    assert refunds["conditions"] == [
        {"field": "subject", "op": "contains", "value": "refund"},
        {"field": "sender_domain", "op": "equals", "value": "bank.test"},
    ]
    assert (refunds["position"], refunds["enabled"], refunds["match"]) == (1, True, "any")
    assert (refunds["queue"], refunds["priority"], refunds["tag"]) == ("Billing", "high", "billing")
    spam = acme.json("rule", "add", "Spam", "--when", "header:X-Spam", "matches", "^yes",
                     "--tag", "spam", "--position", "1", "--disabled", *ADA)  # fmt: skip
    assert (spam["position"], spam["enabled"], spam["queue"]) == (1, False, None)
    listed = acme.json("rule", "list", *ADA)
    assert [(r["name"], r["position"]) for r in listed] == [("Spam", 1), ("Refunds", 2)]

    moved = acme.json("rule", "move", str(refunds["id"]), "1", *ADA)
    assert [(r["name"], r["position"]) for r in moved] == [("Refunds", 1), ("Spam", 2)]
    updated = acme.json("rule", "update", str(refunds["id"]), "--when", "subject", "contains",
                        "invoice", "--queue", "", "--disable", *ADA)  # fmt: skip
    assert updated["conditions"] == [{"field": "subject", "op": "contains", "value": "invoice"}]
    assert (updated["queue"], updated["priority"], updated["enabled"]) == (None, "high", False)
    assert acme.json("rule", "show", str(refunds["id"]), *ADA) == updated

    deleted = acme.json("rule", "delete", str(spam["id"]), "--yes", *ADA)
    assert deleted["name"] == "Spam"
    assert [(r["name"], r["position"]) for r in acme.json("rule", "list", *ADA)] == [("Refunds", 1)]
    actions = [e["action"] for e in acme.json("audit", "list", "--entity-type", "routing_rule",
                                              *ADA)]  # fmt: skip
    assert sorted(set(actions)) == ["routing_rule.create", "routing_rule.delete",
                                    "routing_rule.move", "routing_rule.update"]  # fmt: skip


def test_rule_text_output(acme: Cli) -> None:
    assert "No routing rules" in acme("rule", "list", *ADA).stdout
    shown = acme(
        "rule",
        "add",
        "VIP\x1b[2J",
        "--when",
        "sender_address",
        "equals",
        "ceo@big.test",
        "--when",
        "subject",
        "contains",
        "urgent",
        "--priority",
        "urgent",
        *ADA,
    ).stdout
    assert "\x1b" not in shown and "[2J" not in shown and "VIP" in shown
    assert "Conditions (all must hold)" in shown
    assert "1. sender_address equals 'ceo@big.test'" in shown
    listing = acme("rule", "list", *ADA).stdout
    assert listing.splitlines()[0].split() == ["POS", "ID", "NAME", "ENABLED", "WHEN", "QUEUE",
                                               "PRIORITY", "TAG"]  # fmt: skip
    assert "sender_address equals 'ceo@big.test' and" in listing


def test_rule_invalid_input_names_the_field(acme: Cli) -> None:
    add = ("rule", "add", "R", "--tag", "t", *ADA)
    message = acme.invalid(*add, "--when", "subject", "matches", r"(.*)\1x", field="conditions")
    assert "condition 1" in message and "back-references" in message and "RE2" in message
    acme.invalid(*add, "--when", "subject", "like", "x", field="conditions")
    acme.invalid(*add, field="conditions")  # no condition at all
    acme.invalid(*add, "--when", "colour", "equals", "red", field="conditions")
    acme.invalid(*add, "--when", "subject", "contains", "x", "--position", "3", field="position")
    acme.invalid("rule", "add", "R", "--when", "subject", "contains", "x", *ADA, field="queue")
    acme.invalid("rule", "add", "R", "--when", "subject", "contains", "x", "--priority", "asap",
                 *ADA, field="priority")  # fmt: skip
    acme.invalid(*add, "--when", "subject", "contains", "x", "--tag", "two words", field="tag")
    acme("rule", "add", "R", "--when", "subject", "contains", *ADA, code=2)  # 2 of 3 values
    acme("rule", "add", "R", "--when", "subject", "contains", "x", "--match", "most", *ADA, code=2)
    missing = acme.json("rule", "add", "R", "--when", "subject", "contains", "x",
                        "--queue", "Ghosts", *ADA, code=3)  # fmt: skip
    assert missing["field"] == "queue"
    assert acme.json("rule", "list", *ADA) == []  # nothing refused was stored


def test_rule_update_move_delete_refusals(acme: Cli) -> None:
    made = acme.json("rule", "add", "R", "--when", "subject", "contains", "x", "--tag", "t", *ADA)
    rule_id = str(made["id"])
    acme("rule", "update", rule_id, *ADA, code=2)  # nothing to change
    acme.invalid("rule", "update", rule_id, "--tag", "", *ADA, field="queue")  # no action left
    acme.invalid("rule", "update", rule_id, "--name", " ", *ADA, field="name")
    acme.invalid("rule", "move", rule_id, "0", *ADA, field="position")
    assert acme.json("rule", "show", "99", *ADA, code=3)["field"] == "rule"
    acme("rule", "update", "99", "--tag", "x", *ADA, code=3)
    acme("rule", "show", "first", *ADA, code=2)
    acme.invalid("rule", "delete", rule_id, *ADA, field="yes")  # --json cannot ask for confirmation
    acme("rule", "delete", rule_id, *ADA, input="n\n", code=1)
    assert acme.json("rule", "show", rule_id, *ADA) == made
    assert "Deleted routing rule" in acme("rule", "delete", rule_id, *ADA, input="y\n").stdout
    acme("rule", "show", rule_id, *ADA, code=3)


def test_rules_are_for_admins(acme: Cli) -> None:
    for who in (BOB, CAROL):  # a queue admin is not an organisation admin
        assert acme.json("rule", "list", *who, code=6)["error"] == "permission"
        acme("rule", "add", "R", "--when", "subject", "contains", "x", "--tag", "t", *who, code=6)
    made = acme.json("rule", "add", "R", "--when", "subject", "contains", "x", "--tag", "t", *ADA)
    acme("rule", "update", str(made["id"]), "--tag", "y", *BOB, code=6)
    acme("rule", "delete", str(made["id"]), "--yes", *BOB, code=6)


# --- queue assignment ------------------------------------------------------------------------


def _members(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["email"]: m for m in record["members"]}


def test_assignment_show_and_set(acme: Cli) -> None:
    shown = acme.json("queue", "assignment", "Support", *BOB)
    assert {k: shown[k] for k in ("queue", "rule", "fallback", "sticky_days")} == {
        "queue": "Support", "rule": "manual", "fallback": None, "sticky_days": 0,
    }  # fmt: skip
    assert set(_members(shown)) == {"bob@acme.test", "carol@acme.test"}
    weighted = acme.json("queue", "set-assignment", "Support", "--rule", "percentage",
                         "--weight", "bob@acme.test=30", "--weight", "carol@acme.test=70",
                         "--fallback", "ada@acme.test", "--sticky-days", "14", *CAROL)  # fmt: skip
    assert (weighted["rule"], weighted["fallback"], weighted["sticky_days"]) == (
        "percentage", "ada@acme.test", 14)  # fmt: skip
    assert {e: m["weight"] for e, m in _members(weighted).items()} == {
        "bob@acme.test": 30, "carol@acme.test": 70}  # fmt: skip

    timed = acme.json("queue", "set-assignment", "Support", "--rule", "time",
                      "--slot", "bob@acme.test=mon-wed,fri@09:00-12:00,13:00-17:00",
                      "--slot", "carol@acme.test=sat-mon@22:00-24:00", *ADA)  # fmt: skip
    bob, carol = _members(timed)["bob@acme.test"], _members(timed)["carol@acme.test"]
    assert bob["slots"] == [
        {"days": ["mon", "tue", "wed", "fri"], "start": "09:00", "end": "12:00"},
        {"days": ["mon", "tue", "wed", "fri"], "start": "13:00", "end": "17:00"},
    ]
    assert carol["slots"] == [{"days": ["mon", "sat", "sun"], "start": "22:00", "end": "24:00"}]
    assert bob["weight"] == 30 and timed["fallback"] == "ada@acme.test"  # left out: kept

    cleared = acme.json("queue", "set-assignment", "Support", "--slot", "bob@acme.test=none",
                        "--fallback", "none", *ADA)  # fmt: skip
    assert _members(cleared)["bob@acme.test"]["slots"] == []
    assert _members(cleared)["carol@acme.test"]["slots"] == carol["slots"]
    assert cleared["fallback"] is None


def test_assignment_text_output(acme: Cli) -> None:
    acme("user", "set-availability", "bob@acme.test", "away", *BOB)
    acme("queue", "set-assignment", "Support", "--rule", "time",
         "--slot", "bob@acme.test=mon-wed,fri@09:00-12:00", *ADA)  # fmt: skip
    text = acme("queue", "assignment", "Support", *BOB).stdout
    assert "rule:        time" in text and "sticky days: off" in text
    assert any(line.split()[:2] == ["bob@acme.test", "away"] for line in text.splitlines())
    assert "Time slots" in text
    assert any(line.split() == ["bob@acme.test", "mon-wed,fri", "09:00-12:00"]
               for line in text.splitlines())  # fmt: skip


def test_assignment_invalid_input_and_permissions(acme: Cli) -> None:
    before = acme.json("queue", "assignment", "Support", *ADA)
    set_ = ("queue", "set-assignment", "Support", *ADA)
    acme.invalid(*set_, "--weight", "bob@acme.test=lots", field="weights")
    acme.invalid(*set_, "--weight", "bob@acme.test", field="weights")
    acme.invalid(*set_, "--weight", "bob@acme.test=101", field="weights")
    acme.invalid(*set_, "--weight", "dan@acme.test=10", field="weights")  # not a member
    acme.invalid(*set_, "--sticky-days", "-1", field="sticky_days")
    acme.invalid(*set_, "--slot", "bob@acme.test=mon@9-17", field="slots of bob@acme.test")
    acme.invalid(*set_, "--slot", "bob@acme.test=funday@09:00-10:00", field="slots")
    acme.invalid(*set_, "--slot", "bob@acme.test=mon", field="slots")
    acme.invalid(*set_, "--slot", "bob@acme.test=mon@09:00", field="slots")
    acme.invalid(*set_, "--rule", "time", "--slot", "bob@acme.test=mon@12:00-09:00",
                 field="slots of bob@acme.test")  # fmt: skip
    assert acme.json(*set_, "--fallback", "ghost@acme.test", code=3)["field"] == "fallback"
    acme(*set_, "--rule", "fastest", code=2)
    acme(*set_, code=2)  # nothing to change
    assert acme.json("queue", "assignment", "Support", *ADA) == before  # refusals changed nothing
    acme("queue", "assignment", "Ghosts", *ADA, code=3)
    acme("queue", "set-assignment", "Support", "--rule", "manual", *BOB, code=6)
    assert acme.json("queue", "assignment", "Support", *DAN, code=6)["error"] == "permission"


# --- queue hours -----------------------------------------------------------------------------


def test_hours_show_and_set(acme: Cli, tmp_path: Path) -> None:
    shown = acme.json("queue", "hours", "Support", *BOB)
    assert (shown["enabled"], shown["holidays"]) == (False, [])
    assert shown["schedule"] == {day: [] for day in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                     "sun")}  # fmt: skip
    record = acme.json("queue", "set-hours", "Support", "--enable",
                       "--day", "mon-fri=09:00-13:00,14:00-18:00", "--day", "sat=10:00-12:00",
                       "--holiday", "2026-12-25", "--holiday", "2026-01-01", *CAROL)  # fmt: skip
    assert record["enabled"] is True and record["timezone"] == "Europe/Madrid"  # the org's
    assert record["schedule"]["fri"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert record["schedule"]["sat"] == [["10:00", "12:00"]] and record["schedule"]["sun"] == []
    assert record["holidays"] == ["2026-01-01", "2026-12-25"]

    record = acme.json("queue", "set-hours", "Support", "--day", "sat=closed", "--holiday",
                       "2027-01-01", "--timezone", "America/New_York", *ADA)  # fmt: skip
    assert record["schedule"]["sat"] == []
    assert record["schedule"]["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]]  # not named: kept
    assert record["holidays"] == ["2026-01-01", "2026-12-25", "2027-01-01"]
    assert record["timezone"] == "America/New_York"
    record = acme.json("queue", "set-hours", "Support", "--clear-holidays",
                       "--holiday", "2027-12-25", *ADA)  # fmt: skip
    assert record["holidays"] == ["2027-12-25"]

    body = tmp_path / "closed.txt"
    body.write_text("We are closed.\nBack {{next_opening}}.\n", encoding="utf-8")
    record = acme.json("queue", "set-hours", "Support", "--outside-hours",
                       "--outside-hours-subject", "Closed", "--outside-hours-body-file", str(body),
                       *ADA)  # fmt: skip
    assert (record["outside_hours_enabled"], record["outside_hours_subject"]) == (True, "Closed")
    assert record["outside_hours_body"] == "We are closed.\nBack {{next_opening}}.\n"
    record = acme.json("queue", "set-hours", "Support", "--no-outside-hours", "--disable", *ADA)
    assert (record["outside_hours_enabled"], record["enabled"]) == (False, False)
    assert record["outside_hours_body"].startswith("We are closed.")  # kept for next time


def test_hours_text_output(acme: Cli) -> None:
    text = acme("queue", "set-hours", "Support", "--enable", "--day", "mon=09:00-12:00,13:00-17:00",
                "--outside-hours-body", "Closed \x1b[5mnow\nSee you", *ADA).stdout  # fmt: skip
    lines = text.splitlines()
    assert "working hours:         on" in lines and "timezone:              Europe/Madrid" in lines
    assert "mon  09:00-12:00, 13:00-17:00" in lines and "sun  closed" in lines
    assert "\x1b" not in text and "  Closed now" in lines and "  See you" in lines


def test_hours_invalid_input_and_permissions(acme: Cli, tmp_path: Path) -> None:
    set_ = ("queue", "set-hours", "Support", *ADA)
    before = acme.json("queue", "hours", "Support", *ADA)
    acme.invalid(*set_, "--timezone", "Mars/Olympus", field="timezone")
    acme.invalid(*set_, "--day", "mon=09:00-12:00,11:00-13:00", field="schedule.mon")
    acme.invalid(*set_, "--day", "tue=9-5", field="schedule.tue")
    acme.invalid(*set_, "--day", "funday=09:00-10:00", field="schedule")
    acme.invalid(*set_, "--day", "mon", field="schedule")
    acme.invalid(*set_, "--day", "mon=09:00", field="schedule")
    acme.invalid(*set_, "--holiday", "2026-13-01", field="holidays")
    acme.invalid(*set_, "--enable", "--outside-hours", field="outside_hours_body")
    acme.invalid(*set_, "--outside-hours-subject", "two\nlines", field="outside_hours_subject")
    body = tmp_path / "b.txt"
    body.write_text("x", encoding="utf-8")
    acme(*set_, "--outside-hours-body", "y", "--outside-hours-body-file", str(body), code=2)
    acme(*set_, "--outside-hours-body-file", str(tmp_path / "missing.txt"), code=2)
    acme(*set_, code=2)  # nothing to change
    assert acme.json("queue", "hours", "Support", *ADA) == before
    acme("queue", "set-hours", "Support", "--enable", *BOB, code=6)
    acme("queue", "hours", "Support", *DAN, code=6)
    assert acme.json("queue", "hours", "Ghosts", *ADA, code=3)["field"] == "queue"


# --- mailbox autoresponder -------------------------------------------------------------------


def test_autoresponder_show_and_set(acme: Cli) -> None:
    shown = acme.json("mailbox", "autoresponder", "support@acme.test", *BOB)
    assert shown == {**shown, "mailbox": "support@acme.test", "enabled": False, "body": "",
                     "windows": [], "timezone": "Europe/Madrid", "delay_seconds": 0}  # fmt: skip
    assert set(shown) >= {"subject", "updated_at"}
    record = acme.json("mailbox", "set-autoresponder", "support@acme.test", "--enable",
                       "--subject", "Out of office", "--body-file", "-",
                       "--window", "2026-12-24T00:00/2026-12-27T00:00", "--delay", "300", *ADA,
                       input="Back on Monday.\n")  # fmt: skip
    assert (record["enabled"], record["subject"], record["body"]) == (
        True, "Out of office", "Back on Monday.\n")  # fmt: skip
    assert record["windows"] == [{"start": "2026-12-24T00:00", "end": "2026-12-27T00:00"}]
    assert record["delay_seconds"] == 300
    record = acme.json("mailbox", "set-autoresponder", "support@acme.test",
                       "--window", "2026-08-01T00:00/2026-08-15T00:00", *ADA)  # fmt: skip
    assert [w["start"] for w in record["windows"]] == ["2026-08-01T00:00", "2026-12-24T00:00"]
    record = acme.json("mailbox", "set-autoresponder", "support@acme.test", "--clear-windows",
                       "--disable", *ADA)  # fmt: skip
    assert (record["windows"], record["enabled"], record["body"]) == (
        [],
        False,
        "Back on Monday.\n",
    )
    assert acme.json("mailbox", "autoresponder", "support@acme.test", *BOB) == record


def test_autoresponder_text_output(acme: Cli) -> None:
    text = acme("mailbox", "set-autoresponder", "support@acme.test", "--enable", "--body",
                "Away\x1b]0;owned\x07 until Monday\nRegards", "--window",
                "2026-12-24T00:00/2026-12-27T00:00", *ADA).stdout  # fmt: skip
    lines = text.splitlines()
    assert "enabled:    yes" in lines and "Windows (Europe/Madrid)" in lines
    assert "2026-12-24 00:00  2026-12-27 00:00" in lines
    assert "\x1b" not in text and "\x07" not in text
    assert "  Away until Monday" in lines and "  Regards" in lines
    empty = acme("mailbox", "set-autoresponder", "support@acme.test", "--clear-windows", *ADA)
    assert "(none: active whenever enabled)" in empty.stdout


def test_autoresponder_invalid_input_and_permissions(acme: Cli, tmp_path: Path) -> None:
    set_ = ("mailbox", "set-autoresponder", "support@acme.test", *ADA)
    acme.invalid(*set_, "--enable", field="body")  # nothing to send yet
    acme.invalid(*set_, "--window", "2026-12-24T00:00", field="windows")
    acme.invalid(*set_, "--window", "2026-12-27T00:00/2026-12-24T00:00", field="windows")
    acme.invalid(*set_, "--window", "2026-12-24T00:00+01:00/2026-12-25T00:00", field="windows")
    acme.invalid(*set_, "--window", "christmas/new year", field="windows")
    acme.invalid(*set_, "--delay", "86401", field="delay_seconds")
    acme.invalid(*set_, "--subject", "two\nlines", field="subject")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Fermé".encode("latin-1"))
    acme.invalid(*set_, "--body-file", str(latin1), field="body")
    acme(*set_, "--body", "x", "--body-file", str(latin1), code=2)
    acme(*set_, "--delay", "soon", code=2)
    acme(*set_, code=2)  # nothing to change
    assert acme.json("mailbox", "autoresponder", "support@acme.test", *ADA)["body"] == ""
    denied = acme.json("mailbox", "set-autoresponder", "support@acme.test", "--body", "x", *CAROL,
                       code=6)  # fmt: skip
    assert denied["error"] == "permission"
    missing = acme.json("mailbox", "autoresponder", "ghost@acme.test", *ADA, code=3)
    assert missing["field"] == "address"
