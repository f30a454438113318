"""config_version: one counter every audited configuration change bumps (issue 11)

Revision ID: 20261130_config_version
Revises: 20261130_user_keys
Create Date: 2026-11-30 11:00:00

Workers on PostgreSQL keep the configuration they read (mailboxes, routing, queues,
autoresponders) from one ingest batch to the next while this number stays the same. It is
bumped in the transaction that changes the configuration, under the row's lock, so the order
of the numbers is the order of the commits (an id of the audit log would not be: a sequence
hands out numbers before the commits that use them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_config_version"
down_revision: str | Sequence[str] | None = "20261130_user_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_version")),
    )
    op.execute("INSERT INTO config_version (id, version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("config_version")
