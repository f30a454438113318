"""`init --demo` fills an empty database through the real services, once."""

from __future__ import annotations

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.services import demo, users
from tui_helpdesk.services.conversations import listing, thread


def test_demo_loads_once_with_threaded_routed_conversations(
    db: Database, settings: Settings
) -> None:
    assert demo.load_demo(db, settings) is True
    assert demo.load_demo(db, settings) is False
    with db.read() as session:
        ada = users.resolve_actor(session, email=demo.ADMIN, os_user=None)
        rows = listing.list_conversations(session, ada, status=None, limit=None)
        login = next(r for r in rows if r.subject.startswith("Cannot log in"))
        detail = thread.get_conversation(session, ada, login.id)
    assert len(rows) == len(demo.MAILS) - 2  # two of the mails are replies in one thread
    inbound = [m for m in detail.messages if m.direction == "inbound"]
    assert len(inbound) == 3
    invoice = next(r for r in rows if r.subject.startswith("Invoice"))
    assert invoice.queue == "Billing"
    assert "invoice" in invoice.tags
    assert all(r.assignee for r in rows if r.queue == "Support")
