"""F75 in the inbox (issue 12, point 4): a conversation with a message flagged as possible
spoofing carries a red mark in the list, a lookalike a softer one; unflagged rows carry none."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from test_tui import conversation_list, loaded, wait_for
from test_tui_data import NOW, seed
from test_tui_inbox_actions import build, inbox_settings

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Message, MessageAuth

SIZE = (120, 30)


@pytest.fixture
def tui_settings(settings: Settings, tmp_path: Path) -> Settings:
    return inbox_settings(settings, tmp_path)


def flag(db: Database, conversation_id: int, warning: str) -> None:
    with db.write() as session:
        message_id = session.scalars(
            select(Message.id).where(Message.conversation_id == conversation_id)
        ).first()
        session.add(
            MessageAuth(
                message_id=message_id, status="done", next_attempt_at=NOW - timedelta(minutes=1),
                dmarc="fail", warning=warning, warning_reason="From: acme.test fails DMARC",
            )
        )  # fmt: skip


async def test_flagged_conversations_are_marked_in_the_list(
    db: Database, tui_settings: Settings
) -> None:
    seeded = seed(db)
    flag(db, seeded.conversations["printer"], "spoof")
    flag(db, seeded.conversations["invoice"], "lookalike")
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        lines = {
            row.subject: listed.render_line(index + 1).text
            for index in range(listed.total)
            if (row := listed.row_at(index)) is not None
        }
        assert "⚠ spoof? Printer on fire" in lines["Printer on fire"]
        assert "⚠ Invoice 2026-11" in lines["Invoice 2026-11"]
        assert "⚠" not in lines["Hello?"]
        spoof_row = next(
            index for index in range(listed.total)
            if listed.row_at(index).subject == "Printer on fire"  # type: ignore[union-attr]
        )  # fmt: skip
        listed.cursor = (spoof_row + 1) % listed.total  # the mark's colour, off the cursor
        await pilot.pause()
        strip = listed.render_line(spoof_row + 1)
        subject = next(segment for segment in strip if "spoof?" in segment.text)
        assert subject.style is not None and subject.style.color is not None
        assert subject.style.color.triplet is not None
        red, green, blue = subject.style.color.triplet
        assert red > green + 50 and red > blue + 50  # reddish, as $text-error
