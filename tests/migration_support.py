"""Shared by the migration tests (this module holds no tests): settings for a database, and a
downgrade with Alembic. The empty database they start from is conftest's `empty_url`."""

from __future__ import annotations

from alembic import command

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database, alembic_config


def settings_for(url: str) -> Settings:
    return load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url, "TUI_HELPDESK_SMTP_PORT": "0"})


def downgrade(db: Database, revision: str) -> None:
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
