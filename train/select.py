"""Choosing a run's checkpoint by validation, not by eye (DeOldify's NoGAN stops its short GAN
phase before the colours go wrong; we let the validation metrics of metrics.csv decide).

Rule: among the checkpoints whose validation PSNR is at least the gray baseline's minus
`psnr_margin` dB (colour that is worse than none is wrong colour), keep those whose colourfulness is
at least CF_FLOOR of the truth's when any is (fd_lite0 alone favours slightly muted colour: on run s7
it picked CF 0.73 over CF 0.82 for 1 point of fd), and take the lowest fd_lite0; runs
validated without fd_lite0 take the highest colourfulness ratio (capped at 1) instead. Where only
some checkpoints have fd_lite0 (switched on for the GAN phase), only those compete. When no
checkpoint qualifies, the one with the highest PSNR.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

PSNR_MARGIN_DB = 0.0
CF_FLOOR = 0.8  # colourfulness ratio a default model should reach (issue 11's target)


def read_metrics(run: Path) -> list[dict[str, float]]:
    path = Path(run) / "metrics.csv"
    if not path.exists():
        return []
    rows = []
    for raw in csv.DictReader(path.open()):
        rows.append({k: float(v) for k, v in raw.items() if k and v not in ("", None)})
    return rows


def pick_best(rows: list[dict[str, float]], psnr_margin: float = PSNR_MARGIN_DB) -> dict[str, Any] | None:
    """The chosen metrics row (see the module docstring), or None for a run without validation."""
    scored = [r for r in rows if "val_psnr" in r]
    if not scored:
        return None
    with_fd = [r for r in scored if "val_fd_lite0" in r]
    if with_fd:  # a run that switched fd_lite0 on part-way (for its GAN phase) is judged by it
        scored = with_fd
    eligible = [r for r in scored if r["val_psnr"] >= r.get("val_psnr_gray", float("-inf")) - psnr_margin]
    if not eligible:
        return max(scored, key=lambda r: r["val_psnr"])
    def ratio(r: dict[str, float]) -> float:
        return min(1.0, r.get("val_colorfulness", 0.0) / max(1e-6, r.get("val_colorfulness_truth", 1.0)))

    if with_fd:
        vivid = [r for r in eligible if "val_colorfulness" in r and ratio(r) >= CF_FLOOR]
        return min(vivid or eligible, key=lambda r: (r["val_fd_lite0"], -r["val_psnr"]))
    return max(eligible, key=lambda r: (ratio(r), r["val_psnr"]))
