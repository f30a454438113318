"""inbound auth (F75): SPF, DKIM and DMARC results per inbound message, checked by a job

Revision ID: 20261206_inbound_auth
Revises: 20261130_compose
Create Date: 2026-12-06 21:30:00

Messages stored before this revision get no row: they were never checked, and the envelope
(client address, HELO) that SPF needs was not kept for them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_inbound_auth"
down_revision: str | Sequence[str] | None = "20261130_compose"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_auth",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("peer_ip", sa.String(length=64), nullable=False),
        sa.Column("helo", sa.Text(), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spf", sa.String(length=16), nullable=False),
        sa.Column("dkim", sa.String(length=16), nullable=False),
        sa.Column("dmarc", sa.String(length=16), nullable=False),
        sa.Column("from_domain", sa.String(length=253), nullable=False),
        sa.Column("spf_domain", sa.String(length=253), nullable=False),
        sa.Column("dkim_domains", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("warning", sa.String(length=16), nullable=False),
        sa.Column("warning_reason", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_auth_message_id_messages"),
            ondelete="CASCADE",  # the check belongs to its message
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_auth")),
    )
    op.create_index("ix_message_auth_due", "message_auth", ["status", "next_attempt_at"])
    op.create_index("ix_message_auth_warning", "message_auth", ["warning"])


def downgrade() -> None:
    op.drop_index("ix_message_auth_warning", table_name="message_auth")
    op.drop_index("ix_message_auth_due", table_name="message_auth")
    op.drop_table("message_auth")
