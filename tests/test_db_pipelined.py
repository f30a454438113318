"""db.engine.pipelined and read_together: statements batched into one round trip on PostgreSQL,
errors unchanged."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from tui_helpdesk.db.engine import Database, pipelined, read_together
from tui_helpdesk.db.models import Organisation


def test_writes_of_the_block_land(db: Database) -> None:
    with db.write() as session, pipelined(session):
        for new_id, name in ((1, "One"), (2, "Two")):  # no RETURNING inside the block
            session.execute(Organisation.__table__.insert(), {"id": new_id, "name": name})
    with db.read() as session:
        names = session.scalars(select(Organisation.name).order_by(Organisation.name)).all()
    assert names == ["One", "Two"]


def test_an_error_in_the_block_is_sqlalchemys_and_nothing_is_kept(db: Database) -> None:
    """A unique violation may surface only at the end of the block: it is still an
    IntegrityError for the caller, and the transaction's other writes are rolled back."""
    with db.write() as session:
        session.execute(Organisation.__table__.insert(), {"id": 7, "name": "Kept"})
    with pytest.raises(IntegrityError), db.write() as session, pipelined(session):
        session.execute(Organisation.__table__.insert(), {"id": 8, "name": "Lost"})
        session.execute(Organisation.__table__.insert(), {"id": 7, "name": "Clash"})
    with db.read() as session:
        assert session.scalars(select(Organisation.name)).all() == ["Kept"]


def test_the_commit_can_go_with_the_block(db: Database) -> None:
    """commit=True: the block's writes and the COMMIT in one round trip; the unit of work's
    own commit then has nothing left to do, and fails nothing."""
    with db.write() as session, pipelined(session, commit=True):
        session.execute(Organisation.__table__.insert(), {"id": 3, "name": "Three"})
    with db.read() as session:
        assert session.scalars(select(Organisation.name)).all() == ["Three"]


def test_a_failed_block_commits_nothing(db: Database) -> None:
    with db.write() as session:
        session.execute(Organisation.__table__.insert(), {"id": 7, "name": "Kept"})
    with pytest.raises(IntegrityError), db.write() as session, pipelined(session, commit=True):
        session.execute(Organisation.__table__.insert(), {"id": 8, "name": "Lost"})
        session.execute(Organisation.__table__.insert(), {"id": 7, "name": "Clash"})
    with db.read() as session:
        assert session.scalars(select(Organisation.name)).all() == ["Kept"]


def test_reads_together_give_each_statements_rows(db: Database) -> None:
    with db.write() as session:
        session.execute(Organisation.__table__.insert(), [{"id": 1, "name": "One"},
                                                          {"id": 2, "name": "Two"}])  # fmt: skip
    named = select(Organisation.name).where(Organisation.id == bindparam("id"))
    with db.read() as session:
        rows = read_together(session, [(named, {"id": 2}), (select(Organisation.id), {}),
                                       (named, {"id": 3})])  # fmt: skip
    assert [sorted(r) for r in rows] == [[("Two",)], [(1,), (2,)], []]


def test_an_error_in_reads_together_is_sqlalchemys(db: Database) -> None:
    with pytest.raises(DBAPIError) as raised, db.read() as session:
        missing = text("SELECT * FROM no_such_table")
        read_together(session, [(select(Organisation.id), {}), (missing, {})])
    assert not raised.value.connection_invalidated
