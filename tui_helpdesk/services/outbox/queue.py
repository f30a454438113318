"""Making outbox jobs: the one way any service queues mail to send (F73).

The job holds the exact bytes to send, built when it is made, so its Message-ID is fixed from
then on: a retry sends the same message, and a customer's reply threads to it whatever
happened to the job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, OutboxBody, OutboxJob

KINDS = ("reply", "forward", "new", "auto_reply", "notice", "verification", "test", "webhook")


def enqueue(
    session: Session,
    *,
    mailbox: Mailbox,
    kind: str,
    mail_from: str,
    rcpt_to: list[str],
    raw: bytes,
    not_before: datetime,
    conversation_id: int | None = None,
    message_id: int | None = None,
    url: str = "",
    event: str = "",
    delivery_id: str = "",
) -> OutboxJob:
    """Queue `raw` for sending from `mailbox` once `not_before` has passed; returns the job.

    A webhook job (kind "webhook", made by services.webhooks) carries its JSON body as `raw`,
    the receiver's `url`, its `event` and the `delivery_id` receivers dedupe on.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown outbox job kind {kind!r}")
    job = OutboxJob(
        organisation_id=mailbox.organisation_id,
        mailbox_id=mailbox.id,
        conversation_id=conversation_id,
        message_id=message_id,
        kind=kind,
        status="queued",
        mail_from=mail_from,
        rcpt_to=list(rcpt_to),
        body=OutboxBody(raw=raw),
        next_attempt_at=not_before,
        queued_at=not_before,
        url=url,
        event=event,
        delivery_id=delivery_id,
    )
    session.add(job)
    return job
