"""inbound auth: server defaults, so ingest inserts only the envelope of a check

Revision ID: 20261206_inbound_auth_defaults
Revises: 20261206_org_autoresponders
Create Date: 2026-12-06 22:10:00

Ingest queues a check per received mail in the transaction of the 250; giving every column a
server default lets that INSERT carry five values instead of twenty (bench/ingest.py), and
`details` is NULL until the check ran. On SQLite the table is copied (batch mode); it has no
triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_inbound_auth_defaults"
down_revision: str | Sequence[str] | None = "20261206_stats_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULTS = (
    ("status", sa.String(length=16), "queued"),
    ("peer_ip", sa.String(length=64), ""),
    ("helo", sa.Text(), ""),
    ("mail_from", sa.Text(), ""),
    ("attempts", sa.Integer(), "0"),
    ("claimed_by", sa.String(length=255), ""),
    ("spf", sa.String(length=16), ""),
    ("dkim", sa.String(length=16), ""),
    ("dmarc", sa.String(length=16), ""),
    ("from_domain", sa.String(length=253), ""),
    ("spf_domain", sa.String(length=253), ""),
    ("dkim_domains", sa.Text(), ""),
    ("explanation", sa.Text(), ""),
    ("warning", sa.String(length=16), "none"),
    ("warning_reason", sa.Text(), ""),
)


def upgrade() -> None:
    with op.batch_alter_table("message_auth", schema=None) as batch_op:
        for name, type_, default in DEFAULTS:
            batch_op.alter_column(name, existing_type=type_, server_default=default)
        batch_op.alter_column("details", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE message_auth SET details = '{}' WHERE details IS NULL")
    with op.batch_alter_table("message_auth", schema=None) as batch_op:
        batch_op.alter_column("details", existing_type=sa.JSON(), nullable=False)
        for name, type_, _default in DEFAULTS:
            batch_op.alter_column(name, existing_type=type_, server_default=None)
