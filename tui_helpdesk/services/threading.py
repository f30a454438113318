"""Conversation threading (F41): which conversation an inbound message belongs to.

Evidence, strongest first: In-Reply-To and the References chain (newest first) against every
stored Message-ID, ours and theirs; then our own subject token `[<prefix>#<id>]`. Subject text
alone never threads (two customers both writing "Invoice" are two conversations). A match only
counts when the sender took part in that conversation or the mail came to the same mailbox,
so a stranger who copies a Message-ID or a token cannot read himself into someone's thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, ConversationParticipant, Mailbox, Message
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.mail.tokens import token_ids

MESSAGE_ID_MAX = 998
MAX_REFERENCES = 100  # a References header can be huge; the newest ones are what matter
MAX_SUCCESSORS = 50


def reference_chain(parsed: ParsedMessage) -> list[str]:
    """Message-IDs this message answers, the most specific first.

    In-Reply-To names the direct parent; References lists the thread oldest first, so it is
    read backwards.
    """
    ordered: list[str] = []
    for value in (*parsed.in_reply_to, *reversed(parsed.references)):
        if value and len(value) <= MESSAGE_ID_MAX and value not in ordered:
            ordered.append(value)
        if len(ordered) >= MAX_REFERENCES:
            break
    return ordered


def has_evidence(parsed: ParsedMessage, token_prefix: str) -> bool:
    """True when find_conversation has anything to look up (references or one of our tokens);
    mail without either starts a new conversation without a query."""
    if reference_chain(parsed):
        return True
    return bool(token_prefix) and bool(token_ids(parsed.subject, token_prefix))


def find_conversation(
    session: Session, *, mailbox: Mailbox, parsed: ParsedMessage, sender: str, token_prefix: str
) -> Conversation | None:
    """The conversation this message continues, or None for a new one.

    The result may be closed: the caller then opens a new conversation linked to it. When a
    closed conversation already has an open successor, that successor is returned instead,
    so several replies to a closed thread land in one new conversation, not one each.
    """
    candidates = _by_references(session, mailbox, reference_chain(parsed))
    candidates += _by_token(session, mailbox, parsed.subject, token_prefix)
    chosen = _first_eligible(session, mailbox, [sender], candidates)
    return None if chosen is None else _latest_successor(session, chosen)


def _by_references(session: Session, mailbox: Mailbox, refs: Sequence[str]) -> list[Conversation]:
    if not refs:
        return []
    rows = session.execute(
        select(Message.message_id_header, Conversation)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.message_id_header.in_(refs),
            Conversation.organisation_id == mailbox.organisation_id,
        )
    ).all()
    rank = {ref: position for position, ref in enumerate(refs)}
    # Per reference, a conversation of this mailbox before others (the same Message-ID can be
    # stored in two mailboxes when a customer wrote to both).
    rows.sort(key=lambda row: (rank[row[0]], row[1].mailbox_id != mailbox.id, -row[1].id))
    return _unique(row[1] for row in rows)


def _by_token(
    session: Session, mailbox: Mailbox, subject: str, token_prefix: str
) -> list[Conversation]:
    ids = token_ids(subject, token_prefix) if token_prefix else []
    if not ids:
        return []
    found = session.scalars(
        select(Conversation).where(
            Conversation.id.in_(ids), Conversation.organisation_id == mailbox.organisation_id
        )
    ).all()
    by_id = {c.id: c for c in found}
    return [by_id[i] for i in ids if i in by_id]


def find_bounced_conversation(
    session: Session, *, mailbox: Mailbox, original_message_id: str, people: Sequence[str]
) -> Conversation | None:
    """The conversation holding the message a bounce returns (F74), closed or not.

    `people` are the bounce's sender and its failed recipients: the failed recipient is a
    participant of the conversation we wrote to, the mailer daemon never is.
    """
    candidates = _by_references(session, mailbox, [original_message_id])
    return _first_eligible(session, mailbox, people, candidates)


def _first_eligible(
    session: Session, mailbox: Mailbox, people: Sequence[str], candidates: list[Conversation]
) -> Conversation | None:
    if not candidates:
        return None
    joined = _conversations_with_participant(session, people, candidates)
    for conversation in candidates:
        if conversation.mailbox_id == mailbox.id or conversation.id in joined:
            return conversation
    return None


def _conversations_with_participant(
    session: Session, people: Sequence[str], candidates: Iterable[Conversation]
) -> set[int]:
    emails = [p.lower() for p in people if p]
    ids = [c.id for c in candidates]
    if not emails or not ids:
        return set()
    return set(
        session.scalars(
            select(ConversationParticipant.conversation_id).where(
                ConversationParticipant.email.in_(emails),
                ConversationParticipant.conversation_id.in_(ids),
            )
        )
    )


def _latest_successor(session: Session, conversation: Conversation) -> Conversation:
    current = conversation
    for _ in range(MAX_SUCCESSORS):
        if current.status != "closed":
            return current
        successor = session.scalars(
            select(Conversation)
            .where(Conversation.previous_conversation_id == current.id)
            .order_by(Conversation.id.desc())
            .limit(1)
        ).first()
        if successor is None:
            return current
        current = successor
    return current


def _unique(conversations: Iterable[Conversation]) -> list[Conversation]:
    seen: set[int] = set()
    result = []
    for conversation in conversations:
        if conversation.id not in seen:
            seen.add(conversation.id)
            result.append(conversation)
    return result
