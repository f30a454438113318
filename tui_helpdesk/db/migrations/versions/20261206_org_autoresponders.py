"""organisations: a switch that turns every autoresponder of the organisation off (F19)

Revision ID: 20261206_org_autoresponders
Revises: 20261130_compose
Create Date: 2026-12-06 21:30:00

On by default, so existing organisations keep answering as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_org_autoresponders"
down_revision: str | Sequence[str] | None = "20261206_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "organisations",
        sa.Column("autoresponders_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("organisations", "autoresponders_enabled")
