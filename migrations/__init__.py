"""Alembic migrations for the bulkcopy job database (shipped with the package)."""
