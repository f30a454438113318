"""The notice closing a conversation mails to the customer (F45).

Sent when the mailbox has it on (`mailbox set-close-notice`), the close asked for it (not
`--no-notify`), the conversation has a customer address we may write to, and the mailbox may
send (active and verified). Its text is the mailbox's template with {{subject}},
{{conversation_id}} and {{agent_name}} filled, then the signature. It answers the customer's
last mail (In-Reply-To, References, our token) and is marked Auto-Submitted: auto-generated, so
the customer's own autoresponder leaves it alone; a reply to it threads to the closed
conversation and so opens a new one linked to it (services/threading.py).

Sender restrictions (F20) do not apply: the notice is the mailbox's, not the closing agent's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import Contact, Conversation, Mailbox, OutboxJob
from tui_helpdesk.errors import Invalid
from tui_helpdesk.mail.addresses import clean_line
from tui_helpdesk.mail.compose import (
    AUTO_GENERATED,
    MAX_QUOTED_SUBJECT,
    Draft,
    body_parts,
    fill,
    thread_subject,
)
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import mailboxes, outgoing
from tui_helpdesk.services.conversations.drafting import (
    customer,
    parent_of,
    thread_headers,
)


def queue_notice(
    session: Session,
    settings: Settings,
    actor: UserRecord,
    conversation: Conversation,
    now: datetime,
) -> OutboxJob | None:
    """Queue the notice for a conversation being closed; None when none is due."""
    mailbox = session.get(Mailbox, conversation.mailbox_id) if conversation.mailbox_id else None
    contact = session.get(Contact, conversation.contact_id) if conversation.contact_id else None
    if mailbox is None or contact is None or not _may_send(mailbox):
        return None
    try:
        to = customer(contact.email, contact.name)
    except Invalid:
        return None
    template = mailboxes.close_notice_of(mailbox)
    values = {"subject": clean_line(conversation.subject, MAX_QUOTED_SUBJECT),
              "conversation_id": str(conversation.id), "agent_name": actor.name}  # fmt: skip
    signature_text, signature_html = mailboxes.signature(session, mailbox, actor)
    text, html = body_parts(
        fill(template.text, values), signature_text=signature_text, signature_html=signature_html
    )
    in_reply_to, references = thread_headers(parent_of(session, conversation))
    prefix = settings.mail.subject_token_prefix
    draft = Draft(
        sender=mailboxes.sender(session, mailbox), to=(to,),
        subject=thread_subject(conversation.subject, prefix=prefix,
                               conversation_id=conversation.id, lead="Re"),
        text=text, html=html, in_reply_to=in_reply_to, references=references,
        auto_submitted=AUTO_GENERATED,
    )  # fmt: skip
    sent = outgoing.send_in_conversation(
        session, mailbox=mailbox, conversation=conversation, draft=draft, kind="notice",
        job_kind="notice", now=now, touch=False,
    )  # fmt: skip
    return sent.job


def _may_send(mailbox: Mailbox) -> bool:
    return (
        bool(mailbox.close_notice_enabled)
        and mailbox.status == "active"
        and mailbox.deleted_at is None
        and mailbox.verified_at is not None
    )
