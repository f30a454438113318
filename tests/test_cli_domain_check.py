"""`tui-helpdesk domain check` end to end (F2, F81): table or --json, and exit codes that say
whether every check passed (0), one failed or is missing (7), or the DNS did not answer (8)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result
from dkim_keys import DkimKey
from dns_server import ZoneServer
from factories import make_org

from tui_helpdesk.cli import cli
from tui_helpdesk.db.engine import Database

CHECK_KEYS = {"domain", "check", "status", "name", "found", "publish", "explanation"}


def zone(key: DkimKey, spf: str) -> str:
    return f"""
@ MX 10 mx.acme.test.
mx A 192.0.2.10
@ TXT "{spf}"
{key.zone_line("helpdesk._domainkey")}
_dmarc TXT "v=DMARC1; p=quarantine"
"""


class Run:
    def __init__(self, db_url: str, dns_env: dict[str, str]) -> None:
        self.env = {
            "TUI_HELPDESK_DATABASE_URL": db_url,
            "TUI_HELPDESK_OUTBOUND_RELAY_HOST": "relay.helpdesk.test",
            "TUI_HELPDESK_DNS_TIMEOUT_SECONDS": "2",
            **dns_env,
        }

    def __call__(self, *args: str, code: int = 0, as_user: str = "ada@acme.test") -> Result:
        result = CliRunner().invoke(cli, [*args, "--as", as_user], env=self.env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    def json(self, *args: str, code: int = 0, as_user: str = "ada@acme.test") -> Any:
        return json.loads(self(*args, "--json", code=code, as_user=as_user).stdout)


@pytest.fixture
def run(db: Database, db_url: str, dns_server: ZoneServer) -> Run:
    make_org(db)
    dns_server.load("helpdesk.test", "relay A 192.0.2.25\n")
    return Run(db_url, dns_server.environ())


def test_json_lists_each_check_with_status_found_and_publish(
    run: Run, dns_server: ZoneServer, dkim_key: DkimKey
) -> None:
    dns_server.load("acme.test", zone(dkim_key, "v=spf1 a:relay.helpdesk.test -all"))
    checks = run.json("domain", "check", "acme.test")
    assert [c["check"] for c in checks] == ["mx", "spf", "dkim", "dmarc"]
    assert all(set(c) == CHECK_KEYS and c["status"] == "pass" for c in checks)
    assert checks[1]["found"] == ["v=spf1 a:relay.helpdesk.test -all"]


def test_a_failing_check_exits_7_and_the_table_shows_what_to_publish(
    run: Run, dns_server: ZoneServer, dkim_key: DkimKey
) -> None:
    dns_server.load("acme.test", zone(dkim_key, "v=spf1 mx ~all"))
    text = run("domain", "check", "acme.test", code=7).stdout
    lines = text.splitlines()
    assert lines[0] == "acme.test:"
    assert lines[1].split() == ["CHECK", "STATUS", "NAME", "FOUND"]
    assert lines[3].split()[:3] == ["spf", "fail", "acme.test"]
    assert "spf fail: mail sent through relay.helpdesk.test (192.0.2.25) gets SPF softfail" in text
    assert '  publish: acme.test. IN TXT "v=spf1 mx a:relay.helpdesk.test ~all"' in lines
    checks = run.json("domain", "check", "acme.test", code=7)
    assert [c["status"] for c in checks] == ["pass", "fail", "pass", "pass"]


def test_without_a_domain_every_domain_of_the_organisation_is_checked(
    run: Run, db: Database, dns_server: ZoneServer, dkim_key: DkimKey
) -> None:
    run("domain", "add", "acme-mail.test")
    dns_server.load("acme.test", zone(dkim_key, "v=spf1 a:relay.helpdesk.test -all"))
    dns_server.load("acme-mail.test", "")
    checks = run.json("domain", "check", code=7)
    assert {(c["domain"], c["status"]) for c in checks} == {
        ("acme.test", "pass"), ("acme-mail.test", "missing"),
    }  # fmt: skip
    text = run("domain", "check", code=7).stdout
    assert "acme-mail.test:" in text and "\nacme.test:" in text


def test_dns_down_exits_8_and_says_it_could_not_check(
    db: Database, db_url: str, silent_dns_port: int
) -> None:
    make_org(db)
    run = Run(db_url, {"TUI_HELPDESK_DNS_NAMESERVERS": "127.0.0.1"})
    run.env |= {
        "TUI_HELPDESK_DNS_PORT": str(silent_dns_port),
        "TUI_HELPDESK_DNS_TIMEOUT_SECONDS": "0.3",
    }
    checks = run.json("domain", "check", "acme.test", code=8)
    assert {c["status"] for c in checks} == {"temperror"}
    assert "mx temperror: could not check" in run("domain", "check", "acme.test", code=8).stdout


def test_unknown_domain_is_3_and_a_bad_selector_is_2(run: Run) -> None:
    error = run.json("domain", "check", "other.test", code=3)
    assert (error["error"], error["field"]) == ("not_found", "domain")
    error = run.json("domain", "check", "acme.test", "--selector", "a b", code=2)
    assert (error["error"], error["field"]) == ("invalid", "selector")


def test_an_agent_may_check_the_domains_too(
    run: Run, dns_server: ZoneServer, dkim_key: DkimKey
) -> None:
    run("user", "add", "bob@acme.test", "--name", "Bob", "--role", "agent")
    dns_server.load("acme.test", zone(dkim_key, "v=spf1 a:relay.helpdesk.test -all"))
    checks = run.json("domain", "check", "acme.test", as_user="bob@acme.test")
    assert {c["status"] for c in checks} == {"pass"}
