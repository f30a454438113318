"""full-text search over messages: SQLite FTS5, PostgreSQL tsvector + GIN; existing rows indexed

Revision ID: 20261130_search
Revises: 20261130_lists
Create Date: 2026-11-30

The index follows the messages table by itself, whoever writes it (ingest's bulk INSERTs,
sending, tests): on SQLite an external-content FTS5 table kept by triggers on messages; on
PostgreSQL a generated column. Both split words at ASCII punctuation and spaces, fold case and
keep accents, so a query finds the same messages on either backend. Columns and weights:
sender (from name and address, PostgreSQL weight A), recipients (To and Cc, B), subject (C),
body (D). PostgreSQL indexes the first 100,000 characters of a body (a tsvector holds at most
1 MB); SQLite indexes all of it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261130_search"
down_revision: str | Sequence[str] | None = "20261130_lists"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_COLUMNS = ["subject", "from_name", "from_address", "to_addresses", "cc_addresses", "text_body"]
# PostgreSQL's parser keeps addresses, hosts and paths whole and drops <...> as a tag (with the
# address in "Name <a@b>"): split there first, as SQLite's tokenizer does.
SPLIT = ("@", ".", "/", "_", ":", "<", ">")
BODY_LIMIT = 100_000


def _words(expression: str) -> str:
    for character in SPLIT:
        expression = f"replace({expression}, '{character}', ' ')"
    return f"to_tsvector('simple'::regconfig, {expression})"


SENDER = "from_name || ' ' || from_address"
RECIPIENTS = "to_addresses || ' ' || cc_addresses"
PG_SEARCH = (
    f"setweight({_words(SENDER)}, 'A') || setweight({_words(RECIPIENTS)}, 'B')"
    f" || setweight({_words('subject')}, 'C')"
    f" || setweight({_words(f'left(text_body, {BODY_LIMIT})')}, 'D')"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _create_fts5()
    else:
        op.execute(
            f"ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS ({PG_SEARCH}) "
            "STORED"
        )
        op.execute("SET LOCAL maintenance_work_mem = '256MB'")  # builds the index ~20% faster
        op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search)")


def _create_fts5() -> None:
    columns = ", ".join(FTS_COLUMNS)
    op.execute(
        f"CREATE VIRTUAL TABLE message_search USING fts5({columns}, content='messages', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
    )
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    insert = f"INSERT INTO message_search (rowid, {columns}) VALUES (new.id, {new});"
    delete = (
        f"INSERT INTO message_search (message_search, rowid, {columns}) "
        f"VALUES ('delete', old.id, {old});"
    )
    op.execute(f"CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN {delete} END")
    op.execute(
        f"CREATE TRIGGER messages_search_update AFTER UPDATE OF {columns} ON messages "
        f"BEGIN {delete} {insert} END"
    )
    op.execute("INSERT INTO message_search (message_search) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER messages_search_{trigger}")
        op.execute("DROP TABLE message_search")
    else:
        op.execute("DROP INDEX ix_messages_search")
        op.execute("ALTER TABLE messages DROP COLUMN search")
