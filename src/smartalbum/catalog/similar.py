"""Near-duplicate groups in the catalog: perceptual fingerprints per content hash and group membership.

Table `similar_hashes` (schema v8), one row per content hash: the fingerprint (media/similar.py) of one
algorithm version, the group (NULL when alone) and when grouping last compared it with the rest. Keyed by
content hash, so a moved, renamed or copied file keeps its fingerprint and its group. Groups are derived and
never edited by hand; which thresholds built them is kept in `derived_state` ('similar'), and a change
regroups everything. Listings show only photos that still have a file; nothing is ever deleted here.

- `SimilarStore(catalog)`: `hashes_to_fingerprint(version)`, `record(version, results)` (one transaction per
  batch; failures become error rows of stage 'similar'), `rows(version)`, `set_groups(...)`,
  `grouping()`/`reset_groups(grouping)`, and for reading: `groups(min_size)`, `group(id)`,
  `groups_of(photo_ids)`, `counts()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smartalbum.catalog.db import Catalog, utcnow
from smartalbum.errors import NotFoundError

if TYPE_CHECKING:
    from smartalbum.media.similar import Fingerprint

SIMILAR = "similar"  # the stage name in the errors table and the derived_state row of the grouping
_ALL_AT_ONCE = 2000  # longer lists of ids are matched against every grouped photo instead


@dataclass(frozen=True, slots=True)
class SimilarRow:
    """One fingerprinted photo as grouping reads it."""

    photo_id: int
    hash: str
    phash: int  # as stored (signed 64-bit)
    dhash: int
    extra: bytes
    flat: bool
    group_id: int | None
    grouped: bool  # compared with the rest by an earlier grouping
    taken_at: str | None
    time_source: str | None


class SimilarStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    # -- the stage ----------------------------------------------------------------------------------------

    def hashes_to_fingerprint(self, version: str) -> list[str]:
        """Visible photos (not videos) with thumbnails and no fingerprint of this version, oldest first."""
        rows = self.db.execute(
            f"""SELECT p.hash FROM photos p
                WHERE p.thumbs = 1 AND p.media = 'photo' AND {self.catalog._VISIBLE}
                AND NOT EXISTS (SELECT 1 FROM similar_hashes s
                                WHERE s.hash = p.hash AND s.producer_version = ?)
                ORDER BY p.id""",
            (version,),
        )
        return [r[0] for r in rows]

    def record(self, version: str, results: Iterable[tuple[str, Fingerprint | None, str | None]]) -> None:
        """Store one batch of (hash, fingerprint or None, error) in one transaction. A new fingerprint is
        grouped again by the next grouping (its old group, if any, is kept until then)."""
        from smartalbum.media.similar import signed

        now = utcnow()
        with self.catalog.transaction():
            for photo_hash, fp, error in results:
                if fp is None:
                    self.catalog.record_error(SIMILAR, photo_hash, "error", error or "no fingerprint", now)
                    continue
                self.db.execute(
                    """INSERT INTO similar_hashes(hash, producer_version, phash, dhash, extra, flat,
                                                   created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(hash) DO UPDATE SET producer_version = excluded.producer_version,
                           phash = excluded.phash, dhash = excluded.dhash, extra = excluded.extra,
                           flat = excluded.flat, grouped_at = NULL, created_at = excluded.created_at""",
                    (photo_hash, version, signed(fp.phash), signed(fp.dhash), fp.extra(), int(fp.flat), now),
                )
                self.db.execute("DELETE FROM errors WHERE stage = ? AND subject = ?", (SIMILAR, photo_hash))

    def rows(self, version: str) -> list[SimilarRow]:
        """Every fingerprint of this version whose photo is in the catalog (visible or not), by photo id."""
        rows = self.db.execute(
            """SELECT p.id, s.hash, s.phash, s.dhash, s.extra, s.flat, s.group_id, s.grouped_at IS NOT NULL,
                      p.taken_at, p.time_source
               FROM similar_hashes s JOIN photos p ON p.hash = s.hash
               WHERE s.producer_version = ? ORDER BY p.id""",
            (version,),
        )
        return [
            SimilarRow(r[0], r[1], r[2], r[3], bytes(r[4]), bool(r[5]), r[6], bool(r[7]), r[8], r[9])
            for r in rows
        ]

    def grouping(self) -> str | None:
        """Which thresholds the stored groups were built with (None: never grouped)."""
        row = self.db.execute("SELECT token FROM derived_state WHERE name = ?", (SIMILAR,)).fetchone()
        return row[0] if row else None

    def reset_groups(self, grouping: str) -> None:
        """Forget every group and mark every fingerprint ungrouped: the next grouping starts afresh."""
        with self.catalog.transaction():
            self.db.execute("UPDATE similar_hashes SET group_id = NULL, grouped_at = NULL")
            self.db.execute(
                "INSERT OR REPLACE INTO derived_state(name, token, built_at) VALUES (?, ?, ?)",
                (SIMILAR, grouping, utcnow()),
            )

    def set_groups(self, groups: Mapping[str, int | None], grouped: Sequence[str], grouping: str) -> None:
        """Write changed groups (hash -> group id or None) and mark `grouped` hashes as compared."""
        now = utcnow()
        with self.catalog.transaction():
            self.db.executemany(
                "UPDATE similar_hashes SET group_id = ? WHERE hash = ?", [(g, h) for h, g in groups.items()]
            )
            self.db.executemany(
                "UPDATE similar_hashes SET grouped_at = ? WHERE hash = ?", [(now, h) for h in grouped]
            )
            self.db.execute(
                "INSERT OR REPLACE INTO derived_state(name, token, built_at) VALUES (?, ?, ?)",
                (SIMILAR, grouping, now),
            )

    # -- reading --------------------------------------------------------------------------------------

    def _members(self, where: str, args: Sequence[Any]) -> dict[int, list[dict[str, Any]]]:
        """Visible members of groups, with one existing path each: group id -> photos (oldest first)."""
        rows = self.db.execute(
            f"""SELECT s.group_id, p.id, p.hash, p.taken_at, p.width, p.height, p.size,
                       (SELECT min(f.path) FROM files f WHERE f.photo_id = p.id AND f.status = 'ok') AS path,
                       p.files_ok AS files
                FROM similar_hashes s JOIN photos p ON p.hash = s.hash
                WHERE s.group_id IS NOT NULL AND {self.catalog._VISIBLE} AND {where}
                ORDER BY s.group_id, p.taken_at IS NULL, p.taken_at, p.id""",
            tuple(args),
        )
        out: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            photo = dict(r)
            out.setdefault(int(photo.pop("group_id")), []).append(photo)
        return out

    def groups(self, *, min_size: int = 2, limit: int | None = None) -> list[dict[str, Any]]:
        """Groups with at least `min_size` visible photos, largest first (then the newest id last): id, size,
        photos (photo_id, hash, taken_at, width, height, size, path, files)."""
        members = self._members("1", ())
        found: list[dict[str, Any]] = [
            {"id": gid, "size": len(photos), "photos": [_photo(p) for p in photos]}
            for gid, photos in members.items()
            if len(photos) >= max(2, min_size)
        ]
        found.sort(key=lambda g: (-int(g["size"]), int(g["id"])))
        return found[:limit] if limit is not None else found

    def group(self, group_id: int) -> dict[str, Any]:
        """One group with its visible photos."""
        photos = self._members("s.group_id = ?", (group_id,)).get(group_id, [])
        if len(photos) < 2:
            raise NotFoundError(f"no group of similar photos {group_id}", "see `smartalbum duplicates`")
        return {"id": group_id, "size": len(photos), "photos": [_photo(p) for p in photos]}

    def groups_of(self, photo_ids: Sequence[int]) -> dict[int, int]:
        """photo id -> group id, for those of `photo_ids` that are in a group."""
        ids = [int(i) for i in photo_ids]
        sql = """SELECT p.id, s.group_id FROM similar_hashes s JOIN photos p ON p.hash = s.hash
                 WHERE s.group_id IS NOT NULL"""
        grouped = self.db.execute(  # read from the partial index: as many rows as grouped photos
            "SELECT count(*) FROM similar_hashes INDEXED BY similar_hashes_group WHERE group_id IS NOT NULL"
        ).fetchone()[0]
        if not grouped:
            return {}
        if len(ids) > min(_ALL_AT_ONCE, grouped):  # every grouped photo in one pass, filtered here
            wanted = set(ids)
            return {int(r[0]): int(r[1]) for r in self.db.execute(sql) if r[0] in wanted}
        rows = self.db.execute(sql + " AND p.id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
        return {int(r[0]): int(r[1]) for r in rows}

    def counts(self) -> dict[str, int]:
        """Fingerprinted photos, groups of two or more visible photos, and the photos in them."""
        sizes = [len(v) for v in self._members("1", ()).values()]
        sizes = [s for s in sizes if s >= 2]
        hashed = self.db.execute(
            f"""SELECT count(*) FROM similar_hashes s JOIN photos p ON p.hash = s.hash
                WHERE {self.catalog._VISIBLE}"""
        ).fetchone()[0]
        return {"fingerprinted": int(hashed), "groups": len(sizes), "photos_in_groups": sum(sizes)}


def _photo(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "photo_id": row["id"],
        "hash": row["hash"],
        "taken_at": row["taken_at"],
        "width": row["width"],
        "height": row["height"],
        "size": row["size"],
        "path": row["path"],
        "files": row["files"],
    }
