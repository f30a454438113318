"""composing: mailbox verification and binding tests, signatures, close notices, sender
restrictions and private mailboxes

Revision ID: 20261130_compose
Revises: 20261130_search
Create Date: 2026-11-30 18:00:00

Mailboxes that exist already have been sending all along: they count as verified from the day
they were made. Columns are added and dropped with plain ALTER TABLE (SQLite >= 3.35), not a
batch copy: recreating `mailboxes` would trip the foreign keys pointing at it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_compose"
down_revision: str | Sequence[str] | None = "20261130_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAILBOX_COLUMNS = (
    sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("binding_checked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column("signature_text", sa.Text(), server_default="", nullable=False),
    sa.Column("signature_html", sa.Text(), server_default="", nullable=False),
    sa.Column("close_notice_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column("close_notice_text", sa.Text(), server_default="", nullable=False),
)


def _mailbox_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["mailbox_id"], ["mailboxes.id"], name=op.f(f"fk_{table}_mailbox_id_mailboxes")
    )


def _user_list(table: str) -> None:
    op.create_table(
        table,
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _mailbox_fk(table),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users")),
        sa.PrimaryKeyConstraint("mailbox_id", "user_id", name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    for column in MAILBOX_COLUMNS:
        op.add_column("mailboxes", column)
    op.execute("UPDATE mailboxes SET verified_at = created_at")
    op.create_table(
        "mailbox_verifications",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        _mailbox_fk("mailbox_verifications"),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_mailbox_verifications")),
    )
    op.create_table(
        "mailbox_binding_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        _mailbox_fk("mailbox_binding_tests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_binding_tests")),
        sa.UniqueConstraint("token", name=op.f("uq_mailbox_binding_tests_token")),
    )
    op.create_index("ix_mailbox_binding_tests_mailbox_id", "mailbox_binding_tests", ["mailbox_id"])
    _user_list("mailbox_senders")
    _user_list("mailbox_grants")
    op.create_index("ix_mailbox_grants_user_id", "mailbox_grants", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_mailbox_grants_user_id", table_name="mailbox_grants")
    op.drop_table("mailbox_grants")
    op.drop_table("mailbox_senders")
    op.drop_index("ix_mailbox_binding_tests_mailbox_id", table_name="mailbox_binding_tests")
    op.drop_table("mailbox_binding_tests")
    op.drop_table("mailbox_verifications")
    for column in reversed(MAILBOX_COLUMNS):
        op.execute(f"ALTER TABLE mailboxes DROP COLUMN {column.name}")
