"""change_counter: routing rules and SSH keys are shown on admin screens too (F34, F3)

Revision ID: 20261206_watch_admin
Revises: 20261206_org_autoresponders
Create Date: 2026-12-06 21:55:00

SQLite only, as the first triggers (20261130_lists): a write to these tables bumps the counter
the TUI's change watcher reads, so an open Queues or Team screen reloads when another session
changes a rule or a key. PostgreSQL gets the same through the services' NOTIFY.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261206_watch_admin"
down_revision: str | Sequence[str] | None = "20261206_org_autoresponders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("routing_rules", "user_keys")
EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        for event in EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event}_counts AFTER {event.upper()} ON {table} "
                "BEGIN UPDATE change_counter SET version = version + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER {table}_{event}_counts")
