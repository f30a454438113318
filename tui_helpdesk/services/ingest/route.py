"""A new conversation for a copy that joins none: routed (F34), assigned (F32), its row.

A reply to a closed conversation comes here too: the new conversation links the old one.
"""

from __future__ import annotations

from tui_helpdesk.db.models import Conversation, Mailbox, Queue
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services import routing
from tui_helpdesk.services.ingest.clean import clean_text
from tui_helpdesk.services.ingest.prepare import Batch
from tui_helpdesk.services.ingest.rows import NewContact, NewConversation, row_id


def new_conversation(
    batch: Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    contact: int | NewContact | None,
    previous: Conversation | None,
) -> tuple[NewConversation, Queue | None]:
    """The routed, assigned conversation (pending until the batch flushes) and its queue."""
    decision = routing.decide(batch.routing(mailbox), mailbox, parsed, rcpts[0] if rcpts else "")
    queue = batch.queue(decision.queue_id)
    assignee = batch.assignee(queue, contact, mail.received_at) if queue is not None else None
    when = mail.received_at
    conversation = NewConversation(
        {
            "organisation_id": mailbox.organisation_id,
            "mailbox_id": mailbox.id,
            "queue_id": decision.queue_id,
            "contact_id": row_id(contact),
            "subject": clean_text(parsed.subject),
            "status": "open",
            "priority": decision.priority or "normal",
            "assignee_id": assignee,
            "previous_conversation_id": previous.id if previous is not None else None,
            "last_message_at": when,
            "closed_at": None,
            "message_count": 1,
            "created_at": when,
            "updated_at": when,
        },
        contact if isinstance(contact, NewContact) and contact.id is None else None,
    )
    batch.pending.conversations.append(conversation)
    batch.pending.tags.extend((conversation, t) for t in decision.tags)
    return conversation, queue
