"""Widgets only display and emit messages; they never read the database."""
