"""auto_reply_claims: the one-auto-reply-per-period rule decided by the database

Revision ID: 20261130_0002
Revises: 20261122_0001
Create Date: 2026-11-30 10:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_0002"
down_revision: str | Sequence[str] | None = "20261122_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auto_reply_claims",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailboxes.id"], name=op.f("fk_auto_reply_claims_mailbox_id_mailboxes")
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "recipient", name=op.f("pk_auto_reply_claims")),
    )
    op.execute(
        "INSERT INTO auto_reply_claims (mailbox_id, recipient, last_sent_at) "
        "SELECT mailbox_id, recipient, MAX(sent_at) FROM auto_reply_log "
        "GROUP BY mailbox_id, recipient"
    )


def downgrade() -> None:
    op.drop_table("auto_reply_claims")
