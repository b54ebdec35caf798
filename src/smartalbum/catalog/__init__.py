"""The SQLite catalog: the single source of truth. Everything else is derived from it."""

from smartalbum.catalog.db import Catalog, utcnow

__all__ = ["Catalog", "utcnow"]
