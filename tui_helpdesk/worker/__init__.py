"""The worker (F70, F73, F75, F76): what runs beside the database, headless or in the TUI.

runtime       the SMTP server, the store process and the heartbeat on one event loop;
              `tui-helpdesk worker` (run_worker) and the TUI's EmbeddedWorker
store         ingest's batch store as the writers call it; the store process's start
logs          the log format of every worker process
sender        the outbox sender: due jobs claimed under a lease, sent over reused connections
auth_checker  SPF, DKIM and DMARC of each stored message, after its commit
search_indexer  PostgreSQL: the search vectors of new messages, after their commit
control       systemd notifications, SIGHUP reload, drain on SIGTERM
systemd       sd_notify with the standard library
"""
