"""conversation lists: keyset indexes, per-user reads, user timezone, SQLite change counter

Revision ID: 20261130_lists
Revises: 20261130_outbox_sending
Create Date: 2026-11-30

Lists are read newest first (last_message_at DESC, id DESC) one page at a time by key, so every
sidebar view has an index whose columns are the view's filter followed by exactly that order,
then the other columns visibility looks at: a page is a short range of one index, whatever its
depth, and a count reads no table row. They replace the single-column indexes.

On SQLite a one-row counter, bumped by triggers on every table a screen shows, lets the change
watcher tell a commit that matters from the worker's heartbeat with one read.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_lists"
down_revision: str | Sequence[str] | None = "20261130_outbox_sending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYSET = ["last_message_at", "id"]
# Who may see a row (services/conversations/visibility.py) is decided by these columns: every
# list index carries all of them, so a page or a count never reads the table for a filter.
FILTERED = ["organisation_id", "status", "assignee_id", "queue_id", "mailbox_id"]
# (new index, its leading filter columns, the index it replaces, that index's columns)
VIEW_INDEXES = [
    ("ix_conversations_org_status_last", ["organisation_id", "status"],
     "ix_conversations_organisation_id", ["organisation_id"]),
    ("ix_conversations_assignee_status_last", ["organisation_id", "assignee_id", "status"],
     "ix_conversations_assignee_id", ["assignee_id"]),
    ("ix_conversations_queue_status_last", ["organisation_id", "queue_id", "status"],
     "ix_conversations_queue_id", ["queue_id"]),
    ("ix_conversations_mailbox_status_last", ["organisation_id", "mailbox_id", "status"],
     "ix_conversations_mailbox_id", ["mailbox_id"]),
    ("ix_conversations_org_last", ["organisation_id"],
     "ix_conversations_status_last", ["status", "last_message_at"]),
]  # fmt: skip


def index_columns(leading: list[str]) -> list[str]:
    return [*leading, *KEYSET, *(c for c in FILTERED if c not in leading)]


# Tables whose rows some screen shows: a write to them is a change worth a reload.
WATCHED_TABLES = [
    "conversations", "messages", "conversation_tags", "conversation_reads", "users",
    "mailboxes", "queues", "queue_mailboxes", "queue_members", "outbox_jobs",
]  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    _create_reads()
    for name, columns, replaced, _ in VIEW_INDEXES:
        op.drop_index(replaced, table_name="conversations")
        op.create_index(name, "conversations", index_columns(columns))
    op.create_index("ix_conversation_tags_tag", "conversation_tags", ["tag", "conversation_id"])
    if op.get_bind().dialect.name == "sqlite":
        _create_change_counter()


def _create_reads() -> None:
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("last_read_message_id", sa.Integer(), nullable=True),
        sa.Column("last_read_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_conversation_reads_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_reads_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("user_id", "conversation_id", name=op.f("pk_conversation_reads")),
    )
    op.create_index(
        "ix_conversation_reads_conversation_id", "conversation_reads", ["conversation_id"]
    )


def _create_change_counter() -> None:
    op.execute("CREATE TABLE change_counter (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    op.execute("INSERT INTO change_counter (id, version) VALUES (1, 0)")
    for table in WATCHED_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_counts AFTER {event} ON {table} "
                "BEGIN UPDATE change_counter SET version = version + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{event}_counts")
        op.execute("DROP TABLE change_counter")
    op.drop_index("ix_conversation_tags_tag", table_name="conversation_tags")
    for name, _, replaced, replaced_columns in reversed(VIEW_INDEXES):
        op.drop_index(name, table_name="conversations")
        op.create_index(replaced, "conversations", replaced_columns)
    op.drop_table("conversation_reads")
    # Not batch: recreating `users` on SQLite would trip its foreign keys (SQLite >= 3.35).
    op.execute("ALTER TABLE users DROP COLUMN timezone")
