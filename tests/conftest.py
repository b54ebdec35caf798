"""Fixtures: a library in a temp dir with its catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path / "library", workers=2, batch_size=8)


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    with Catalog(settings.catalog_path) as cat:
        yield cat
