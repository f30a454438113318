"""Alembic environment: runs on the connection handed over by tui_helpdesk.db.engine.migrate."""

from alembic import context

from tui_helpdesk.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `tui-helpdesk init` (tui_helpdesk.db.engine.migrate)"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
