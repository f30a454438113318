"""Drafts (F43): what an agent is writing in the TUI's composer, kept in the database.

One draft per conversation and user: an escape pressed by mistake, a dropped SSH link or a
crash loses nothing, and the composer opens on it next time. It lives until it is sent (the
screen discards it in the same unit of work as the reply) or discarded. A draft is the
writer's own scratch: nobody else reads it, so saving one is neither audited nor announced
(the reply it becomes is both).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Draft
from tui_helpdesk.errors import Conflict, Invalid
from tui_helpdesk.records import ComposerContext, DraftRecord, UserRecord
from tui_helpdesk.services import mailboxes
from tui_helpdesk.services.conversations.drafting import parent_of, sending_mailbox
from tui_helpdesk.services.conversations.visibility import load_visible
from tui_helpdesk.services.permissions import require_actor

MODES = ("reply", "reply_all", "forward", "note")
BODY_MAX = 1_000_000
ADDRESSES_MAX = 10_000


def save(
    session: Session,
    actor: UserRecord | None,
    conversation_id: int,
    *,
    mode: str,
    body: str,
    to: str = "",
    cc: str = "",
    now: datetime | None = None,
) -> DraftRecord:
    """Keep what is written so far (replacing the actor's earlier draft of the conversation)."""
    actor = require_actor(actor)
    if mode not in MODES:
        raise Invalid(f"a draft is one of {', '.join(MODES)}, not {mode!r}", field="mode")
    body, to, cc = _clean(body), _clean(to), _clean(cc)
    if len(body) > BODY_MAX:
        raise Invalid(f"a draft holds at most {BODY_MAX:,} characters", field="body")
    if len(to) > ADDRESSES_MAX or len(cc) > ADDRESSES_MAX:
        raise Invalid(f"at most {ADDRESSES_MAX:,} characters of addresses", field="to")
    load_visible(session, actor, conversation_id)
    now = now or datetime.now(UTC)
    draft = _find(session, actor, conversation_id)
    if draft is None:
        draft = Draft(conversation_id=conversation_id, user_id=actor.id)
        session.add(draft)
    draft.mode, draft.body, draft.to_addresses, draft.cc_addresses = mode, body, to, cc
    draft.updated_at = now
    session.flush()
    return _record(draft)


def get(session: Session, actor: UserRecord | None, conversation_id: int) -> DraftRecord | None:
    """The actor's draft of the conversation, if they kept one."""
    actor = require_actor(actor)
    load_visible(session, actor, conversation_id)
    draft = _find(session, actor, conversation_id)
    return _record(draft) if draft is not None else None


def discard(session: Session, actor: UserRecord | None, conversation_id: int) -> bool:
    """Forget the actor's draft of the conversation; whether there was one."""
    actor = require_actor(actor)
    result = session.execute(
        delete(Draft).where(Draft.conversation_id == conversation_id, Draft.user_id == actor.id)
    )
    return bool(getattr(result, "rowcount", 0))


def composer_context(
    session: Session, actor: UserRecord | None, conversation_id: int
) -> ComposerContext:
    """What the composer shows on opening: the sending mailbox, the address a reply goes to,
    the signature filled for the actor, and the kept draft."""
    actor = require_actor(actor)
    conversation = load_visible(session, actor, conversation_id)
    try:
        mailbox = sending_mailbox(session, conversation)
    except Conflict:
        address, signature = "", ""
    else:
        address = mailbox.email_address
        signature = mailboxes.signature(session, mailbox, actor)[0]
    parent = parent_of(session, conversation)
    reply_to = ""
    if parent is not None:
        reply_to = parent.from_address if parent.direction == "inbound" else parent.to_addresses
    draft = _find(session, actor, conversation_id)
    return ComposerContext(
        conversation_id=conversation_id,
        mailbox=address,
        reply_to=reply_to,
        signature=signature,
        draft=_record(draft) if draft is not None else None,
    )


def _find(session: Session, actor: UserRecord, conversation_id: int) -> Draft | None:
    return session.scalar(
        select(Draft).where(Draft.conversation_id == conversation_id, Draft.user_id == actor.id)
    )


def _record(draft: Draft) -> DraftRecord:
    return DraftRecord(
        conversation_id=draft.conversation_id,
        mode=draft.mode,
        to=draft.to_addresses,
        cc=draft.cc_addresses,
        body=draft.body,
        updated_at=draft.updated_at,
    )


def _clean(text: str) -> str:
    """What every database stores: no NUL, no lone surrogates (from a terminal's bytes)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
