"""Storing inbound mail (F40, F41, F70, F71, F74, F76): the rules behind the worker's 250.

One SMTP transaction becomes one Message per receiving mailbox, with its exact raw bytes, in a
conversation found by threading or newly routed and assigned. Whatever the bytes are, the mail
is kept: when parsing or storing the parsed parts fails, the raw message is stored with its
error in a conversation of its own, so an agent sees it and nothing is lost. Only database
errors escape, and then the sender is told to retry (451).

Speed (issue 3, point 6): the writer stores a batch of mail per transaction. Configuration
(routing rules, queues and their members, autoresponders) is read once per batch, and new rows
are kept in memory and INSERTed table by table for the whole batch (rows.PendingRows), flushed
early only before a query that could see them (threading, sticky routing, counts, an
auto-reply). The fast attempt uses no savepoints; if anything in it fails, the whole
transaction is rolled back and the batch is stored again carefully, one savepoint per stored
copy, which isolates the failing mail exactly as a per-mail transaction would.

This module holds the entry points and the choice between paths (with their savepoints).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Mailbox
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services.ingest import deliver
from tui_helpdesk.services.ingest.budget import TOO_LONG, Budget, ProcessingTooLong
from tui_helpdesk.services.ingest.prepare import Batch, Setup
from tui_helpdesk.services.ingest.rows import Delivery, row_id

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 3  # attempts of a batch that a concurrent writer's locks aborted
CONFLICT_STATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


@dataclass(frozen=True)
class StoredMail:
    """What store_inbound did: ids of the stored (or already stored) messages.

    duplicate is True when every receiving mailbox already had this exact message (same
    Message-ID and same raw bytes), so nothing new was stored.
    """

    message_ids: tuple[int, ...]
    conversation_ids: tuple[int, ...]
    duplicate: bool
    processing_errors: tuple[str, ...] = ()


# --- the entry points ------------------------------------------------------------------------


def store_inbound(
    session: Session, settings: Settings, mail: InboundMail, parsed: ParsedMessage | None = None
) -> StoredMail:
    """Store one received mail for every mailbox it was addressed to (see module docstring).

    Each mailbox's copy is stored inside a SAVEPOINT: if anything but the database fails, that
    savepoint is rolled back and the raw message is stored with processing_error instead.
    """
    parse_error = ""
    budget = Budget(settings.smtp.processing_budget_seconds)
    if parsed is None:
        parsed, parse_error = _parse(budget, mail.raw)
    batch = Batch(session, settings, careful=True, budget=budget)
    batch.prepare([(mail, parsed)])
    deliveries = _store_mail(batch, mail, parsed, parse_error)
    batch.finish()
    return _stored_mail(deliveries)


def store_batch(
    db: Database, settings: Settings, mails: Sequence[InboundMail], setup: Setup | None = None
) -> list[StoredMail | Exception]:
    """Store a batch in ONE transaction (group commit).

    Parsing happens before the transaction starts (unless the writer parsed already:
    InboundMail.parsed), so the write lock is held only for the database work. The batch is
    first stored without savepoints; when that fails, it is stored again with a SAVEPOINT per
    stored copy, so a mail that fails with a database error is left out (its sender gets 451,
    and retries) while the rest of the batch commits. An error of the connection or of the
    commit propagates.

    A mail over its processing budget (see budget.py) fails the fast attempt too; the careful
    one stores it raw at once, without spending its budget again.

    Two workers on one PostgreSQL can deadlock on the rows both lock (an auto-reply claim,
    a queue, a mailbox); the database then aborts one transaction, and that batch is simply
    stored again (up to CONFLICT_RETRIES times) once the other has committed.

    A connection found lost (the server restarted or dropped it while it idled in the pool)
    costs one more attempt on a new connection, so the store process's engine needs no
    pre-ping round trip per batch (worker.store.open_store). Were the connection lost during
    the COMMIT itself, the batch may have been stored: the next attempt then finds its mails
    as duplicates, as the senders' own retry after a 451 would.

    `setup` carries configuration from one batch to the next (see Setup); the writer's
    `batch_store` keeps one.
    """
    setup = setup or Setup()
    budget = Budget(settings.smtp.processing_budget_seconds)
    parsed = [(m.parsed, "") if m.parsed is not None else _parse(budget, m.raw) for m in mails]
    attempt, reconnected = 1, False
    while True:
        try:
            return _store_once(db, settings, setup, budget, mails, parsed)
        except DBAPIError as exc:
            if exc.connection_invalidated and not reconnected:
                reconnected = True
                log.warning("batch of %d mails lost its connection (%s); again", len(mails), exc)
                continue
            if not _conflict(exc) or attempt >= CONFLICT_RETRIES:
                raise
            attempt += 1
            log.warning("batch of %d mails met a concurrent writer (%s); again", len(mails), exc)


def _store_once(
    db: Database,
    settings: Settings,
    setup: Setup,
    budget: Budget,
    mails: Sequence[InboundMail],
    parsed: Sequence[tuple[ParsedMessage | None, str]],
) -> list[StoredMail | Exception]:
    too_long: set[int] = set()
    try:
        try:
            with db.write() as session:
                batch = Batch(session, settings, careful=False, setup=setup, budget=budget)
                results = _store_all(batch, mails, parsed, too_long)
        except (Exception, ProcessingTooLong) as exc:
            setup.clear()
            if _connection_lost(exc):
                raise
            log.warning("batch of %d mails failed (%s); storing each on its own", len(mails), exc)
            with db.write() as session:
                batch = Batch(session, settings, careful=True, setup=setup, budget=budget)
                results = _store_all(batch, mails, parsed, too_long)
    except BaseException:
        setup.clear()
        raise
    setup.committed()
    return results


def _store_all(
    batch: Batch,
    mails: Sequence[InboundMail],
    parsed: Sequence[tuple[ParsedMessage | None, str]],
    too_long: set[int],
) -> list[StoredMail | Exception]:
    """Every mail of the batch; `too_long` collects (fast) and skips (careful) slow mails."""
    batch.prepare([(mail, p) for mail, (p, _) in zip(mails, parsed, strict=True)])
    outcomes: list[list[Delivery] | Exception] = []
    for index, (mail, (message, parse_error)) in enumerate(zip(mails, parsed, strict=True)):
        if index in too_long:
            parse_error = TOO_LONG
        try:
            outcomes.append(_store_mail(batch, mail, message, parse_error))
        except ProcessingTooLong:  # the fast attempt only: the careful one stores it raw
            too_long.add(index)
            raise
        except Exception as exc:
            if not batch.careful or _connection_lost(exc):
                raise
            log.error("mail from %r not stored: %s", mail.mail_from, exc)
            outcomes.append(exc)
    batch.finish(commit=True)  # PostgreSQL: with the writes (db.write's commit sends nothing)
    if batch.rolled_back:
        batch.setup.clear()
    return [o if isinstance(o, Exception) else _stored_mail(o) for o in outcomes]


def batch_store(
    db: Database, settings: Settings
) -> Callable[[Sequence[InboundMail]], list[StoredMail | Exception]]:
    """store_batch for the worker's writer, keeping the configuration between batches (Setup).

    Call it from one thread at a time, as the writers do.
    """
    setup = Setup()

    def store(mails: Sequence[InboundMail]) -> list[StoredMail | Exception]:
        return store_batch(db, settings, mails, setup)

    return store


def _store_mail(
    batch: Batch, mail: InboundMail, parsed: ParsedMessage | None, parse_error: str
) -> list[Delivery]:
    receiving = batch.receiving(mail.rcpt_tos)
    deliveries = [
        _deliver(batch, mail, parsed, parse_error, mailbox, rcpts)
        for mailbox, rcpts in receiving
        if parsed is None or parse_error or not deliver.binding_test(batch, mail, parsed, mailbox)
    ]
    if not receiving:
        log.warning("mail from %r for %r matched no mailbox", mail.mail_from, mail.rcpt_tos)
    return deliveries


def _stored_mail(deliveries: list[Delivery]) -> StoredMail:
    """The result, once the batch is flushed and every row has its id."""
    return StoredMail(
        message_ids=tuple(row_id(d.message) for d in deliveries),  # type: ignore[misc]
        conversation_ids=tuple(row_id(d.conversation) for d in deliveries),  # type: ignore[misc]
        duplicate=bool(deliveries) and all(d.duplicate for d in deliveries),
        processing_errors=tuple(d.processing_error for d in deliveries if d.processing_error),
    )


def _parse(budget: Budget, raw: bytes) -> tuple[ParsedMessage | None, str]:
    try:
        with budget.limit():
            return parse_message(raw), ""
    except ProcessingTooLong:
        log.warning("parsing a mail of %d bytes took too long; keeping it raw", len(raw))
        return None, TOO_LONG
    except Exception as exc:  # parse_message promises not to raise; if it does, keep the raw
        log.exception("parse_message raised")
        return None, f"parse failed: {type(exc).__name__}: {exc}"


def _conflict(exc: DBAPIError) -> bool:
    """PostgreSQL aborted the transaction for a deadlock or a serialisation failure."""
    return getattr(exc.orig, "sqlstate", None) in CONFLICT_STATES


def _connection_lost(exc: BaseException) -> bool:
    """Errors of the database itself, not of the data: retrying later is the only cure."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _deliver(
    batch: Batch,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    parse_error: str,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> Delivery:
    if parsed is not None and not parse_error:
        if not batch.careful:  # any failure abandons the fast attempt (see store_batch)
            with batch.budget.limit():
                return deliver.store_parsed(batch, mail, parsed, mailbox, rcpts)
        try:
            return _in_savepoint(batch, _within_budget, mail, parsed, mailbox, rcpts)
        except ProcessingTooLong:
            log.warning("mail from %r took too long to process, keeping it raw", mail.mail_from)
            parse_error = TOO_LONG
        except Exception as exc:
            if _connection_lost(exc):
                raise
            log.warning("storing the parsed message failed, keeping it raw: %s", exc)
            parse_error = f"{type(exc).__name__}: {exc}"
    if not batch.careful:
        return deliver.store_raw(batch, mail, parsed, mailbox, rcpts, parse_error)
    return _in_savepoint(batch, deliver.store_raw, mail, parsed, mailbox, rcpts, parse_error)


def _within_budget(batch: Batch, *args: Any) -> Delivery:
    """The parsed path inside its savepoint, the budget around the processing only."""
    with batch.budget.limit():
        return deliver.store_parsed(batch, *args)


def _in_savepoint(batch: Batch, store: Callable[..., Delivery], *args: Any) -> Delivery:
    mark = batch.checkpoint()
    try:
        with batch.session.begin_nested():
            delivery = store(batch, *args)
            batch.flush()
            return delivery
    except BaseException:
        batch.forget_since(mark)
        raise
