"""Keeping events and trips in step with the catalog: regrouped as a whole whenever a visible photo, its
time or its place changes (100,000 photos take seconds; see bench/questions.py --grouping)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.catalog.events import EventStore
from smartalbum.events.grouping import group
from smartalbum.events.titles import places, title


@dataclass
class EventStats:
    photos: int = 0
    events: int = 0
    trips: int = 0
    rebuilt: bool = False
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_events(catalog: Catalog, *, force: bool = False) -> EventStats:
    store = EventStore(catalog)
    token = store.token()
    stats = EventStats()
    if not force and token == store.built_token():
        return stats
    started = time.monotonic()
    shots = store.shots()
    grouping = group(shots)
    at_home = Counter(s.place.get("country_code") for e in grouping.events if not e.away for s in e.shots)
    at_home.pop(None, None)
    home_cc = at_home.most_common(1)[0][0] if at_home else None
    titles = []
    for unit_shots in [*(t.shots for t in grouping.trips), *(e.shots for e in grouping.events)]:
        where = places(unit_shots, home_cc)
        zh, en = title(unit_shots[0].local.date(), unit_shots[-1].local.date(), where)
        titles.append((where, zh, en))
    store.replace(grouping, titles, token)
    stats.photos, stats.events, stats.trips = len(shots), len(grouping.events), len(grouping.trips)
    stats.rebuilt = True
    stats.elapsed_s = round(time.monotonic() - started, 3)
    return stats
