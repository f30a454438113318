"""F76: each worker's own mail accepted in the last minute and hour, written with its heartbeat.

Revision ID: 20261206_worker_recent
Revises: 20261206_inbound_auth_defaults
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_worker_recent"
down_revision: str | Sequence[str] | None = "20261206_inbound_auth_defaults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("worker_status") as batch:
        batch.add_column(
            sa.Column("accepted_last_minute", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("accepted_last_hour", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("worker_status") as batch:
        batch.drop_column("accepted_last_hour")
        batch.drop_column("accepted_last_minute")
