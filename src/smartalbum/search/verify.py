"""Verification of candidate photos against a visual condition: the rerank step of a question.

`verify_candidates(catalog, settings, verifier, photos, condition, *, max_photos=48, max_seconds=60.0,
batch_size=8) -> VerifyReport`

- `photos`: [(photo_id, content hash)], best candidates first. Only the first `max_photos` (distinct ids)
  are considered, so what is considered never depends on the cache; the rest are skipped ("max_photos").
- The condition is normalised (catalog/verifications.py `normalise_condition`); that form is what the
  model is asked and what the cache is keyed by, with the verifier's version.
- Cached answers are used first. The others are checked in order, `batch_size` photos per
  `verifier.probabilities` call, on each photo's large thumbnail (`thumbs/<h2>/<hash>_<largest size>.jpg`).
  A batch starts only while the time spent so far, plus the previous batch's duration, stays within
  `max_seconds`; what is left is skipped ("max_seconds"). `max_seconds=0` checks nothing new.
- New answers are stored after each batch (a cache that cannot be written is a note, not a failure).
- Never raises for a photo: an unreadable thumbnail or a photo the model could not check (NaN, or a batch
  that fails again one photo at a time) goes to `errors` and is not cached. A model that cannot be used
  (ModelError, or `verifier=None`) skips what is not cached ("no_model") and says why in `note`.

Every considered photo ends in exactly one of `probabilities` (checked now or cached), `errors` or
`skipped_ids`; `checked + cached + len(errors) + skipped == len(distinct photo ids)`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from smartalbum.catalog.db import Catalog
from smartalbum.catalog.verifications import VerificationStore, normalise_condition
from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.ingest.decode import thumb_path
from smartalbum.vision.verify import Verifier

log = logging.getLogger(__name__)

MAX_PHOTOS = 48
MAX_SECONDS = 60.0
BATCH_SIZE = 8

SKIP_CAP = "max_photos"
SKIP_TIME = "max_seconds"
SKIP_NO_MODEL = "no_model"


@dataclass
class VerifyReport:
    """What one verification run did; see the module docstring."""

    condition: str  # normalised
    version: str | None  # the verifier's version the answers belong to (None: no verifier)
    probabilities: dict[int, float] = field(default_factory=dict)  # photo id -> P(yes), checked or cached
    checked: int = 0  # photos the model checked in this run
    cached: int = 0  # photos answered from the cache
    skipped_ids: list[int] = field(default_factory=list)  # not checked: caps, or no model
    skipped_reasons: dict[str, int] = field(default_factory=dict)  # "max_photos" / "max_seconds" / "no_model"
    errors: dict[int, str] = field(default_factory=dict)  # photo id -> why it could not be checked
    elapsed_s: float = 0.0
    note: str | None = None  # no model, or the cache could not be read or written

    @property
    def skipped(self) -> int:
        return len(self.skipped_ids)

    def skip(self, photo_ids: Sequence[int], reason: str) -> None:
        if photo_ids:
            self.skipped_ids.extend(photo_ids)
            self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + len(photo_ids)

    def as_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "version": self.version,
            "checked": self.checked,
            "cached": self.cached,
            "skipped": self.skipped,
            "skipped_reasons": dict(self.skipped_reasons),
            "errors": len(self.errors),
            "elapsed_s": self.elapsed_s,
            "note": self.note,
        }


def verify_candidates(
    catalog: Catalog,
    settings: Settings,
    verifier: Verifier | None,
    photos: Sequence[tuple[int, str]],
    condition: str,
    *,
    max_photos: int = MAX_PHOTOS,
    max_seconds: float = MAX_SECONDS,
    batch_size: int = BATCH_SIZE,
) -> VerifyReport:
    """P(yes) of `condition` for the first `max_photos` of `photos`, cached, within `max_seconds`."""
    started = time.monotonic()
    cond = normalise_condition(condition)
    report = VerifyReport(cond, verifier.version if verifier is not None else None)
    distinct: dict[int, str] = {}
    for photo_id, photo_hash in photos:
        distinct.setdefault(photo_id, photo_hash)
    ordered = list(distinct.items())
    considered = ordered[: max(0, max_photos)]
    report.skip([pid for pid, _ in ordered[len(considered) :]], SKIP_CAP)
    try:
        if verifier is None:
            report.note = "no vision model to verify with"
            report.skip([pid for pid, _ in considered], SKIP_NO_MODEL)
            return report
        _run(catalog, settings, verifier, considered, cond, report, started, max_seconds, max(1, batch_size))
        return report
    finally:
        report.elapsed_s = round(time.monotonic() - started, 3)
        log.info(
            "verified %r: %d checked, %d cached, %d skipped, %d errors in %.2f s",
            cond,
            report.checked,
            report.cached,
            report.skipped,
            len(report.errors),
            report.elapsed_s,
        )


def _run(
    catalog: Catalog,
    settings: Settings,
    verifier: Verifier,
    considered: list[tuple[int, str]],
    cond: str,
    report: VerifyReport,
    started: float,
    max_seconds: float,
    batch_size: int,
) -> None:
    store = VerificationStore(catalog)
    try:
        cache = store.get([h for _, h in considered], cond, verifier.version)
    except sqlite3.Error as exc:
        cache = {}
        report.note = f"the verification cache could not be read: {exc}"
    ids_by_hash: dict[str, list[int]] = {}
    for photo_id, photo_hash in considered:
        if photo_hash in cache:
            report.probabilities[photo_id] = cache[photo_hash]
            report.cached += 1
        else:
            ids_by_hash.setdefault(photo_hash, []).append(photo_id)
    pending = list(ids_by_hash)
    size = max(settings.thumb_sizes)
    last_batch_s = 0.0
    for start in range(0, len(pending), batch_size):
        spent = time.monotonic() - started
        if spent >= max_seconds or spent + last_batch_s > max_seconds:
            report.skip([pid for h in pending[start:] for pid in ids_by_hash[h]], SKIP_TIME)
            return
        hashes: list[str] = []
        images: list[Image.Image] = []
        for photo_hash in pending[start : start + batch_size]:
            try:
                images.append(_thumbnail(settings, photo_hash, size))
                hashes.append(photo_hash)
            except Exception as exc:  # missing, truncated, not an image: this photo only
                for pid in ids_by_hash[photo_hash]:
                    report.errors[pid] = f"thumbnail unreadable ({exc}); re-run ingestion"
        if not images:
            continue
        batch_started = time.monotonic()
        try:
            answers = _answers(verifier, images, cond)
        except ModelError as exc:
            report.note = f"the vision model could not be used: {exc}"
            report.skip(
                [pid for h in pending[start:] for pid in ids_by_hash[h] if pid not in report.errors],
                SKIP_NO_MODEL,
            )
            return
        last_batch_s = time.monotonic() - batch_started
        new: dict[str, float] = {}
        for photo_hash, (p, error) in zip(hashes, answers, strict=True):
            for pid in ids_by_hash[photo_hash]:
                if error is not None:
                    report.errors[pid] = error
                else:
                    report.probabilities[pid] = p
                    report.checked += 1
            if error is None:
                new[photo_hash] = p
        try:
            store.put(verifier.version, cond, new)  # the version after the call (a server may fall back)
        except sqlite3.Error as exc:
            report.note = f"the verification cache could not be written: {exc}"


def _thumbnail(settings: Settings, photo_hash: str, size: int) -> Image.Image:
    with Image.open(thumb_path(settings.thumbs_dir, photo_hash, size)) as img:
        return img.convert("RGB")


def _answers(verifier: Verifier, images: list[Image.Image], cond: str) -> list[tuple[float, str | None]]:
    """(P(yes), None) or (nan, why) per image; a failed batch is tried again one image at a time."""
    try:
        return _checked(verifier, images, verifier.probabilities(images, cond))
    except ModelError:
        raise
    except Exception as exc:
        if len(images) == 1:
            return [(math.nan, f"the model could not check it: {type(exc).__name__}: {exc}"[:500])]
        log.warning("verification batch of %d failed (%s); one photo at a time", len(images), exc)
    out: list[tuple[float, str | None]] = []
    for image in images:
        out.extend(_answers(verifier, [image], cond))
    return out


def _checked(
    verifier: Verifier, images: list[Image.Image], probs: list[float]
) -> list[tuple[float, str | None]]:
    if len(probs) != len(images):
        raise ValueError(f"the verifier answered {len(probs)} probabilities for {len(images)} images")
    reasons: dict[int, str] = getattr(verifier, "last_errors", None) or {}
    out: list[tuple[float, str | None]] = []
    for i, p in enumerate(probs):
        value = float(p)
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            why = reasons.get(i) or f"the model gave no probability ({value!r})"
            out.append((math.nan, f"the model could not check it: {why}"[:500]))
        else:
            out.append((value, None))
    return out
