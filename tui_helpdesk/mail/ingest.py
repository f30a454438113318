"""The SMTP side of ingest: an aiosmtpd handler and the group-commit writers (F70, F76).

No database here: a writer is given a `store` callable that stores a whole batch in one
transaction, and the handler a `load_aliases` callable. That keeps the protocol path testable
on its own and the layering clean (mail never imports db or services).

Why group commit: a durable commit (fsync) per message would cap throughput at the disk's
flush rate. One writer takes everything queued, commits it at once, and only then lets each
session answer 250; concurrent sessions share the cost of one commit.

Two writers with the same promise: `GroupCommitWriter`, a thread beside the event loop (the
embedded worker of the TUI), and `ProcessWriter`, which runs the store in a process of its
own. Parsing and storing are CPU work under the GIL; in a thread they compete with the SMTP
sessions for one core, in a process they get the second one (issue 3, point 6).

This module gathers the public names; the parts live beside it: ingest_mail (what passes
between handler, writer and store), ingest_handler (IngestHandler, AliasCache), ingest_writer
(GroupCommitWriter), ingest_process (the store process) and ingest_process_writer
(ProcessWriter).
"""

from tui_helpdesk.mail.ingest_handler import TEMPORARY_FAILURE, AliasCache, IngestHandler
from tui_helpdesk.mail.ingest_mail import (
    Accepted,
    InboundMail,
    StoreBatch,
    Writer,
    WriterStats,
)
from tui_helpdesk.mail.ingest_process import (
    StoreFactory,
    StoreRefused,
    StoreUnavailable,
    store_process_main,
)
from tui_helpdesk.mail.ingest_process_writer import PARSE_AHEAD, PARSE_IN_LOOP_MAX, ProcessWriter
from tui_helpdesk.mail.ingest_writer import GroupCommitWriter

__all__ = [
    "PARSE_AHEAD",
    "PARSE_IN_LOOP_MAX",
    "TEMPORARY_FAILURE",
    "Accepted",
    "AliasCache",
    "GroupCommitWriter",
    "InboundMail",
    "IngestHandler",
    "ProcessWriter",
    "StoreBatch",
    "StoreFactory",
    "StoreRefused",
    "StoreUnavailable",
    "Writer",
    "WriterStats",
    "store_process_main",
]
