"""worker/libpq_results.py: the sender's results written with libpq on a real PostgreSQL.

The sending tests run it end to end (test_sender, test_outbox_workers on PostgreSQL); these
check what they cannot easily reach: parameters in text form, a refused statement, a
transaction of several, and a connection the server dropped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from tui_helpdesk.db.engine import Database
from tui_helpdesk.smtp.protocol import new_event_loop
from tui_helpdesk.worker.libpq_results import LibpqResults, as_text, numbered

pytestmark = pytest.mark.postgresql_only

INSERT = "INSERT INTO libpq_probe (id, name, at) VALUES (%(id)s, %(name)s, %(at)s)"


@pytest.fixture
def probe(db: Database) -> Database:
    """The test database with a table of its own to write into."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS libpq_probe")
        connection.exec_driver_sql(
            "CREATE TABLE libpq_probe (id integer PRIMARY KEY, name text NOT NULL, at timestamptz)"
        )
    return db


def test_named_parameters_are_numbered_in_order_of_first_use() -> None:
    sql, names = numbered("SELECT %(b)s, %(a)s, %(b)s, 100 %% 7")
    assert (sql, names) == (b"SELECT $1, $2, $1, 100 % 7", ("b", "a"))


def test_values_in_text_form() -> None:
    moment = datetime(2026, 12, 7, 5, 0, 1, 250, tzinfo=UTC)
    assert [as_text(v) for v in (None, True, False, 42, "ok", moment)] == [
        None, b"t", b"f", b"42", b"ok", b"2026-12-07T05:00:01.000250+00:00",
    ]  # fmt: skip
    assert as_text("a\x00b") == "a\ufffdb".encode()
    with pytest.raises(ValueError, match="naive"):
        as_text(datetime(2026, 12, 7))
    with pytest.raises(TypeError):
        as_text(b"bytes")


def _run(db: Database, work) -> None:  # type: ignore[no-untyped-def]
    args, kwargs = db.engine.dialect.create_connect_args(db.engine.url)

    async def main() -> None:
        results = await LibpqResults.open(*args, **kwargs)
        try:
            await work(results)
        finally:
            await results.close()

    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()


def _rows(db: Database) -> dict[int, tuple[str, datetime]]:
    with db.engine.connect() as connection:
        found = connection.exec_driver_sql("SELECT id, name, at FROM libpq_probe")
        return {ident: (name, at) for ident, name, at in found}


def test_rows_and_a_transaction_of_several_land(probe: Database) -> None:
    at = datetime(2026, 12, 7, 6, 0, tzinfo=timezone(timedelta(hours=1)))

    async def work(results: LibpqResults) -> None:
        await results.run([(INSERT, [{"id": 1, "name": "One", "at": at}])])
        rows = [{"id": 2, "name": "Two", "at": at}, {"id": 3, "name": "Drei ß", "at": at}]
        await results.run([("BEGIN", []), (INSERT, rows), ("COMMIT", [])])

    _run(probe, work)
    assert _rows(probe) == {1: ("One", at), 2: ("Two", at), 3: ("Drei ß", at)}


def test_a_refused_statement_raises_and_its_transaction_is_not_kept(probe: Database) -> None:
    async def work(results: LibpqResults) -> None:
        row = {"id": 5, "name": "Five", "at": datetime.now(UTC)}
        await results.run([(INSERT, [row])])
        with pytest.raises(psycopg.DatabaseError, match=r"duplicate key|unique"):
            await results.run([("BEGIN", []), (INSERT, [{**row, "id": 6}, row])])

    _run(probe, work)
    assert set(_rows(probe)) == {5}  # 6 went with the failed transaction (the connection closed)


def test_a_connection_the_server_dropped_fails_instead_of_waiting(probe: Database) -> None:
    async def work(results: LibpqResults) -> None:
        backend = results.pgconn.backend_pid
        with probe.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
        await asyncio.sleep(0.2)
        with pytest.raises(psycopg.Error):
            await results.run([(INSERT, [{"id": 9, "name": "Nine", "at": datetime.now(UTC)}])])

    _run(probe, work)
    assert 9 not in _rows(probe)
