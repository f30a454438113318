"""drafts: the TUI composer's unsent answers, one per conversation and user

Revision ID: 20261206_drafts
Revises: 20261130_compose
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_drafts"
down_revision: str | Sequence[str] | None = "20261206_inbound_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("to_addresses", sa.Text(), nullable=False),
        sa.Column("cc_addresses", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name=op.f("fk_drafts_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_drafts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint("conversation_id", "user_id", name=op.f("uq_drafts_conversation_id")),
    )  # fmt: skip
    op.create_index(op.f("ix_drafts_conversation_id"), "drafts", ["conversation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_drafts_conversation_id"), table_name="drafts")
    op.drop_table("drafts")
