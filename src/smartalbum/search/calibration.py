"""Cosine similarity -> evidence in [0, 1], per embedding model: below `lo` is unrelated, `hi` and above is as
good as it gets. Measured with `python bench/quality.py --calibrate` on Flickr8k-CN val (queries against their
own description and against random other descriptions); see README, "Choosing the embedding model".
"""

from __future__ import annotations

# model name (as the embedder reports it) -> (lo, hi)
DENSE_CALIBRATION: dict[str, tuple[float, float]] = {
    # unrelated pairs: median 0.06, 95th percentile 0.33; true pairs: 5th percentile 0.38, median 0.65
    "sentence-transformers/all-MiniLM-L6-v2": (0.30, 0.70),
}
# for a model not measured here: most sentence embedders put unrelated texts in 0.0-0.4
DEFAULT_CALIBRATION = (0.35, 0.75)


def calibration(model: str) -> tuple[float, float]:
    return DENSE_CALIBRATION.get(model, DEFAULT_CALIBRATION)
