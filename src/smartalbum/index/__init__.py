"""Derived search indexes, rebuildable from the catalog: vectors (FAISS) and full text (SQLite FTS5)."""
