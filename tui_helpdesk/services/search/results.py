"""search(): conversations matching a query, newest first, a page at a time.

With words, hits come in the order of their newest matching message (newest first): the
matching messages of conversations that pass the filters, the negated words and what the
searcher may see are read newest first in growing chunks (FTS5 walks its index backwards by
rowid; PostgreSQL picks the GIN index for rare words and a backward scan of the message ids
for common ones), and reading stops as soon as the page is full. So the first page costs
about what its own hits cost, not what every match of a common word would. With filters
only, hits are conversations by last activity, paged by key like every list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Message
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import (
    ConversationRecord,
    SearchCursor,
    SearchHit,
    SearchPage,
    UserRecord,
)
from tui_helpdesk.services import users
from tui_helpdesk.services.conversations import listing, rows
from tui_helpdesk.services.conversations.visibility import visible
from tui_helpdesk.services.permissions import require_actor
from tui_helpdesk.services.search import filters, fulltext
from tui_helpdesk.services.search.query import ParsedQuery, parse
from tui_helpdesk.services.search.snippets import hit_pattern, snippet

FIRST_CHUNK = 64
FEW = 5000  # PostgreSQL: words expected in fewer messages are read whole from the GIN index
MAX_CHUNK = 8192


def search(
    session: Session,
    actor: UserRecord | None,
    query: str,
    *,
    limit: int = 50,
    after: SearchCursor | None = None,
) -> SearchPage:
    """The first page, or the page after `after` (the `next` of the page before)."""
    actor = require_actor(actor)
    if not 1 <= limit <= listing.MAX_LIMIT:
        raise Invalid(f"limit must be 1-{listing.MAX_LIMIT}, got {limit}", field="limit")
    parsed = parse(query)
    timezone = users.timezone_of(session, actor)
    where = [visible(actor), *filters.conditions(session, actor, parsed.filters, timezone)]
    if parsed.negative:
        where.append(~fulltext.conversation_holds(session, parsed.negative))
    if not parsed.positive:
        return _by_activity(session, actor, where, limit, after)
    return _by_match(session, actor, parsed, where, limit, after)


def _by_activity(
    session: Session,
    actor: UserRecord,
    where: list[ColumnElement[bool]],
    limit: int,
    after: SearchCursor | None,
) -> SearchPage:
    key = after.key if after is not None else None
    page = listing.read_page(session, actor, where, after=key, limit=limit)
    hits = tuple(SearchHit(row, None, "", ()) for row in page.rows)
    more = page.has_older and page.last_key is not None
    return SearchPage(hits, SearchCursor(key=page.last_key) if more else None)


def _by_match(
    session: Session,
    actor: UserRecord,
    parsed: ParsedQuery,
    where: list[ColumnElement[bool]],
    limit: int,
    after: SearchCursor | None,
) -> SearchPage:
    below = after.message_id if after is not None else None
    found = _newest_hits(session, parsed, where, limit + 1, below)
    page = found[:limit]
    records = rows.records_by_id(session, actor, [c for c, _ in page])
    excerpts = _excerpts(session, parsed, [m for _, m in page])
    hits = tuple(_hit(records[c], m, excerpts.get(m, ("", ()))) for c, m in page if c in records)
    more = len(found) > limit and bool(page)
    return SearchPage(hits, SearchCursor(message_id=page[-1][1]) if more else None)


def _hit(
    record: ConversationRecord, message_id: int, excerpt: tuple[str, tuple[tuple[int, int], ...]]
) -> SearchHit:
    return SearchHit(record, message_id, excerpt[0], excerpt[1])


def _newest_hits(
    session: Session,
    parsed: ParsedQuery,
    where: list[ColumnElement[bool]],
    wanted: int,
    below: int | None,
) -> list[tuple[int, int]]:
    """(conversation id, newest matching message id) pairs, newest first, up to `wanted`.

    The filters, negations and visibility are part of the statement, so every chunk read
    holds only hits; a conversation counts once, at its newest match. On a later page
    (`below` set), one that also matched at or above `below` was on an earlier page.
    """
    matches = fulltext.matching_messages(session, parsed.positive)
    hits = matches.join(Conversation, Conversation.id == Message.conversation_id).where(*where)
    if session.get_bind().dialect.name == "postgresql":
        few = _all_if_few(session, matches, where, below)
        if few is not None:
            return few[:wanted]
    found: list[tuple[int, int]] = []
    seen: set[int] = set()
    chunk, cursor = FIRST_CHUNK, below
    while len(found) < wanted:
        batch = _matches_below(session, hits, cursor, chunk)
        fresh = [(c, m) for c, m in dict(reversed(batch)).items() if c not in seen]
        fresh.sort(key=lambda pair: pair[1], reverse=True)
        seen.update(c for c, _ in fresh)
        if below is not None:
            fresh = _not_matched_from(session, matches, fresh, below)
        found.extend(fresh)
        if len(batch) < chunk:
            break
        cursor, chunk = batch[-1][1], min(chunk * 4, MAX_CHUNK)
    return found[:wanted]


def _all_if_few(
    session: Session, matches: Any, where: list[ColumnElement[bool]], below: int | None
) -> list[tuple[int, int]] | None:
    """Every hit, newest first, when the planner expects at most FEW matching messages.

    PostgreSQL serves "newest matches first, LIMIT n" by walking message ids backwards
    until n match: right for common words, slow for rare ones (a rare word is in few
    messages, so the walk is long). For those the matches are read whole from the GIN
    index, unordered, and their conversations checked by id (not joined by a scan).
    """
    message_id = matches.selected_columns.message_id
    limited = matches if below is None else matches.where(message_id < below)
    if _planned_rows(session, limited) > FEW:
        return None
    newest: dict[int, int] = {}
    for conversation_id, ident in session.execute(limited):
        newest[conversation_id] = max(ident, newest.get(conversation_id, 0))
    passing = set(
        session.scalars(select(Conversation.id).where(Conversation.id.in_(newest), *where))
    )
    pairs = sorted(((c, m) for c, m in newest.items() if c in passing), key=lambda p: -p[1])
    return pairs if below is None else _not_matched_from(session, matches, pairs, below)


def _planned_rows(session: Session, statement: Any) -> float:
    """PostgreSQL's own estimate of the rows a statement returns (EXPLAIN, nothing run)."""
    connection = session.connection()
    compiled = statement.compile(connection)
    plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params)
    return float(plan.scalar_one()[0]["Plan"]["Plan Rows"])


def _matches_below(
    session: Session, matches: Any, below: int | None, chunk: int
) -> list[tuple[int, int]]:
    message_id = matches.selected_columns.message_id
    statement = matches.order_by(message_id.desc()).limit(chunk)
    if below is not None:
        statement = statement.where(message_id < below)
    return [(c, m) for c, m in session.execute(statement)]


def _not_matched_from(
    session: Session, matches: Any, pairs: list[tuple[int, int]], below: int
) -> list[tuple[int, int]]:
    """Drop conversations with a match at or above `below` (shown on an earlier page)."""
    if not pairs:
        return pairs
    earlier = matches.where(
        matches.selected_columns.message_id >= below,
        Message.conversation_id.in_([c for c, _ in pairs]),
    ).subquery()
    shown = set(session.scalars(select(earlier.c.conversation_id).distinct()))
    return [pair for pair in pairs if pair[0] not in shown]


def _excerpts(
    session: Session, parsed: ParsedQuery, message_ids: list[int]
) -> dict[int, tuple[str, tuple[tuple[int, int], ...]]]:
    if not message_ids:
        return {}
    pattern = hit_pattern(parsed.positive)
    found = session.execute(
        select(
            Message.id, Message.text_body, Message.subject, Message.from_name,
            Message.from_address, Message.to_addresses, Message.cc_addresses,
        ).where(Message.id.in_(message_ids))
    )  # fmt: skip
    return {ident: snippet(list(texts), pattern) for ident, *texts in found}
