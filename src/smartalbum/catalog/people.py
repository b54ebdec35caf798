"""Faces and people in the catalog: what the face stage found, how faces are grouped, and what a person
typed (names, the owner, merges, corrections). A user's decision is never undone by a later run."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from smartalbum.catalog.db import Catalog, utcnow
from smartalbum.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from smartalbum.faces.base import FaceScan

FACES = "faces"  # the stage name in the errors table
MAX_NAME_LEN = 64
MAX_NAMES = 16


def fold_name(name: str) -> str:
    """How names are compared: case-folded, spaces squeezed (Alice == alice, '小 明' != '小明')."""
    return re.sub(r"\s+", " ", name).strip().casefold()


def clean_names(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in names:
        name = re.sub(r"\s+", " ", raw).strip()
        if not name:
            continue
        if len(name) > MAX_NAME_LEN:
            raise InputError(f"name too long ({len(name)} characters)", f"use at most {MAX_NAME_LEN}")
        if any(ord(c) < 32 for c in name):
            raise InputError("a name cannot contain control characters")
        if fold_name(name) not in {fold_name(n) for n in out}:
            out.append(name)
    if not out:
        raise InputError("give at least one name", "e.g. `smartalbum people name 12 妈妈 Mum`")
    if len(out) > MAX_NAMES:
        raise InputError(f"too many names ({len(out)})", f"give at most {MAX_NAMES}")
    return out


@dataclass(slots=True)
class FaceVectors:
    """Faces of one model version as a matrix: ids, vectors and (for assigned faces) their person."""

    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dim)
    person_ids: np.ndarray  # int64 (n,), -1 when unassigned


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class PeopleStore:
    """Typed read/write functions over the faces, face_scans, people and person_names tables."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db: sqlite3.Connection = catalog.db

    # -- the face stage ---------------------------------------------------------------------------

    def hashes_to_scan(self, version: str) -> list[str]:
        """Visible photos this face model version has not looked at yet, oldest first."""
        rows = self.db.execute(
            f"""WITH pictures(hash, id, t) AS (
                    SELECT p.hash, p.id, 0 FROM photos p WHERE p.media = 'photo' AND {self.catalog._VISIBLE}
                    UNION ALL
                    SELECT k.frame_hash, p.id, k.t FROM keyframes k JOIN photos p ON p.hash = k.video_hash
                    WHERE p.media = 'video' AND {self.catalog._VISIBLE})
                SELECT hash FROM pictures x
                WHERE NOT EXISTS (SELECT 1 FROM face_scans s WHERE s.hash = x.hash AND s.producer_version = ?)
                ORDER BY x.id, x.t""",
            (version,),
        )
        return [r[0] for r in rows]

    def record_scans(self, version: str, results: Iterable[tuple[str, FaceScan | None, str | None]]) -> None:
        """Store one batch of scans (hash, scan or None, error) in one transaction. Faces found by an older
        model version of the same photo hand their person (and who set it) to the new face at the same place,
        then are replaced."""
        now = utcnow()
        with self.catalog.transaction():
            for photo_hash, scan, error in results:
                if scan is None:
                    self.catalog.record_error(FACES, photo_hash, "error", error or "face scan failed", now)
                    continue
                old = self.db.execute(
                    "SELECT x, y, w, h, person_id, assigned_by FROM faces "
                    "WHERE hash = ? AND producer_version != ?",
                    (photo_hash, version),
                ).fetchall()
                self.db.execute(
                    "DELETE FROM faces WHERE hash = ? AND producer_version != ?", (photo_hash, version)
                )
                self.db.execute(
                    "DELETE FROM face_scans WHERE hash = ? AND producer_version != ?", (photo_hash, version)
                )
                for f in scan.faces:
                    box = (f.x, f.y, f.w, f.h)
                    heir = max(old, key=lambda r: _iou(box, tuple(r)[:4]), default=None)
                    inherit = heir is not None and heir["person_id"] and _iou(box, tuple(heir)[:4]) >= 0.5
                    self.db.execute(
                        """INSERT OR IGNORE INTO faces(hash, producer_version, x, y, w, h, score, vector,
                                                      person_id, assigned_by, created_at, owner)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                                   coalesce((SELECT video_hash FROM keyframes WHERE frame_hash = ?), ?))""",
                        (
                            photo_hash,
                            version,
                            *box,
                            f.score,
                            np.asarray(f.vector, dtype=np.float32).tobytes(),
                            heir["person_id"] if inherit and heir else None,
                            heir["assigned_by"] if inherit and heir else None,
                            now,
                            photo_hash,
                            photo_hash,
                        ),
                    )
                self.db.execute(
                    """INSERT OR REPLACE INTO face_scans(hash, producer_version, found, scanned_at)
                       VALUES (?, ?, ?, ?)""",
                    (photo_hash, version, scan.found, now),
                )
                self.db.execute("DELETE FROM errors WHERE stage = ? AND subject = ?", (FACES, photo_hash))

    def face_vectors(self, version: str, *, assigned: bool) -> FaceVectors:
        """Assigned faces (with their person) or unassigned ones, of one model version, of visible photos."""
        cond = "f.person_id IS NOT NULL" if assigned else "f.person_id IS NULL"
        rows = self.db.execute(
            f"""SELECT f.id, f.vector, coalesce(f.person_id, -1) FROM faces f
                WHERE f.producer_version = ? AND {cond}
                AND EXISTS (SELECT 1 FROM photos p WHERE p.hash = f.owner AND {self.catalog._VISIBLE})
                ORDER BY f.id""",
            (version,),
        ).fetchall()
        if not rows:
            return FaceVectors(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
        return FaceVectors(
            np.fromiter((r[0] for r in rows), np.int64, len(rows)),
            np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]),
            np.fromiter((r[2] for r in rows), np.int64, len(rows)),
        )

    def assign_groups(self, joins: dict[int, list[int]], new_groups: list[list[int]]) -> list[int]:
        """Record a clustering run in one transaction: faces that join existing people, and new people for
        new groups. Only faces still unassigned are touched (a correction made meanwhile wins).
        Returns the new people's ids."""
        now = utcnow()
        created: list[int] = []
        with self.catalog.transaction():
            for person_id, face_ids in joins.items():
                self._assign(face_ids, person_id, "auto", only_unassigned=True)
            for face_ids in new_groups:
                person_id = self._new_person(now)
                self._assign(face_ids, person_id, "auto", only_unassigned=True)
                created.append(person_id)
            self._drop_empty()
        return created

    def _new_person(self, now: str) -> int:
        cur = self.db.execute("INSERT INTO people(created_at, updated_at) VALUES (?, ?)", (now, now))
        return int(cur.lastrowid or 0)

    def _assign(
        self, face_ids: Sequence[int], person_id: int | None, by: str, *, only_unassigned: bool
    ) -> None:
        cond = " AND person_id IS NULL" if only_unassigned else ""
        self.db.executemany(
            f"UPDATE faces SET person_id = ?, assigned_by = ? WHERE id = ?{cond}",
            [(person_id, by if person_id is not None else None, int(i)) for i in face_ids],
        )

    def _drop_empty(self) -> None:
        """A person with no faces left and no name is nothing: remove it (named people stay)."""
        self.db.execute(
            """DELETE FROM people WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = people.id)
               AND NOT EXISTS (SELECT 1 FROM person_names n WHERE n.person_id = people.id)"""
        )

    def purge(self) -> int:
        """Delete every face, scan and person (face recognition turned off). Returns faces deleted."""
        with self.catalog.transaction():
            n = self.db.execute("DELETE FROM faces").rowcount
            self.db.execute("DELETE FROM face_scans")
            self.db.execute("DELETE FROM person_names")
            self.db.execute("DELETE FROM people")
            self.db.execute("DELETE FROM errors WHERE stage = ?", (FACES,))
        return int(n)

    # -- reading ----------------------------------------------------------------------------------

    _PERSON_SQL = f"""
        SELECT pe.id, pe.is_me, pe.hidden, pe.birthday, pe.created_at, pe.updated_at,
               (SELECT json_group_array(name) FROM
                   (SELECT name FROM person_names n WHERE n.person_id = pe.id ORDER BY position)) AS names,
               count(f.id) AS faces, count(DISTINCT f.owner) AS photos
        FROM people pe
        LEFT JOIN faces f ON f.person_id = pe.id
             AND EXISTS (SELECT 1 FROM photos p WHERE p.hash = f.owner AND {"{visible}"})
    """

    def _person_rows(self, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        sql = self._PERSON_SQL.replace("{visible}", self.catalog._VISIBLE)
        rows = self.db.execute(
            f"{sql} WHERE {where} GROUP BY pe.id ORDER BY pe.is_me DESC, faces DESC, pe.id", tuple(args)
        ).fetchall()
        covers = self._covers([r["id"] for r in rows])
        out = []
        for r in rows:
            d = dict(r)
            d["names"] = json.loads(d["names"])
            d["name"] = d["names"][0] if d["names"] else None
            d["is_me"], d["hidden"] = bool(d["is_me"]), bool(d["hidden"])
            d["cover"] = covers.get(d["id"])
            out.append(d)
        return out

    def _covers(self, person_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The face shown for each person: their largest, most confident face on a visible photo (one query
        for the whole list, not one per person)."""
        rows = self.db.execute(
            f"""SELECT person_id, face_id, photo_id,
                   (SELECT min(fl.path) FROM files fl WHERE fl.photo_id = best.photo_id AND fl.status = 'ok')
                       AS path
                FROM (SELECT f.person_id, f.id AS face_id, p.id AS photo_id,
                             row_number() OVER (PARTITION BY f.person_id
                                                ORDER BY f.w * f.h * (1 + f.score) DESC, f.id) AS n
                      FROM faces f JOIN photos p ON p.hash = f.owner
                      WHERE f.person_id IN (SELECT value FROM json_each(?)) AND {self.catalog._VISIBLE}) best
                WHERE n = 1""",
            (json.dumps([int(i) for i in person_ids]),),
        )
        return {
            r["person_id"]: {"face_id": r["face_id"], "photo_id": r["photo_id"], "path": r["path"]}
            for r in rows
        }

    def people(self, *, include_hidden: bool = False, min_faces: int = 1) -> list[dict[str, Any]]:
        """People, the owner first, then by number of faces; named people are listed even with no face."""
        rows = self._person_rows("1" if include_hidden else "pe.hidden = 0", ())
        return [r for r in rows if r["faces"] >= min_faces or r["names"]]

    def person(self, person_id: int) -> dict[str, Any]:
        rows = self._person_rows("pe.id = ?", (int(person_id),))
        if not rows:
            raise NotFoundError(f"no person {person_id}", "see `smartalbum people`")
        return rows[0]

    def person_faces(self, person_id: int, limit: int = 200) -> list[dict[str, Any]]:
        self.person(person_id)
        return self._faces("f.person_id = ?", (int(person_id),), limit)

    def photo_faces(self, photo_hash: str) -> list[dict[str, Any]]:
        """Faces of one photo with who they are (hidden people are shown as unknown)."""
        return self._faces("f.hash = ?", (photo_hash,), 500)

    def face(self, face_id: int) -> dict[str, Any]:
        rows = self._faces("f.id = ?", (int(face_id),), 1)
        if not rows:
            raise NotFoundError(f"no face {face_id}")
        return rows[0]

    def _faces(self, where: str, args: Sequence[Any], limit: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            f"""SELECT f.id, f.hash, p.id AS photo_id, f.x, f.y, f.w, f.h, f.score, f.assigned_by,
                       CASE WHEN pe.hidden THEN NULL ELSE f.person_id END AS person_id,
                       CASE WHEN pe.hidden THEN NULL ELSE
                           (SELECT n.name FROM person_names n WHERE n.person_id = f.person_id
                            ORDER BY n.position LIMIT 1) END AS name
                FROM faces f JOIN photos p ON p.hash = f.owner
                LEFT JOIN people pe ON pe.id = f.person_id
                WHERE {where} ORDER BY f.x, f.id LIMIT ?""",
            (*args, limit),
        )
        return [dict(r) for r in rows]

    def birthdays(self) -> dict[int, tuple[int, int]]:
        """(month, day) of every known birthday of a person who is not hidden."""
        rows = self.db.execute("SELECT id, birthday FROM people WHERE birthday IS NOT NULL AND hidden = 0")
        return {int(r[0]): (int(r[1][-5:-3]), int(r[1][-2:])) for r in rows}

    def set_birthday(self, person_id: int, birthday: str | None) -> dict[str, Any]:
        """YYYY-MM-DD, or MM-DD when the year is not known; None forgets it."""
        self.person(person_id)
        value = None
        if birthday is not None:
            text = birthday.strip()
            try:
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                    date.fromisoformat(text)
                    value = text
                elif re.fullmatch(r"\d{1,2}-\d{1,2}", text):
                    month, day = (int(x) for x in text.split("-"))
                    date(2000, month, day)  # a leap year: 02-29 is a birthday
                    value = f"--{month:02d}-{day:02d}"
                else:
                    raise ValueError(text)
            except ValueError as exc:
                raise InputError(
                    f"not a birthday: {birthday!r}", "give YYYY-MM-DD, or MM-DD when the year is unknown"
                ) from exc
        with self.catalog.transaction():
            self.db.execute("UPDATE people SET birthday = ? WHERE id = ?", (value, person_id))
            self._touch(person_id)
        return self.person(person_id)

    def directory(self) -> tuple[dict[str, int], int | None]:
        """(folded name -> person id, the owner's id) for reading questions; hidden people are left out."""
        names = {
            r[0]: int(r[1])
            for r in self.db.execute(
                "SELECT n.folded, n.person_id FROM person_names n JOIN people pe ON pe.id = n.person_id "
                "WHERE pe.hidden = 0"
            )
        }
        me = self.db.execute("SELECT id FROM people WHERE is_me = 1 AND hidden = 0").fetchone()
        return names, (int(me[0]) if me else None)

    def display_names(self, person_ids: Iterable[int]) -> dict[int, str]:
        ids = json.dumps([int(i) for i in person_ids])
        rows = self.db.execute(
            """SELECT person_id, name FROM person_names WHERE position = 0
               AND person_id IN (SELECT value FROM json_each(?))""",
            (ids,),
        )
        return {int(r[0]): r[1] for r in rows}

    def photo_ids_with_people(
        self, all_of: Sequence[int], *, only: bool = False, none_of: Sequence[int] = ()
    ) -> list[int]:
        """Visible photos in which every person of `all_of` has a face; with `only`, no other face (known or
        not) is in the photo; none of `none_of` is."""
        sql = f"SELECT p.id FROM photos p WHERE {self.catalog._VISIBLE}"
        args: list[Any] = []
        for pid in all_of:
            sql += " AND EXISTS (SELECT 1 FROM faces f WHERE f.owner = p.hash AND f.person_id = ?)"
            args.append(int(pid))
        if only and all_of:
            marks = ",".join("?" * len(all_of))
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.owner = p.hash"
                f" AND (f.person_id IS NULL OR f.person_id NOT IN ({marks})))"
            )
            args.extend(int(p) for p in all_of)
        if none_of:
            marks = ",".join("?" * len(none_of))
            sql += (
                f" AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.owner = p.hash AND f.person_id IN ({marks}))"
            )
            args.extend(int(p) for p in none_of)
        return [r[0] for r in self.db.execute(sql + " ORDER BY p.id", args)]

    def people_in_photos(self, photo_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The named (or owner), not hidden people in each photo (for a result's person chips)."""
        rows = self.db.execute(
            """SELECT DISTINCT p.id AS photo_id, pe.id AS person_id,
                   (SELECT n.name FROM person_names n WHERE n.person_id = pe.id ORDER BY n.position LIMIT 1)
                       AS name, pe.is_me
               FROM photos p JOIN faces f ON f.owner = p.hash JOIN people pe ON pe.id = f.person_id
               WHERE pe.hidden = 0 AND p.id IN (SELECT value FROM json_each(?))
                 AND (pe.is_me OR EXISTS (SELECT 1 FROM person_names n WHERE n.person_id = pe.id))
               ORDER BY p.id, pe.is_me DESC, pe.id""",
            (json.dumps([int(i) for i in photo_ids]),),
        )
        out: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["photo_id"], []).append(
                {"id": r["person_id"], "name": r["name"], "is_me": bool(r["is_me"])}
            )
        return out

    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "faces": q("SELECT count(*) FROM faces").fetchone()[0],
            "faces_unassigned": q("SELECT count(*) FROM faces WHERE person_id IS NULL").fetchone()[0],
            "people": q("SELECT count(*) FROM people").fetchone()[0],
            "people_named": q("SELECT count(DISTINCT person_id) FROM person_names").fetchone()[0],
            "photos_scanned": q("SELECT count(DISTINCT hash) FROM face_scans").fetchone()[0],
        }

    # -- what a person decides --------------------------------------------------------------------

    def set_names(self, person_id: int, names: Sequence[str], *, add: bool = False) -> dict[str, Any]:
        """Name a person (the first name is the one shown); `add` keeps the names it already has."""
        self.person(person_id)
        names = clean_names(names)
        with self.catalog.transaction():
            if add:
                kept = [
                    r[0]
                    for r in self.db.execute(
                        "SELECT name FROM person_names WHERE person_id = ? ORDER BY position", (person_id,)
                    )
                ]
                names = clean_names([*kept, *names])
            for name in names:
                other = self.db.execute(
                    "SELECT person_id FROM person_names WHERE folded = ? AND person_id != ?",
                    (fold_name(name), person_id),
                ).fetchone()
                if other:
                    raise InputError(
                        f"the name {name!r} already belongs to person {other[0]}",
                        f"merge them (`smartalbum people merge {other[0]} {person_id}`) "
                        "or choose another name",
                    )
            self.db.execute("DELETE FROM person_names WHERE person_id = ?", (person_id,))
            self.db.executemany(
                "INSERT INTO person_names(person_id, name, folded, position) VALUES (?, ?, ?, ?)",
                [(person_id, n, fold_name(n), i) for i, n in enumerate(names)],
            )
            self._lock_faces(person_id)
            self._touch(person_id)
        return self.person(person_id)

    def set_me(self, person_id: int | None) -> dict[str, Any] | None:
        """Mark the owner (None: nobody). Their faces are locked to them like a name does."""
        if person_id is not None:
            self.person(person_id)
        with self.catalog.transaction():
            self.db.execute("UPDATE people SET is_me = 0 WHERE is_me = 1")
            if person_id is not None:
                self.db.execute("UPDATE people SET is_me = 1 WHERE id = ?", (person_id,))
                self._lock_faces(person_id)
                self._touch(person_id)
        return self.person(person_id) if person_id is not None else None

    def set_hidden(self, person_id: int, hidden: bool) -> dict[str, Any]:
        self.person(person_id)
        with self.catalog.transaction():
            self.db.execute("UPDATE people SET hidden = ? WHERE id = ?", (int(hidden), person_id))
            self._touch(person_id)
        return self.person(person_id)

    def merge(self, sources: Sequence[int], target: int) -> dict[str, Any]:
        """Move every face and name of `sources` to `target` and delete the sources."""
        sources = [int(s) for s in dict.fromkeys(sources) if int(s) != int(target)]
        if not sources:
            raise InputError("nothing to merge", "give at least one other person than the target")
        for pid in [*sources, target]:
            self.person(pid)
        with self.catalog.transaction():
            names = [
                r[0]
                for r in self.db.execute(
                    """SELECT name FROM person_names WHERE person_id IN (SELECT value FROM json_each(?))
                       ORDER BY person_id = ? DESC, person_id, position""",
                    (json.dumps([target, *sources]), target),
                )
            ]
            me = self.db.execute(
                "SELECT count(*) FROM people WHERE is_me = 1 AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(sources),),
            ).fetchone()[0]
            self.db.execute(
                "UPDATE faces SET person_id = ? WHERE person_id IN (SELECT value FROM json_each(?))",
                (target, json.dumps(sources)),
            )
            self.db.execute(
                "DELETE FROM people WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(sources),)
            )
            if me:
                self.db.execute("UPDATE people SET is_me = 1 WHERE id = ?", (target,))
            if names:
                self.db.execute("DELETE FROM person_names WHERE person_id = ?", (target,))
                kept = clean_names(names)[:MAX_NAMES]
                self.db.executemany(
                    "INSERT INTO person_names(person_id, name, folded, position) VALUES (?, ?, ?, ?)",
                    [(target, n, fold_name(n), i) for i, n in enumerate(kept)],
                )
            self._lock_faces(target)
            self._touch(target)
        return self.person(target)

    def move_faces(self, face_ids: Sequence[int], person_id: int | None) -> dict[str, Any]:
        """Give faces to a person (None: a new person of their own). A user's move is never undone."""
        ids = [int(i) for i in dict.fromkeys(face_ids)]
        if not ids:
            raise InputError("give at least one face id", "see `smartalbum people show <id>`")
        known = {
            r[0]
            for r in self.db.execute(
                "SELECT id FROM faces WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
            )
        }
        missing = [i for i in ids if i not in known]
        if missing:
            raise NotFoundError(
                f"no face {missing[0]}", "face ids are listed by `smartalbum people show <id>`"
            )
        if person_id is not None:
            self.person(person_id)
        with self.catalog.transaction():
            target = person_id if person_id is not None else self._new_person(utcnow())
            self._assign(ids, target, "user", only_unassigned=False)
            self._touch(target)
            self._drop_empty()
        return self.person(target)

    def forget(self, person_id: int) -> int:
        """Delete a person, their names and their faces (vectors included). The photos stay scanned, so
        the faces are not found again by the next run. Returns the number of faces deleted."""
        self.person(person_id)
        with self.catalog.transaction():
            n = self.db.execute("DELETE FROM faces WHERE person_id = ?", (person_id,)).rowcount
            self.db.execute("DELETE FROM people WHERE id = ?", (person_id,))
        return int(n)

    def _lock_faces(self, person_id: int) -> None:
        """A named person's (or the owner's) grouping is the user's: no run changes it afterwards."""
        self.db.execute("UPDATE faces SET assigned_by = 'user' WHERE person_id = ?", (person_id,))

    def _touch(self, person_id: int) -> None:
        self.db.execute("UPDATE people SET updated_at = ? WHERE id = ?", (utcnow(), person_id))
