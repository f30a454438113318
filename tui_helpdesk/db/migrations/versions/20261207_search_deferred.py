"""PostgreSQL: a message's search vector is computed after the commit, not in the INSERT

Revision ID: 20261207_search_deferred
Revises: 20261206_worker_recent
Create Date: 2026-12-07

`messages.search` stops being a generated column and keeps its values: new rows come in with
NULL, and the worker's search indexer (worker/search_indexer.py, services/search/indexer.py)
fills them right after the commit, in batches and outside any mail's transaction. Computing
the vector in the INSERT was most of PostgreSQL's work per stored message (to_tsvector over
up to 100,000 characters, seven replace() calls, the GIN entry), and the SMTP 250 waited for
it. Until a row is filled, search computes its vector on the fly (services/search/fulltext.py
finds such rows through the partial index added here), so results are the same at every
moment. A change to a searched column sets the vector back to NULL (a trigger), so it is
computed again. SQLite is unchanged: its FTS5 table is kept by triggers.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_search_deferred"
down_revision: str | Sequence[str] | None = "20261206_worker_recent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHED = ("subject", "from_name", "from_address", "to_addresses", "cc_addresses", "text_body")
# The expression of 20261130_search, as it was: for the downgrade (migrations are frozen).
SPLIT = ("@", ".", "/", "_", ":", "<", ">")


def _words(expression: str) -> str:
    for character in SPLIT:
        expression = f"replace({expression}, '{character}', ' ')"
    return f"to_tsvector('simple'::regconfig, {expression})"


SENDER = "from_name || ' ' || from_address"
RECIPIENTS = "to_addresses || ' ' || cc_addresses"
PG_SEARCH = (
    f"setweight({_words(SENDER)}, 'A') || setweight({_words(RECIPIENTS)}, 'B')"
    f" || setweight({_words('subject')}, 'C')"
    f" || setweight({_words('left(text_body, 100000)')}, 'D')"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("ALTER TABLE messages ALTER COLUMN search DROP EXPRESSION")
    op.execute("CREATE INDEX ix_messages_search_pending ON messages (id) WHERE search IS NULL")
    op.execute(
        "CREATE FUNCTION messages_search_stale() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.search := NULL; RETURN NEW; END $$"
    )
    columns = ", ".join(SEARCHED)
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in SEARCHED)
    op.execute(
        f"CREATE TRIGGER messages_search_stale BEFORE UPDATE OF {columns} ON messages "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION messages_search_stale()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP TRIGGER messages_search_stale ON messages")
    op.execute("DROP FUNCTION messages_search_stale()")
    op.execute("DROP INDEX ix_messages_search_pending")
    op.execute("DROP INDEX ix_messages_search")
    op.execute("ALTER TABLE messages DROP COLUMN search")
    op.execute(
        f"ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS ({PG_SEARCH}) STORED"
    )
    op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search)")
