"""stats: conversations by creation and by close time, for the stats screen's period (F60)

Covering indexes: the period's medians, daily series and today's counts read index ranges
only, instead of scanning every conversation.

Revision ID: 20261206_stats_indexes
Revises: 20261206_watch_admin
Create Date: 2026-12-06 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261206_stats_indexes"
down_revision: str | Sequence[str] | None = "20261206_watch_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATED = ["organisation_id", "created_at", "queue_id", "assignee_id", "status", "closed_at"]
CLOSED = ["organisation_id", "closed_at", "status", "queue_id", "assignee_id", "created_at"]


def upgrade() -> None:
    op.create_index("ix_conversations_org_created", "conversations", CREATED)
    op.create_index("ix_conversations_org_closed", "conversations", CLOSED)


def downgrade() -> None:
    op.drop_index("ix_conversations_org_closed", table_name="conversations")
    op.drop_index("ix_conversations_org_created", table_name="conversations")
