"""The cache of visual verifications: P(yes) that a photo shows a condition, per producer version.

Table `verifications(hash, condition, producer_version, probability, created_at)` (schema v6). Keys are the
photo's content hash, the condition as `normalise_condition` writes it, and the verifier's version (model
id + prompt version), so a new model or prompt asks again while old answers stay until pruned.

- `normalise_condition(text) -> str`: NFKC, case-folded, whitespace squeezed to single spaces and trimmed.
- `VerificationStore(catalog)`: `get(hashes, condition, version) -> dict[hash, float]` (only the cached
  ones) and `put(version, condition, {hash: probability})` (one transaction; replaces older answers for the
  same key; NaN is never stored, other values are clamped to [0, 1]). Both normalise the condition.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping

from smartalbum.catalog.db import Catalog, utcnow

_CHUNK = 500  # bound variables per query, well under SQLite's limit


def normalise_condition(text: str) -> str:
    """The cache's form of a condition: NFKC, case-folded, runs of whitespace as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class VerificationStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    def get(self, hashes: Iterable[str], condition: str, version: str) -> dict[str, float]:
        """Cached P(yes) of `condition` for those of `hashes` that `version` has answered."""
        wanted = list(dict.fromkeys(hashes))
        cond = normalise_condition(condition)
        out: dict[str, float] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"""SELECT hash, probability FROM verifications
                    WHERE condition = ? AND producer_version = ? AND hash IN ({marks})""",
                (cond, version, *chunk),
            )
            out.update({str(r[0]): float(r[1]) for r in rows})
        return out

    def put(self, version: str, condition: str, probabilities: Mapping[str, float]) -> int:
        """Store answers of `version` for `condition`; returns how many rows were written."""
        cond = normalise_condition(condition)
        now = utcnow()
        rows = [
            (h, cond, version, min(1.0, max(0.0, float(p))), now)
            for h, p in probabilities.items()
            if not math.isnan(float(p))
        ]
        if not rows:
            return 0
        with self.catalog.transaction():
            self.db.executemany(
                """INSERT INTO verifications(hash, condition, producer_version, probability, created_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(hash, condition, producer_version) DO UPDATE SET
                       probability = excluded.probability, created_at = excluded.created_at""",
                rows,
            )
        return len(rows)
