"""db.engine.pipelined: statements batched into one round trip on PostgreSQL, errors unchanged."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tui_helpdesk.db.engine import Database, pipelined
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
