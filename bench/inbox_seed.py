"""A large helpdesk for the list and search benchmarks, bulk-inserted in well under a minute.

    seed(url, conversations=100_000, messages=1_000_000) -> Seeded

Organisation, users, mailboxes and queues go through the real services; conversations,
messages, tags, reads and attachments are bulk-inserted (sqlite3 executemany, PostgreSQL COPY)
into a database at the revision before full-text search, which is then upgraded to head: so
the search index is built by the migration's backfill, as on a real upgrade.

Bodies are ~40 words drawn from 20,000 made-up words with Zipf frequencies (word of rank r in
about 40/(10.5 r) of the messages): `word(rank)` names a word whose share is known, so the
search benchmark can ask for a common, a medium and a rare one.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database, migrate
from tui_helpdesk.db.models import Mailbox, Queue, User

BEFORE_SEARCH = "20261130_lists"
VOCABULARY = 20_000
BODY_WORDS = 40
AGENTS = 20
MAILBOXES = 10
QUEUES = 5
TAGS = ("billing", "bug", "vip", "refund", "shipping", "login", "api", "legal", "urgent", "sales")
START = datetime(2023, 1, 1, tzinfo=UTC)
SYLLABLES = [a + b for a in "bcdfghjklmnprstvz" for b in "aeiou"]
ATTACHMENT_SHA = hashlib.sha256(b"bench attachment").hexdigest()


@dataclass(frozen=True)
class Seeded:
    conversations: int
    messages: int
    seconds: float  # bulk insert
    backfill_seconds: float  # the search migration on the seeded rows
    admin: str
    agent: str  # a member of one queue
    long_conversation: int  # the conversation with 50 messages
    middle_conversation: int  # one about half way down the open list


def word(rank: int) -> str:
    """The made-up word of this frequency rank (1 = most common)."""
    n, letters = rank - 1, []
    for _ in range(3):
        n, r = divmod(n, len(SYLLABLES))
        letters.append(SYLLABLES[r])
    return "".join(reversed(letters)) + "x"


class Bodies:
    """Zipf-distributed words. Bodies come from a pool of 20,000 drawn once (drawing 40 million
    words would take longer than the whole insert, and 100,000 bodies took ~5 s of a loaded
    machine); each word's share of messages is the same, give or take the draw."""

    POOL = 20_000

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = [word(r) for r in range(1, VOCABULARY + 1)]
        self.cumulative = list(itertools.accumulate(1 / r for r in range(1, VOCABULARY + 1)))
        self.pool = [self.text(BODY_WORDS) for _ in range(self.POOL)]

    def text(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=count))

    def body(self) -> str:
        return self.pool[int(self.rng.random() * self.POOL)]


def seed(url: str, *, conversations: int = 100_000, messages: int = 1_000_000) -> Seeded:
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    db = Database.from_settings(settings)
    try:
        # The services that make the organisation need the current schema; the bulk insert
        # goes in before the search migration, so step down to it after them (what the steps
        # down drop, mailbox verification state and grants, the list benchmarks never read).
        migrate(db.engine)
        people = _setup(db, settings)
        _downgrade(db, BEFORE_SEARCH)
        started = time.perf_counter()
        rows = _Rows(people, conversations, messages, sqlite_time if db.is_sqlite else _same)
        if db.is_sqlite:
            _write_sqlite(db, rows)
        else:
            _write_postgresql(db, rows)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        if db.is_sqlite:
            _upgrade_sqlite(db)
        else:
            _upgrade(db)
        backfill = time.perf_counter() - started
        if not db.is_sqlite:
            # The backfill rewrote every message row: vacuumed now, or autovacuum would work
            # through 1M dead rows on the other core while the TUI is measured. The bench's own
            # tables only: a database-wide VACUUM or ANALYZE locks other schemas' tables (other
            # runs on the same server) and deadlocks with their migrations.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(ANALYZED)}")
        return Seeded(
            conversations=rows.conversation_count, messages=rows.message_count, seconds=seconds,
            backfill_seconds=backfill, admin="ada@bench.test", agent="agent1@bench.test",
            long_conversation=rows.long_conversation, middle_conversation=conversations // 2,
        )  # fmt: skip
    finally:
        db.dispose()


ANALYZED = ("conversations", "messages", "conversation_tags", "conversation_reads", "contacts")


def _upgrade(db: Database, attempts: int = 3) -> None:
    """To head; again after a deadlock (a database-wide ANALYZE of another run on the same
    server can hold locks the migration's DDL needs)."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, attempts + 1):
        try:
            db.migrate()
            return
        except OperationalError as error:
            if "deadlock" not in str(error) or attempt == attempts:
                raise


def _upgrade_sqlite(db: Database) -> None:
    """To head on one connection with the loading pragmas: the search migration's backfill
    writes an index of ~300 MB in one transaction, and through the WAL with SQLite's default
    2 MB page cache it took twice as long as the index building itself (55 s for 1M messages
    on a loaded machine). The same statements, so the same index."""
    from alembic import command

    from tui_helpdesk.db.engine import alembic_config

    db.engine.dispose()  # this connection alone: SQLite leaves WAL mode only then
    with db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        for pragma in LOADING_PRAGMAS:
            raw.execute(pragma)
        with connection.begin():
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        raw.execute("PRAGMA journal_mode=WAL")


def _downgrade(db: Database, revision: str) -> None:
    from alembic import command

    from tui_helpdesk.db.engine import alembic_config

    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@dataclass(frozen=True)
class _People:
    org: int
    admin: int
    agents: list[int]
    mailboxes: list[int]
    queue_of_mailbox: dict[int, int]


def _setup(db: Database, settings: Any) -> _People:
    from tui_helpdesk.services import domains, mailboxes, organisations, queues, users

    with db.write() as session:
        org = organisations.create(session, None, name="Bench", timezone="UTC", language="en")
        admin = users.add(session, None, email="ada@bench.test", name="Ada", role="admin")
        domains.add(session, admin, "bench.test")
        for n in range(1, AGENTS + 1):
            users.add(session, admin, email=f"agent{n}@bench.test", name=f"Agent {n}")
        for n in range(MAILBOXES):
            mailboxes.create(session, settings, admin, display_name=f"Box {n}",
                             local_part=f"box{n}", domain="bench.test", verified=True)  # fmt: skip
        for q in range(QUEUES):
            queues.create(session, admin, name=f"Queue {q}")
            for n in (2 * q, 2 * q + 1):
                queues.add_mailbox(session, settings, admin, f"Queue {q}", f"box{n}@bench.test")
            for n in range(1 + q * 4, 5 + q * 4):
                queues.add_member(session, admin, f"Queue {q}", f"agent{n}@bench.test", "agent")
        agents = list(
            session.scalars(select(User.id).where(User.role == "agent").order_by(User.id))
        )
        boxes = list(session.scalars(select(Mailbox.id).order_by(Mailbox.id)))
        queue_ids = list(session.scalars(select(Queue.id).order_by(Queue.id)))
    queue_of = {box: queue_ids[i // 2] for i, box in enumerate(boxes)}
    return _People(org.id, admin.id, agents, boxes, queue_of)


class _Rows:
    """Every row to insert, generated lazily in id order (ids are given, so no RETURNING)."""

    def __init__(
        self, people: _People, conversations: int, messages: int, stamp: Callable[[datetime], Any]
    ) -> None:
        self.people = people
        self.stamp = stamp
        self.rng = random.Random(9)
        self.bodies = Bodies(self.rng)
        self.conversation_count = conversations
        self.long_conversation = conversations  # the newest: the one an agent opens first
        extra = messages - conversations - 49
        self.sizes = self._sizes(conversations, extra)
        self.message_count = sum(self.sizes)
        self.contacts = max(1, conversations // 5)

    def _sizes(self, conversations: int, extra: int) -> list[int]:
        """Messages per conversation: 1 + a share of `extra`, 50 for the long one."""
        sizes = [1] * conversations
        for _ in range(extra):
            sizes[self.rng.randrange(conversations - 1)] += 1
        sizes[-1] = 50
        return sizes

    def contact_rows(self) -> Iterator[tuple[Any, ...]]:
        for n in range(1, self.contacts + 1):
            yield (
                n,
                self.people.org,
                _contact_email(n),
                f"Customer {n}",
                "",
                *[self.stamp(START)] * 2,
            )

    def conversation_and_message_rows(
        self,
    ) -> tuple[list[tuple[Any, ...]], Iterator[tuple[Any, ...]], list[tuple[Any, ...]]]:
        conversations, tags = [], []
        span = timedelta(days=3 * 365) / self.conversation_count
        for number, size in enumerate(self.sizes, start=1):
            first = START + span * number
            conversations.append(self._conversation(number, size, first))
            for tag in self.rng.sample(TAGS, self.rng.choice((0, 0, 0, 0, 1, 2))):
                tags.append((number, tag))
        return conversations, self._messages(conversations), tags

    def _conversation(self, number: int, size: int, first: datetime) -> tuple[Any, ...]:
        rng, people = self.rng, self.people
        box = rng.choice(people.mailboxes)
        queue = people.queue_of_mailbox[box] if rng.random() < 0.9 else None
        status = rng.choices(("open", "pending", "closed"), weights=(91, 4, 5))[0]
        assignee = rng.choice(people.agents) if rng.random() < 0.7 else None
        last = first + timedelta(hours=size - 1)
        subject = f"{self.bodies.text(4).capitalize()} #{number}"
        contact = 1 + number % self.contacts
        stamp = self.stamp
        return (number, people.org, box, queue, contact, subject, status, "normal", assignee,
                None, stamp(last), None, size, stamp(first), stamp(last), first)  # fmt: skip

    def _messages(self, conversations: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        message_id = 0
        for conversation in conversations:
            number, box, contact, subject, size, first = (
                conversation[0], conversation[2], conversation[4], conversation[5],
                conversation[12], conversation[15],
            )  # fmt: skip
            sender = _contact_email(contact)
            for n in range(size):
                message_id += 1
                inbound = n % 2 == 0
                yield (
                    message_id, number, box, "inbound" if inbound else "outbound",
                    f"<{message_id}@bench.test>", subject if n == 0 else f"Re: {subject}",
                    sender if inbound else f"box{box}@bench.test",
                    f"Customer {contact}" if inbound else "Support",
                    f"box{box}@bench.test" if inbound else sender,
                    self.stamp(first + timedelta(hours=n)), self.bodies.body(),
                    f"{message_id:064x}", 300,  # unique, as a hash; nothing reads the raw
                )  # fmt: skip

    def attachment_rows(self) -> Iterator[tuple[Any, ...]]:
        step = 50  # one message in fifty carries a file
        for n, message in enumerate(range(1, self.message_count + 1, step), start=1):
            yield (n, message, f"file{n}.pdf", "application/pdf", 20, ATTACHMENT_SHA)

    def read_rows(self, conversations: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """The admin has read every other conversation up to its last message."""
        return ((self.people.admin, c[0], c[10]) for c in conversations[::2])


def _contact_email(n: int) -> str:
    return f"customer{n}@client{n % 97}.example"


CONVERSATION_COLUMNS = (
    "id, organisation_id, mailbox_id, queue_id, contact_id, subject, status, priority, "
    "assignee_id, previous_conversation_id, last_message_at, closed_at, message_count, "
    "created_at, updated_at"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, mailbox_id, direction, message_id_header, subject, from_address, "
    "from_name, to_addresses, received_at, text_body, raw_sha256, raw_size"
)
MESSAGE_DEFAULTS = {
    "kind": "mail", "in_reply_to": "", '"references"': "", "cc_addresses": "",
    "envelope_from": "", "envelope_to": "", "date_header": "", "html_body": "",
    "defects": "[]", "auto_submitted": "", "bounce_recipient": "", "processing_error": "",
}  # fmt: skip


def sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DateTime text: naive UTC with microseconds (compared as text)."""
    return value.isoformat(" ", "microseconds")[:26]


def _same(value: datetime) -> datetime:
    return value


BULK_TABLES = ("contacts", "conversations", "messages", "conversation_tags", "attachments",
               "conversation_reads")  # fmt: skip


# No journal while loading: in WAL mode every page was written twice (to the WAL, then by the
# checkpoint); a failed seed is thrown away anyway. Index builds sort in memory.
LOADING_PRAGMAS = ("PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
                   "PRAGMA cache_size=-200000", "PRAGMA temp_store=MEMORY")  # fmt: skip


def _write_sqlite(db: Database, rows: _Rows) -> None:
    """One transaction, without the tables' indexes and triggers (recreated after: sorting once
    is far cheaper than a million random index inserts)."""
    db.engine.dispose()  # this connection alone: SQLite leaves WAL mode only then
    raw = db.engine.raw_connection()
    try:
        connection = raw.driver_connection
        for pragma in LOADING_PRAGMAS:
            connection.execute(pragma)
        connection.execute("PRAGMA foreign_keys=OFF")  # the rows are made consistent
        tables = ", ".join(f"'{t}'" for t in BULK_TABLES)
        schema = connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            f"AND sql IS NOT NULL AND tbl_name IN ({tables})"
        ).fetchall()
        connection.execute("BEGIN")
        for kind, name, _ in schema:
            connection.execute(f"DROP {kind} {name}")
        connection.execute("INSERT INTO blobs (sha256, size, data) VALUES (?, 20, ?)",
                           (ATTACHMENT_SHA, b"x" * 20))  # fmt: skip
        _insert_all(rows, lambda table, columns, values, constants: _sqlite_insert(
            connection, table, columns, values, constants))  # fmt: skip
        for _, _, sql in schema:
            connection.execute(sql)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


Insert = Callable[[str, str, Iterable[Any], dict[str, str] | None], None]


def _insert_all(rows: _Rows, insert: Insert) -> None:
    """insert(table, columns, rows, constants): `constants` are column values shared by
    every row."""
    insert("contacts", "id, organisation_id, email, name, bounce_reason, created_at, updated_at",
           rows.contact_rows(), None)  # fmt: skip
    conversations, messages, tags = rows.conversation_and_message_rows()
    insert("conversations", CONVERSATION_COLUMNS, (c[:15] for c in conversations), None)
    insert("messages", MESSAGE_COLUMNS, messages, MESSAGE_DEFAULTS)
    insert("conversation_tags", "conversation_id, tag", tags, None)
    insert("attachments", "id, message_id, filename, content_type, size, sha256, disposition, "
           "content_id", ((*a, "attachment", "") for a in rows.attachment_rows()),
           None)  # fmt: skip
    read_at = rows.stamp(datetime.now(UTC))
    insert("conversation_reads", "user_id, conversation_id, last_read_message_at, read_at",
           ((*r, read_at) for r in rows.read_rows(conversations)), None)  # fmt: skip


def _sqlite_insert(
    connection: Any, table: str, columns: str, rows: Iterable[Any], constants: dict[str, str] | None
) -> None:
    """Constants go in the statement as literals: a million rows bind 12 values fewer each."""
    marks = ", ".join("?" for _ in columns.split(","))
    if constants:
        columns += ", " + ", ".join(constants)
        marks += ", " + ", ".join(_literal(value) for value in constants.values())
    connection.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _write_postgresql(db: Database, rows: _Rows) -> None:
    """COPY into the tables with their secondary indexes dropped, then rebuilt."""
    raw = db.engine.raw_connection()
    try:
        connection = raw.driver_connection
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
                "current_schema() AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM "
                "pg_constraint c WHERE c.conname = i.indexname)", (list(BULK_TABLES),)
            )  # fmt: skip
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute("INSERT INTO blobs (sha256, size, data) VALUES (%s, 20, %s)",
                           (ATTACHMENT_SHA, b"x" * 20))  # fmt: skip
            # No foreign-key trigger per row (the rows are made consistent), as SQLite's
            # foreign_keys=OFF: two lookups for each of a million messages were half the COPY.
            cursor.execute("SET LOCAL session_replication_role = replica")
            _insert_all(rows, lambda table, columns, values, constants: _copy(
                cursor, table, columns, values, constants))  # fmt: skip
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            for table in ("contacts", "conversations", "messages", "attachments"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")  # fmt: skip
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
        connection.commit()
    finally:
        raw.close()


def _copy(
    cursor: Any, table: str, columns: str, rows: Iterable[Any], constants: dict[str, str] | None
) -> None:
    if constants:
        columns += ", " + ", ".join(constants)
        extra = tuple(constants.values())
        rows = (row + extra for row in rows)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
