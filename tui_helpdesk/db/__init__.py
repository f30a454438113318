"""Database layer: engine, typed models, Alembic migrations."""
