"""The outbox (F73): every outgoing mail is a durable job, queued inside the transaction that
decided to send it and sent later by a worker's sender. The modules, in the order a job
lives through them:

- queue: enqueue, the one way a job is made (replies, new mail, auto-replies, notices,
  verification codes, test mails, webhook deliveries)
- claim: a sender takes due jobs under a lease (SKIP LOCKED on PostgreSQL), with what it
  needs to send them
- results: sent, retried with backoff, or failed with the server's answer
- jobs: the list, `outbox retry`, and the delivery state a conversation shows
"""

from tui_helpdesk.services.outbox.claim import ClaimedJob, any_due, claim, release, renew
from tui_helpdesk.services.outbox.jobs import delivery_states, list_jobs, retry_job
from tui_helpdesk.services.outbox.queue import KINDS, enqueue
from tui_helpdesk.services.outbox.results import (
    JobResult,
    backoff_seconds,
    record,
    result_statements,
)

__all__ = [
    "KINDS",
    "ClaimedJob",
    "JobResult",
    "any_due",
    "backoff_seconds",
    "claim",
    "delivery_states",
    "enqueue",
    "list_jobs",
    "record",
    "release",
    "renew",
    "result_statements",
    "retry_job",
]
