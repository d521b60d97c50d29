"""The job table: the only code in bulkcopy that touches the database."""

from __future__ import annotations

from engine.store.repo import Repository

__all__ = ["Repository"]
