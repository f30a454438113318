"""Text terms → the database's full-text query, and the messages it finds.

Every term becomes a quoted string of the backend's query syntax, so whatever a person types
(quotes, `*`, NEAR, AND, `:`, parentheses, backslashes) is text to look for, never an operator:
FTS5 strings double their `"`, tsquery strings double `'` and `\\`. Prefix search and the
field a term is limited to are added by us, outside the quotes.

SQLite: the `message_search` FTS5 table (columns as in the messages table). PostgreSQL: the
`messages.search` tsvector, with weights A = sender, B = recipients, C = subject, D = body;
the characters the index splits at (@ . / _ : < >) are split here too, so "acme.test" finds the
words "acme" and "test" wherever the index put them. Both were created by the migration
20261130_search. Since 20261207_search_deferred a PostgreSQL row's vector is filled after the
commit (indexer.py); until then it is NULL, and the query computes it for that row: every
condition here is `search @@ q OR (search IS NULL AND <its vector> @@ q)`, the NULL rows found
by a partial index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Message
from tui_helpdesk.services.search.query import Term

SQLITE_COLUMNS = {
    "from": "{from_name from_address}",
    "to": "{to_addresses cc_addresses}",
}
PG_WEIGHTS = {"from": "A", "to": "B"}
PG_SPLIT = str.maketrans({c: " " for c in "@./_:<>"})
_FTS = table("message_search", literal_column("rowid"))
PG_BODY_LIMIT = 100_000  # characters of a body indexed (a tsvector holds at most 1 MB)


def pg_vector(row: str) -> str:
    """SQL of a PostgreSQL message row's search vector (`row`: the table's name or alias).

    The same expression as the migration 20261130_search's generated column was, so vectors
    filled by the indexer equal the ones computed before. translate() would do the seven
    replace() calls in one, but measured slower on PostgreSQL 15.
    """

    def words(expression: str) -> str:
        for character in "@./_:<>":
            expression = f"replace({expression}, '{character}', ' ')"
        return f"to_tsvector('simple'::regconfig, {expression})"

    sender = f"{row}.from_name || ' ' || {row}.from_address"
    recipients = f"{row}.to_addresses || ' ' || {row}.cc_addresses"
    body = f"left({row}.text_body, {PG_BODY_LIMIT})"
    return (
        f"setweight({words(sender)}, 'A') || setweight({words(recipients)}, 'B')"
        f" || setweight({words(row + '.subject')}, 'C') || setweight({words(body)}, 'D')"
    )


def _pg_holds(row: str, tsquery: Any) -> ColumnElement[bool]:
    """The row's stored vector matches, or it has none yet and its computed one does."""
    stored = literal_column(f"{row}.search")
    return or_(
        stored.op("@@")(tsquery),
        and_(stored.is_(None), literal_column(pg_vector(row)).op("@@")(tsquery)),
    )


def sqlite_match(terms: tuple[Term, ...], *, any_of: bool = False) -> str:
    """An FTS5 MATCH expression: all terms (implicit AND), or any of them."""
    parts = []
    for term in terms:
        quoted = '"' + term.text.replace('"', '""') + '"' + (" *" if term.prefix else "")
        column = SQLITE_COLUMNS.get(term.field or "")
        parts.append(f"{column} : {quoted}" if column else quoted)
    return (" OR " if any_of else " ").join(parts)


def postgresql_query(terms: tuple[Term, ...], *, any_of: bool = False) -> str:
    """A to_tsquery('simple', …) string: all terms (&), or any of them (|)."""
    parts = []
    for term in terms:
        words = term.text.translate(PG_SPLIT).replace("\\", "\\\\").replace("'", "''")
        label = ("*" if term.prefix else "") + PG_WEIGHTS.get(term.field or "", "")
        parts.append(f"'{words}'" + (f":{label}" if label else ""))
    return (" | " if any_of else " & ").join(parts)


def matching_messages(
    session: Session, terms: tuple[Term, ...], *, any_of: bool = False
) -> Select[Any]:
    """SELECT conversation_id, message_id of the messages that hold the terms (all, or any_of).

    Order by, or compare, `selected_columns.message_id`: on SQLite it is the FTS5 rowid, so
    the index itself walks newest first and stops at the LIMIT.
    """
    if session.get_bind().dialect.name == "postgresql":
        tsquery = func.to_tsquery(
            literal_column("'simple'::regconfig"), postgresql_query(terms, any_of=any_of)
        )
        return select(Message.conversation_id, Message.id.label("message_id")).where(
            _pg_holds("messages", tsquery)
        )
    match = literal_column("message_search").match(sqlite_match(terms, any_of=any_of))
    return (
        select(Message.conversation_id, _FTS.c.rowid.label("message_id"))
        .select_from(_FTS)
        .join(Message, Message.id == _FTS.c.rowid)
        .where(match)
    )


def conversation_holds(session: Session, terms: tuple[Term, ...]) -> ColumnElement[bool]:
    """EXISTS a message of the (outer) conversation holding any of the terms.

    Correlated on purpose: it is checked for the conversations a page looks at, each by
    its own messages (index on conversation_id, then a seek in the full-text index), never
    by collecting every match of a common word. Its tables are aliased, as the outer
    statement may read messages and the index too.
    """
    held = Message.__table__.alias("held")
    if session.get_bind().dialect.name == "postgresql":
        tsquery = func.to_tsquery(
            literal_column("'simple'::regconfig"), postgresql_query(terms, any_of=True)
        )
        inner = select(held.c.id).where(_pg_holds("held", tsquery))
    else:
        index = _FTS.alias("held_search")
        match = literal_column("held_search.message_search").match(sqlite_match(terms, any_of=True))
        inner = select(held.c.id).join(index, index.c.rowid == held.c.id).where(match)
    return exists(inner.where(held.c.conversation_id == Conversation.id).correlate(Conversation))
