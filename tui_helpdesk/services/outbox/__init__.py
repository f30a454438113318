"""The outbox (F73): every outgoing mail is a durable job, queued inside the transaction that
decided to send it and sent later by the worker.

- queue: enqueue, the one way a job is made (replies, new mail, auto-replies, notices)
"""

from tui_helpdesk.services.outbox.queue import enqueue

__all__ = ["enqueue"]
