"""Builds the Database for front ends that must not import tui_helpdesk.db themselves (the TUI)."""

from __future__ import annotations

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database


def open_database(settings: Settings) -> Database:
    """The engine and session factory for these settings; the caller disposes of it."""
    return Database.from_settings(settings)
