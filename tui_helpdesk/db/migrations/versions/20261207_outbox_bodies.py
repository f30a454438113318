"""Outbox jobs' bytes in a table of their own, outbox_bodies

Revision ID: 20261207_outbox_bodies
Revises: 20261207_search_deferred
Create Date: 2026-12-07

A job's row is rewritten twice per send (the claim, the result), and SQLite copies a row whole
at each update, its change-counter trigger's OLD and NEW too: with the message's bytes in the
row, a claim cost twice what it does with the bytes apart (bench/outbox.py; 2 KB replies,
~125 µs a job against ~62). The bytes are written once, with the job, and read by the claim.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_outbox_bodies"
down_revision: str | Sequence[str] | None = "20261207_search_deferred"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_bodies",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["outbox_jobs.id"], name=op.f("fk_outbox_bodies_job_id_outbox_jobs")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_outbox_bodies")),
    )
    op.execute(
        "INSERT INTO outbox_bodies (job_id, raw) SELECT id, raw FROM outbox_jobs"
        " WHERE raw IS NOT NULL"
    )
    # A plain DROP COLUMN on SQLite too (3.35 and later): no copy of the table, whose
    # change-counter triggers stay as they are.
    op.execute("ALTER TABLE outbox_jobs DROP COLUMN raw")


def downgrade() -> None:
    op.add_column("outbox_jobs", sa.Column("raw", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE outbox_jobs SET raw = (SELECT raw FROM outbox_bodies"
        " WHERE outbox_bodies.job_id = outbox_jobs.id)"
    )
    op.drop_table("outbox_bodies")
