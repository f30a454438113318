"""outbox sending: claims with leases, give-up age, webhook jobs; mailbox transports and
webhooks

Revision ID: 20261130_outbox_sending
Revises: 20261130_config_version
Create Date: 2026-11-30 14:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_outbox_sending"
down_revision: str | Sequence[str] | None = "20261130_config_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_COLUMNS = (
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_by", sa.String(length=255), server_default="", nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("url", sa.Text(), server_default="", nullable=False),
    sa.Column("event", sa.String(length=64), server_default="", nullable=False),
    sa.Column("delivery_id", sa.String(length=64), server_default="", nullable=False),
)


def _settings_table(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        *columns,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailboxes.id"], name=op.f(f"fk_{name}_mailbox_id_mailboxes")
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    with op.batch_alter_table("outbox_jobs", schema=None) as batch_op:
        for column in JOB_COLUMNS:
            batch_op.add_column(column)
        batch_op.create_index(batch_op.f("ix_outbox_jobs_message_id"), ["message_id"])
    # a job queued before this revision has waited since it was made
    op.execute("UPDATE outbox_jobs SET queued_at = created_at")
    with op.batch_alter_table("outbox_jobs", schema=None) as batch_op:
        batch_op.alter_column("queued_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    _settings_table(
        "mailbox_transports",
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("password", sa.Text(), nullable=False),
    )
    _settings_table(
        "mailbox_webhooks",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailbox_webhooks")
    op.drop_table("mailbox_transports")
    with op.batch_alter_table("outbox_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_jobs_message_id"))
        for column in reversed(JOB_COLUMNS):
            batch_op.drop_column(column.name)
