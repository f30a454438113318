"""The SMTP server side of ingest (F70): protocol, handler and the group-commit writers.

No database and no services here: a writer is given a `store` callable that stores a whole
batch in one transaction (the worker builds it from services.ingest), and the handler a
`load_aliases` callable. The modules, in the order a mail passes them:

- protocol: HelpdeskSMTP, aiosmtpd's SMTP made fast (commands, data and tables are its parts)
- handler: RCPT decided from the alias cache; DATA handed to a writer, 250 after its commit
- batches: what passes between handler, writer and store (Accepted, StoreBatch, WriterStats)
- thread_writer: GroupCommitWriter, the store in a thread (the TUI's embedded worker)
- process_writer and store_process: ProcessWriter, the store in a process of its own

Why group commit: a durable commit (fsync) per message would cap throughput at the disk's
flush rate. One writer takes everything queued, commits it at once, and only then lets each
session answer 250; concurrent sessions share the cost of one commit. In a thread the store
competes with the SMTP sessions for one core; in a process it gets the second one.
"""
