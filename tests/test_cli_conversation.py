"""`conversation search` and the conversation actions from the command line (F81), with
--json shapes and exit codes, on both backends."""

from __future__ import annotations

import pytest
from test_cli import ADA, BOB, Cli, add_conversations, bootstrap


@pytest.fixture
def acme(db_url: str) -> Cli:
    return bootstrap(Cli(db_url))


def test_search_prints_hits_and_refuses_bad_queries(db_url: str, acme: Cli) -> None:
    ids = add_conversations(db_url, 6)
    found = acme.json("conversation", "search", "question status:pending", *ADA)
    assert [h["conversation"]["id"] for h in found["hits"]] == [ids[4], ids[1]]
    assert found["next"] is None
    assert found["hits"][0]["snippet"].startswith("Question 4")
    first = acme.json("conversation", "search", "body", "--limit", "2", *ADA)
    assert len(first["hits"]) == 2 and first["next"]["message_id"] is not None
    text = acme("conversation", "search", '"body 1"', *ADA).stdout
    assert str(ids[0]) in text and "\x1b" not in text
    assert "Nothing found." in acme("conversation", "search", "zebra", *ADA).stdout
    bad = acme("conversation", "search", "form:x", *ADA, code=2)
    assert "unknown filter 'form:' — did you mean from:?" in bad.stderr
    refused = acme.json("conversation", "search", "after:tomorrow", *ADA, code=2)
    assert refused == {"error": "invalid", "field": "query",
                       "message": "after: needs a date YYYY-MM-DD, got 'tomorrow'"}  # fmt: skip
    assert acme.json("conversation", "search", "question", *BOB)["hits"] == []


def test_every_action_from_the_command_line(acme: Cli, db_url: str) -> None:
    (ident,) = add_conversations(db_url, 1)
    conversation = str(ident)
    acme("queue", "create", "Support", *ADA)
    acme("queue", "add-member", "Support", "bob@acme.test", *ADA)
    row = acme.json("conversation", "assign", conversation, "bob@acme.test", *ADA)
    assert row["id"] == ident and row["assignee"] == "bob@acme.test"
    assert acme.json("conversation", "assign", conversation, "none", *ADA)["assignee"] is None
    moved = acme.json("conversation", "transfer", conversation, "--to-queue", "Support", *ADA)
    assert moved["queue"] == "Support" and moved["assignee"] is None  # a manual queue
    acme("conversation", "transfer", conversation, *ADA, code=2)
    to_bob = acme.json("conversation", "transfer", conversation, "--to-user", "bob@acme.test", *ADA)
    assert to_bob["assignee"] == "bob@acme.test"
    assert acme.json("conversation", "pending", conversation, *BOB)["status"] == "pending"
    closed = acme("conversation", "close", conversation, "--note", "done", *BOB).stdout
    assert "status:" in closed and "closed" in closed
    acme("conversation", "close", conversation, *BOB, code=4)
    assert acme.json("conversation", "reopen", conversation, *BOB)["status"] == "open"
    assert acme.json("conversation", "tag", conversation, "VIP", "refund", *BOB)["tags"] == [
        "refund", "vip",
    ]  # fmt: skip
    assert acme.json("conversation", "untag", conversation, "vip", *BOB)["tags"] == ["refund"]
    acme("conversation", "tag", conversation, "bad tag", *BOB, code=2)
    assert acme.json("conversation", "priority", conversation, "urgent", *BOB)["priority"] == (
        "urgent"
    )
    acme("conversation", "priority", conversation, "asap", *BOB, code=2)
    acme("conversation", "assign", "999999", "me", *ADA, code=3)
    actions = [e["action"] for e in acme.json("audit", "list", "--entity-type", "conversation",
                                              *ADA)]  # fmt: skip
    assert {a.split(".")[1] for a in actions} == {
        "assign", "transfer", "pending", "close", "reopen", "tag", "untag", "priority",
    }  # fmt: skip
    shown = acme.json("conversation", "show", conversation, *ADA)
    assert shown["messages"][-1]["kind"] == "note"
    assert shown["messages"][-1]["text_body"] == "done"


def test_a_user_sets_their_timezone(acme: Cli) -> None:
    shown = acme.json("user", "set-timezone", "bob@acme.test", "Europe/Madrid", *BOB)
    assert shown["timezone"] == "Europe/Madrid"
    assert acme.json("user", "set-timezone", "bob@acme.test", "none", *ADA)["timezone"] is None
    acme("user", "set-timezone", "ada@acme.test", "UTC", *BOB, code=6)
    acme("user", "set-timezone", "bob@acme.test", "Nowhere/Land", *BOB, code=2)
