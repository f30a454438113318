"""Which conversation a copy joins, if any: its sender's contact, a bounce's original mail,
or the conversation threading finds (F40, F41, F74).

Nothing here creates a conversation: a mail that joins none is routed next (route.py).
"""

from __future__ import annotations

from tui_helpdesk.db.models import Conversation, Mailbox
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services import contacts, threading
from tui_helpdesk.services.ingest.clean import MESSAGE_ID_MAX
from tui_helpdesk.services.ingest.prepare import Batch
from tui_helpdesk.services.ingest.rows import NewContact, row_id


def contact_for(
    batch: Batch, organisation_id: int, sender: str, name: str, mail: InboundMail
) -> int | NewContact | None:
    """The sender's contact (F40): found in the batch's lookup, else a new one."""
    if not sender:
        return None
    key = (organisation_id, sender)
    known = batch.contacts.get(key)
    if known is None:
        new = NewContact(contacts.new_row(organisation_id, sender, name, mail.received_at))
        batch.pending.contacts.append(new)
        batch.remember(batch.contacts, key, (new, name))
        return new
    contact, known_name = known
    if name and not known_name:
        if isinstance(contact, NewContact) and contact.id is None:
            contact.values["name"] = contacts.clean_name(name)
        else:
            contacts.learn_name(batch.session, row_id(contact), name)  # type: ignore[arg-type]
        batch.remember(batch.contacts, key, (contact, name))
    return contact


def bounced_conversation(
    batch: Batch, mailbox: Mailbox, parsed: ParsedMessage, sender: str
) -> Conversation | None:
    """The conversation of the mail a bounce (DSN) returns, when we have it."""
    bounce = parsed.bounce
    if bounce is None or not bounce.original_message_id:
        return None
    batch.flush()  # the bounced mail, or a contact it flags, may be new in this batch
    original = bounce.original_message_id[:MESSAGE_ID_MAX]
    return threading.find_bounced_conversation(
        batch.session,
        mailbox=mailbox,
        original_message_id=original,
        people=[sender, *bounce.failed_recipients],
    )


def threaded_conversation(
    batch: Batch, mailbox: Mailbox, parsed: ParsedMessage, sender: str
) -> Conversation | None:
    """The conversation a reply belongs to (F41), closed ones included (see route.py)."""
    prefix = batch.settings.mail.subject_token_prefix
    if not threading.has_evidence(parsed, prefix):
        return None
    batch.flush()  # a reply may answer a mail of this very batch
    return threading.find_conversation(
        batch.session, mailbox=mailbox, parsed=parsed, sender=sender, token_prefix=prefix
    )
