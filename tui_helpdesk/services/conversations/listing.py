"""Pages of a conversation list by key (issue 9): newest first, whatever the depth, in one range.

A page is asked for relative to a row's key (last_message_at, id): the rows older than it
(`page_after`), newer than it (`page_before`), the first or last page, or the page around a
conversation (`page_containing`, so a cursor stays on its conversation after a live update).
Each is one index range of the view's index, LIMIT n + 1, with a one-row probe for whether
rows lie beyond: no OFFSET, so row 90,000 costs what row 1 does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, true, tuple_
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import (
    ConversationPage,
    ConversationRecord,
    ConversationView,
    ListKey,
    UserRecord,
)
from tui_helpdesk.services.conversations import rows, views
from tui_helpdesk.services.conversations.visibility import visible

MAX_LIMIT = 1000
_NEWEST_FIRST = (Conversation.last_message_at.desc(), Conversation.id.desc())
_OLDEST_FIRST = (Conversation.last_message_at.asc(), Conversation.id.asc())


def _sort_key() -> Any:
    return tuple_(Conversation.last_message_at, Conversation.id)


Where = list[ColumnElement[bool]]


def older_than(key: ListKey) -> ColumnElement[bool]:
    return _sort_key() < tuple_(key.last_message_at, key.id)


def newer_than(key: ListKey) -> ColumnElement[bool]:
    return _sort_key() > tuple_(key.last_message_at, key.id)


def at_or_older(key: ListKey) -> ColumnElement[bool]:
    return _sort_key() <= tuple_(key.last_message_at, key.id)


def _check(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be 1-{MAX_LIMIT}, got {limit}", field="limit")
    return limit


def page_query(actor: UserRecord, where: Where, *, newest_first: bool, limit: int) -> Any:
    """The statement of one page: the rows of `where` the actor may see, in list order."""
    return (
        rows.row_query(actor)
        .where(visible(actor), *where)
        .order_by(*(_NEWEST_FIRST if newest_first else _OLDEST_FIRST))
        .limit(limit)
    )


def first_page_query(actor: UserRecord, view: ConversationView, *, limit: int) -> Any:
    """The statement `first_page` runs (limit + 1 rows: the last says whether more follow)."""
    return page_query(actor, views.conditions(actor, view), newest_first=True, limit=limit + 1)


def _read(
    session: Session, actor: UserRecord, where: Where, *, newest_first: bool, limit: int
) -> list[ConversationRecord]:
    query = page_query(actor, where, newest_first=newest_first, limit=limit)
    found = [rows.to_record(row) for row in session.execute(query)]
    return found if newest_first else found[::-1]


def _exists(session: Session, actor: UserRecord, where: Where) -> bool:
    query = select(true()).select_from(Conversation).where(visible(actor), *where).limit(1)
    return session.scalar(query) is not None


def read_page(
    session: Session,
    actor: UserRecord,
    where: Where,
    *,
    after: ListKey | None = None,
    before: ListKey | None = None,
    limit: int = 50,
    probe_newer: bool = True,
) -> ConversationPage:
    """Rows matching `where` (visibility is added here): after a key, before one, or first.

    probe_newer=False spares the one-row query for `has_newer` of a page after a key (a
    caller paging down from a row it shows knows there are; has_newer is then True)."""
    _check(limit)
    if after is not None and before is not None:
        raise Invalid("give a key to page after or before, not both", field="key")
    if before is not None:
        found = _read(session, actor, [*where, newer_than(before)], newest_first=False,
                      limit=limit + 1)  # fmt: skip
        has_newer, found = len(found) > limit, found[-limit:]
        has_older = _exists(
            session, actor, [*where, older_than(found[-1].key if found else before)]
        )
        return ConversationPage(tuple(found), has_newer=has_newer, has_older=has_older)
    extra = [older_than(after)] if after is not None else []
    found = _read(session, actor, [*where, *extra], newest_first=True, limit=limit + 1)
    has_older, found = len(found) > limit, found[:limit]
    has_newer = after is not None and (
        not probe_newer
        or _exists(session, actor, [*where, newer_than(found[0].key if found else after)])
    )
    return ConversationPage(tuple(found), has_newer=has_newer, has_older=has_older)


def first_page(
    session: Session, actor: UserRecord, view: ConversationView, *, limit: int = 50
) -> ConversationPage:
    return read_page(session, actor, views.conditions(actor, view), limit=limit)


def page_after(
    session: Session,
    actor: UserRecord,
    view: ConversationView,
    key: ListKey,
    *,
    limit: int = 50,
    probe_newer: bool = True,
) -> ConversationPage:
    """The next page down: rows older than `key` (the last row of the page on screen)."""
    where = views.conditions(actor, view)
    return read_page(session, actor, where, after=key, limit=limit, probe_newer=probe_newer)


def page_before(
    session: Session, actor: UserRecord, view: ConversationView, key: ListKey, *, limit: int = 50
) -> ConversationPage:
    """The next page up: rows newer than `key` (the first row of the page on screen)."""
    return read_page(session, actor, views.conditions(actor, view), before=key, limit=limit)


def last_page(
    session: Session, actor: UserRecord, view: ConversationView, *, limit: int = 50
) -> ConversationPage:
    """The oldest rows, read from the other end of the same index."""
    _check(limit)
    where = views.conditions(actor, view)
    found = _read(session, actor, where, newest_first=False, limit=limit + 1)
    return ConversationPage(tuple(found[-limit:]), has_newer=len(found) > limit, has_older=False)


def key_of(
    session: Session, actor: UserRecord, view: ConversationView, conversation_id: int
) -> ListKey | None:
    """The conversation's key, if it is in the view now."""
    where = views.conditions(actor, view)
    found = session.execute(
        select(Conversation.last_message_at, Conversation.id).where(
            visible(actor), Conversation.id == conversation_id, *where
        )
    ).first()
    return ListKey(*found) if found is not None else None


def page_containing(
    session: Session,
    actor: UserRecord,
    view: ConversationView,
    conversation_id: int,
    *,
    limit: int = 50,
    fallback: ListKey | None = None,
) -> ConversationPage:
    """A page with the conversation in its middle, `anchor` its index in the rows.

    When it left the view (closed, reassigned), the page is around `fallback` (its key as
    last shown) and `anchor` is the row now in its place; with neither, the first page.
    """
    _check(limit)
    where = views.conditions(actor, view)
    key = key_of(session, actor, view, conversation_id) or fallback
    if key is None:
        page = read_page(session, actor, where, limit=limit)
        return ConversationPage(page.rows, page.has_newer, page.has_older, anchor=None)
    half = limit // 2
    newer = _read(session, actor, [*where, newer_than(key)], newest_first=False, limit=half + 1)
    has_newer, newer = len(newer) > half, newer[len(newer) - half :] if half else []
    room = limit - len(newer)
    older = _read(session, actor, [*where, at_or_older(key)], newest_first=True, limit=room + 1)
    has_older, older = len(older) > room, older[:room]
    if has_newer and len(older) < room:  # the end of the list: fill the page from above
        need = room - len(older)
        top = newer[0].key if newer else key
        more = _read(session, actor, [*where, newer_than(top)], newest_first=False,
                     limit=need + 1)  # fmt: skip
        has_newer, newer = len(more) > need, more[-need:] + newer
    anchor = len(newer) if older else None
    return ConversationPage(tuple(newer + older), has_newer, has_older, anchor=anchor)


def key_at(
    session: Session,
    actor: UserRecord,
    view: ConversationView,
    *,
    skip: int,
    after: ListKey | None = None,
    before: ListKey | None = None,
    from_end: bool = False,
) -> ListKey | None:
    """The key `skip` rows on from a place: past `after` (downwards), past `before` (upwards),
    from the newest row, or from the oldest with from_end (skip 0 = the first row there).

    For a jump to where no page's key is at hand (a scroll bar dragged): it walks `skip`
    entries of the view's index and reads no table row, so walk from the nearest known key.
    """
    if skip < 0:
        raise Invalid("skip must not be negative", field="skip")
    where = [visible(actor), *views.conditions(actor, view)]
    upwards = before is not None or (from_end and after is None)
    if after is not None:
        where.append(older_than(after))
    if before is not None:
        where.append(newer_than(before))
    query = (
        select(Conversation.last_message_at, Conversation.id)
        .where(*where)
        .order_by(*(_OLDEST_FIRST if upwards else _NEWEST_FIRST))
        .offset(skip)
        .limit(1)
    )
    found = session.execute(query).first()
    return ListKey(*found) if found is not None else None


def position(session: Session, actor: UserRecord, view: ConversationView, key: ListKey) -> int:
    """How many rows of the view come before `key`: a count of that many index entries,
    so only for a position shown now and then ("row 1,234 of 5,000"), not per page."""
    where = views.conditions(actor, view)
    query = (
        select(func.count())
        .select_from(Conversation)
        .where(visible(actor), *where, newer_than(key))
    )
    return session.scalar(query) or 0


def list_conversations(
    session: Session,
    actor: UserRecord,
    *,
    status: str | None = None,
    queue: str | None = None,
    mailbox: str | None = None,
    limit: int | None = 50,
) -> list[ConversationRecord]:
    """Newest first, filtered by names (the CLI); limit None reads every row."""
    where = views.by_names(session, actor, status=status, queue=queue, mailbox=mailbox)
    query: Any = rows.row_query(actor).where(visible(actor), *where).order_by(*_NEWEST_FIRST)
    if limit is not None:
        query = query.limit(_check(limit))
    return [rows.to_record(row) for row in session.execute(query)]
