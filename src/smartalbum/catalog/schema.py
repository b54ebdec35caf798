"""The catalog's schema as an explicit list of migrations, each a plain function, read top to bottom."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Execute statements one by one: executescript() would COMMIT the migration's transaction early."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement[:80]!r}")


def _v1_foundation(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE roots (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            added_at TEXT NOT NULL
        );
        -- one row per distinct content (identity = content hash); derived data hangs off the hash
        CREATE TABLE photos (
            id INTEGER PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            format TEXT,
            width INTEGER,
            height INTEGER,
            orientation INTEGER,
            taken_at TEXT,            -- local wall-clock time, ISO 8601 without offset
            tz_offset TEXT,           -- '+08:00' when known
            time_source TEXT NOT NULL, -- exif_original | exif_digitized | exif_datetime | filename | mtime
            lat REAL,
            lon REAL,
            place_city TEXT, place_region TEXT, place_country TEXT, country_code TEXT,
            place_city_zh TEXT, place_region_zh TEXT, place_country_zh TEXT,
            camera_make TEXT, camera_model TEXT, lens TEXT,
            thumbs INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX photos_taken ON photos(taken_at);
        CREATE INDEX photos_country ON photos(country_code);
        -- one row per path seen under a root
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            root_id INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
            photo_id INTEGER REFERENCES photos(id),
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'gone')),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE INDEX files_photo ON files(photo_id);
        CREATE INDEX files_root ON files(root_id, status);
        -- the latest failure of one stage on one subject (a path for ingestion, a hash for later stages)
        CREATE TABLE errors (
            stage TEXT NOT NULL,
            subject TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            at TEXT NOT NULL,
            PRIMARY KEY (stage, subject)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,      -- running | done | cancelled | failed
            stats TEXT NOT NULL DEFAULT '{}'
        );
        """,
    )


def _v2_analyses(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- what an analyser (VLM, OCR) produced for one content hash; a new producer version adds a row
        CREATE TABLE analyses (
            hash TEXT NOT NULL,
            producer TEXT NOT NULL,          -- 'qwen_vl', 'openai', 'ocr', 'import'
            producer_version TEXT NOT NULL,  -- model id + prompt/schema version
            status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'unparsed')),
            data TEXT NOT NULL,              -- JSON, schema of vision/schema.py (or OCR lines)
            raw TEXT NOT NULL DEFAULT '',    -- the model's own words, kept even when parsed
            created_at TEXT NOT NULL,
            PRIMARY KEY (hash, producer, producer_version)
        );
        CREATE INDEX analyses_latest ON analyses(hash, created_at);
        """,
    )


def _v3_feedback(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- a person's verdict on one photo for one query: 'bad' drops it, 'good' lifts it
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            query TEXT NOT NULL,         -- as typed
            query_key TEXT NOT NULL,     -- normalised: case, spaces and punctuation folded
            hash TEXT NOT NULL,          -- the photo's content hash: survives renames and moves
            verdict TEXT NOT NULL CHECK (verdict IN ('good', 'bad')),
            created_at TEXT NOT NULL,
            undone_at TEXT
        );
        CREATE INDEX feedback_key ON feedback(query_key) WHERE undone_at IS NULL;
        """,
    )


def _v4_place_indexes(db: sqlite3.Connection) -> None:
    # place filters ("在青岛", "in Paris") must not scan every photo
    run_script(
        db,
        """
        CREATE INDEX photos_city ON photos(place_city);
        CREATE INDEX photos_region ON photos(place_region);
        """,
    )


def _v5_people(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- a person: a group of faces, named or not; at most one is the library's owner (我 / me)
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            is_me INTEGER NOT NULL DEFAULT 0,
            hidden INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX people_me ON people(is_me) WHERE is_me = 1;
        -- names and aliases of a person (妈妈, 老妈, Mum); position 0 is the name shown
        CREATE TABLE person_names (
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            folded TEXT NOT NULL UNIQUE,   -- case-folded, spaces squeezed: one name means one person
            position INTEGER NOT NULL
        );
        CREATE INDEX person_names_person ON person_names(person_id);
        -- which photos the face stage has looked at, per model version (faces found may be none)
        CREATE TABLE face_scans (
            hash TEXT NOT NULL,
            producer_version TEXT NOT NULL,
            found INTEGER NOT NULL,         -- faces the detector found, before the per-photo cap
            scanned_at TEXT NOT NULL,
            PRIMARY KEY (hash, producer_version)
        );
        -- one face: keyed by content hash and box (relative to the upright image), so moves keep it
        CREATE TABLE faces (
            id INTEGER PRIMARY KEY,
            hash TEXT NOT NULL,
            producer_version TEXT NOT NULL,
            x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
            score REAL NOT NULL,
            vector BLOB NOT NULL,           -- float32 identity vector
            person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
            assigned_by TEXT CHECK (assigned_by IN ('auto', 'user')),  -- 'user' is never changed by a run
            created_at TEXT NOT NULL,
            UNIQUE (hash, producer_version, x, y, w, h)
        );
        CREATE INDEX faces_hash ON faces(hash);
        CREATE INDEX faces_person ON faces(person_id);
        """,
    )


def _v6_events(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- derived from photos' times and places (events/), rebuilt when they change; never edited by hand
        CREATE TABLE trips (
            id INTEGER PRIMARY KEY,
            start_local TEXT NOT NULL, end_local TEXT NOT NULL,
            days INTEGER NOT NULL,
            photos INTEGER NOT NULL,
            places TEXT NOT NULL,          -- JSON: cities and countries in both languages
            title_zh TEXT NOT NULL, title_en TEXT NOT NULL,
            cover_photo_id INTEGER
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            trip_id INTEGER REFERENCES trips(id) ON DELETE SET NULL,
            start_local TEXT NOT NULL, end_local TEXT NOT NULL,
            start_utc TEXT NOT NULL, end_utc TEXT NOT NULL,
            photos INTEGER NOT NULL,
            lat REAL, lon REAL,
            home_km REAL,                  -- distance from that month's home; NULL without any position
            places TEXT NOT NULL,
            title_zh TEXT NOT NULL, title_en TEXT NOT NULL,
            cover_photo_id INTEGER
        );
        CREATE INDEX events_trip ON events(trip_id);
        CREATE TABLE event_photos (
            photo_id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE
        );
        CREATE INDEX event_photos_event ON event_photos(event_id);
        -- what a derived table was built from (the catalog state it saw)
        CREATE TABLE derived_state (
            name TEXT PRIMARY KEY,
            token TEXT NOT NULL,
            built_at TEXT NOT NULL
        );
        -- the vision model's yes/no check of a condition on one photo ("wearing a hat"), cached
        CREATE TABLE verifications (
            hash TEXT NOT NULL,
            condition TEXT NOT NULL,         -- normalised condition text
            producer_version TEXT NOT NULL,
            probability REAL NOT NULL,       -- P(yes) from the model's own token scores
            created_at TEXT NOT NULL,
            PRIMARY KEY (hash, condition, producer_version)
        );
        """,
    )


def _v7_birthdays(db: sqlite3.Connection) -> None:
    # '1990-05-03', or '--05-03' when the year is not known; "妈妈的生日" searches photos on that day
    run_script(db, "ALTER TABLE people ADD COLUMN birthday TEXT;")


def _v8_similar(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- perceptual hashes of a photo's thumbnail and its near-duplicate group (media/similar.py), keyed
        -- by content hash so moves and renames keep them; recomputed when the algorithm's version changes
        CREATE TABLE similar_hashes (
            hash TEXT PRIMARY KEY,
            producer_version TEXT NOT NULL,   -- the hash algorithm's version
            phash INTEGER NOT NULL,           -- 64-bit DCT hash of the whole picture (as a signed integer)
            dhash INTEGER NOT NULL,           -- 64-bit gradient hash
            extra BLOB NOT NULL,              -- centre-crop hashes and a coarse colour layout
            flat INTEGER NOT NULL DEFAULT 0,  -- too little structure to compare (blank frame): never grouped
            group_id INTEGER,                 -- the group's smallest photo id when it formed; NULL when alone
            grouped_at TEXT,                  -- when grouping compared it with the rest; NULL: not yet
            created_at TEXT NOT NULL
        );
        CREATE INDEX similar_hashes_group ON similar_hashes(group_id) WHERE group_id IS NOT NULL;
        CREATE INDEX similar_hashes_todo ON similar_hashes(hash) WHERE grouped_at IS NULL;
        """,
    )


def _v9_videos(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- a video is a row of photos (identity, files, time, place and trips work the same) with media =
        -- 'video'; its thumbnails are its poster
        ALTER TABLE photos ADD COLUMN media TEXT NOT NULL DEFAULT 'photo';  -- photo | video
        ALTER TABLE photos ADD COLUMN duration_s REAL;
        ALTER TABLE photos ADD COLUMN video TEXT;  -- JSON: codec, audio codec, fps, rotation, container
        CREATE INDEX photos_media ON photos(media) WHERE media != 'photo';
        -- a motion photo (Google, Samsung) carries its video inside: it starts this many bytes from the end
        ALTER TABLE photos ADD COLUMN motion_offset INTEGER;
        -- a live photo's video beside the still (IMG_1234.HEIC + IMG_1234.MOV): one item, the still is it
        ALTER TABLE files ADD COLUMN motion_path TEXT;
        -- the frames of a video that are analysed like photos: frame_hash is the subject of their analyses
        -- and thumbnails (derived from the video's hash and the time)
        CREATE TABLE keyframes (
            video_hash TEXT NOT NULL,
            t REAL NOT NULL,              -- seconds from the start
            frame_hash TEXT NOT NULL UNIQUE,
            cut REAL NOT NULL DEFAULT 0,  -- the scene-change score that chose it; 0 for a periodic look
            PRIMARY KEY (video_hash, t)
        );
        """,
    )


def _v10_face_owners(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- the photo or video a face was seen in: a video's faces are found in its keyframes (faces.hash is
        -- the keyframe's, where the box lies), and belong to the video
        ALTER TABLE faces ADD COLUMN owner TEXT;
        UPDATE faces SET owner = hash;
        CREATE INDEX faces_owner ON faces(owner);
        """,
    )


def _v11_change_counter(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- moves on every change search depends on (files, photos, analyses), so the search indexes see in
        -- O(1) whether the catalog changed, instead of counting every table after each commit; `instance`
        -- tells a catalog made afresh from the one the indexes last saw. A file's last_seen, size and mtime
        -- (written for every file on every run) do not move it.
        CREATE TABLE change_counter (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            instance TEXT NOT NULL,
            n INTEGER NOT NULL
        );
        INSERT INTO change_counter VALUES (1, lower(hex(randomblob(8))), 0);
        CREATE TRIGGER files_insert_counts AFTER INSERT ON files BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER files_update_counts
        AFTER UPDATE OF path, root_id, photo_id, status, motion_path ON files BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER files_delete_counts AFTER DELETE ON files BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER photos_insert_counts AFTER INSERT ON photos BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER photos_update_counts AFTER UPDATE ON photos BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER photos_delete_counts AFTER DELETE ON photos BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER analyses_insert_counts AFTER INSERT ON analyses BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER analyses_update_counts AFTER UPDATE ON analyses BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        CREATE TRIGGER analyses_delete_counts AFTER DELETE ON analyses BEGIN
            UPDATE change_counter SET n = n + 1;
        END;
        """,
    )


def _v12_visible_photos(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- how many existing files (status ok) each photo has, kept by triggers: "visible" is then a column
        -- to read and index instead of a lookup in files for every photo (11 s -> 1.7 s to list a million)
        ALTER TABLE photos ADD COLUMN files_ok INTEGER NOT NULL DEFAULT 0;
        UPDATE photos SET files_ok =
            (SELECT count(*) FROM files f WHERE f.photo_id = photos.id AND f.status = 'ok');
        CREATE INDEX photos_visible_taken ON photos(taken_at) WHERE files_ok > 0;
        CREATE TRIGGER files_ok_insert AFTER INSERT ON files WHEN new.status = 'ok' BEGIN
            UPDATE photos SET files_ok = files_ok + 1 WHERE id = new.photo_id;
        END;
        CREATE TRIGGER files_ok_delete AFTER DELETE ON files WHEN old.status = 'ok' BEGIN
            UPDATE photos SET files_ok = files_ok - 1 WHERE id = old.photo_id;
        END;
        CREATE TRIGGER files_ok_update AFTER UPDATE OF status, photo_id ON files
        WHEN (old.status = 'ok') != (new.status = 'ok') OR old.photo_id IS NOT new.photo_id BEGIN
            UPDATE photos SET files_ok = files_ok - 1 WHERE id = old.photo_id AND old.status = 'ok';
            UPDATE photos SET files_ok = files_ok + 1 WHERE id = new.photo_id AND new.status = 'ok';
        END;
        """,
    )


def _v13_month_index(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- "flowers in spring", "冬天的树": a month filter reads this index instead of every photo
        -- (counting three months' matches among 100,000 photos: 149 ms -> 19 ms). The expression is the
        -- one Catalog._filter_where writes, which is how SQLite knows to use it.
        CREATE INDEX photos_visible_month ON photos(CAST(substr(taken_at, 6, 2) AS INTEGER), taken_at)
            WHERE files_ok > 0;
        """,
    )


def _v14_visible_place_indexes(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- "上海的夜景", "去年夏天在青岛": a place filter (with a time) answered from an index that holds
        -- every column it reads, not a lookup of each photo's row (a city's 88,747 of a million photos:
        -- 178 ms -> 37 ms)
        CREATE INDEX photos_visible_city ON photos(place_city, country_code, place_region, taken_at)
            WHERE files_ok > 0;
        CREATE INDEX photos_visible_region ON photos(place_region, country_code, taken_at) WHERE files_ok > 0;
        CREATE INDEX photos_visible_country ON photos(country_code, taken_at) WHERE files_ok > 0;
        """,
    )


def _v15_filter_counter(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- moves only when what a time or place filter reads changes (a photo added or removed, its time,
        -- place or visibility), not with every analysis: search keeps those fields in memory
        -- (catalog/columns.py) and reads them again only then (~1 s for a million photos)
        CREATE TABLE filter_counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
        INSERT INTO filter_counter VALUES (1, 0);
        CREATE TRIGGER photos_insert_filter_counts AFTER INSERT ON photos BEGIN
            UPDATE filter_counter SET n = n + 1;
        END;
        CREATE TRIGGER photos_update_filter_counts
        AFTER UPDATE OF id, taken_at, place_city, place_region, country_code, files_ok ON photos BEGIN
            UPDATE filter_counter SET n = n + 1;
        END;
        CREATE TRIGGER photos_delete_filter_counts AFTER DELETE ON photos BEGIN
            UPDATE filter_counter SET n = n + 1;
        END;
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_foundation,
    _v2_analyses,
    _v3_feedback,
    _v4_place_indexes,
    _v5_people,
    _v6_events,
    _v7_birthdays,
    _v8_similar,
    _v9_videos,
    _v10_face_owners,
    _v11_change_counter,
    _v12_visible_photos,
    _v13_month_index,
    _v14_visible_place_indexes,
    _v15_filter_counter,
]
