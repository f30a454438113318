"""Ingest's batch store as the SMTP writers call it, and the store process's start.

The store process (smtp.store_process) is spawned: it imports what its factory's module
imports. So `open_store` lives here, beside ingest and the database only, not in runtime with
the SMTP server, the sender, the DNS and the auth checker, none of which a store process
runs (a worker's start cost 1.2-1.4 s of CPU in the store process when it imported runtime).
"""

from __future__ import annotations

from collections.abc import Sequence

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.services import ingest
from tui_helpdesk.smtp.batches import Accepted, StoreBatch
from tui_helpdesk.worker.logs import configure_logging


def smtp_store(db: Database, settings: Settings) -> StoreBatch:
    """Ingest's batch store as the SMTP writers call it: each stored mail becomes Accepted."""
    store = ingest.batch_store(db, settings)

    def store_for_smtp(mails: Sequence[InboundMail]) -> list[Accepted | BaseException]:
        return [_accepted(result) for result in store(mails)]

    return store_for_smtp


def _accepted(result: ingest.StoredMail | Exception) -> Accepted | BaseException:
    if isinstance(result, Exception):
        return result
    queue_id = ",".join(str(i) for i in result.message_ids) or "0"
    return Accepted(queue_id=queue_id, processing_error="; ".join(result.processing_errors))


def open_store(settings: Settings) -> StoreBatch:
    """In the store process: its logging, its own database engine, and ingest's batch store."""
    configure_logging(settings.worker.log_level)
    # no pre-ping: store_batch tries a batch again on a new connection when its own was lost
    return smtp_store(Database.from_settings(settings, pre_ping=False), settings)
