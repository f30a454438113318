"""Storing inbound mail (F40, F41, F70, F71, F74, F76). A batch of mail moves one way through
the modules of this package:

1. recipients: what RCPT TO accepts (before any mail arrives)
2. batch: the entry points; one transaction per batch, fast attempt then careful savepoints
3. prepare: what the transaction looks up once (Setup, Batch), after taking the locks that
   keep two workers from deciding the same thing at once (locks)
4. deliver: one copy for one mailbox, parsed, as a bounce, or raw; then the automatic reply
5. thread: the contact, and the conversation a bounce or a reply joins
6. route: a new conversation, routed and assigned
7. rows: the rows written, table by table, at the end

clean holds the text cleaning every step shares; budget the time each mail may take.
"""

from tui_helpdesk.services.ingest.batch import (
    StoredMail,
    batch_store,
    store_batch,
    store_inbound,
)
from tui_helpdesk.services.ingest.recipients import accepts_recipient, active_aliases

__all__ = [
    "StoredMail",
    "accepts_recipient",
    "active_aliases",
    "batch_store",
    "store_batch",
    "store_inbound",
]
