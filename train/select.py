"""Choosing the checkpoint to ship by the recipe's rule, never by eye.

The rule (`select_psnr_margin`, `select_cf_floor` in the recipe): a checkpoint is eligible when its PSNR is
at least the gray baseline's minus the margin (colour that is worse than none is wrong colour); among the
eligible, those whose colourfulness ratio reaches the floor are preferred, since fd_lite0 alone favours
slightly muted colour; the lowest fd_lite0 wins. Without fd_lite0, the highest colourfulness ratio (capped
at 1) wins. When none is eligible, the highest PSNR.

Rows are plain dicts with `step`, `psnr`, `psnr_gray` and, when measured, `cf_ratio` and `fd`: the
product-path learning curve of `train evaluate RUN` (curve.csv) or the validation during training
(metrics.csv, through `from_metrics`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_csv(path: Path) -> list[dict[str, float | str]]:
    if not Path(path).exists():
        return []
    return [{k: (_num(v) if k != "set" else v) for k, v in raw.items() if k} for raw in csv.DictReader(open(path))]


def read_metrics(run: Path) -> list[dict[str, Any]]:
    return read_csv(Path(run) / "metrics.csv")


def from_metrics(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """metrics.csv rows as rule rows."""
    out = []
    for r in rows:
        if "val_psnr" not in r or math.isnan(r["val_psnr"]):
            continue
        truth = r.get("val_colorfulness_truth", math.nan)
        out.append({"step": r["step"], "psnr": r["val_psnr"], "psnr_gray": r.get("val_psnr_gray", -math.inf),
                    "cf_ratio": r.get("val_colorfulness", math.nan) / truth if truth and truth > 0 else math.nan,
                    "fd": r.get("val_fd_lite0", math.nan)})
    return out


def pick_best(rows: list[dict[str, float]], psnr_margin: float, cf_floor: float) -> dict[str, float] | None:
    """The chosen row (see the module docstring), or None when no row was validated."""
    if not rows:
        return None
    with_fd = [r for r in rows if not math.isnan(r.get("fd", math.nan))]
    scored = with_fd or rows  # a run that switched fd_lite0 on part-way is judged by it
    eligible = [r for r in scored if r["psnr"] >= r["psnr_gray"] - psnr_margin]
    if not eligible:
        return max(scored, key=lambda r: r["psnr"])

    def ratio(r: dict[str, float]) -> float:
        v = r.get("cf_ratio", math.nan)
        return 0.0 if math.isnan(v) else min(1.0, v)

    if with_fd:
        vivid = [r for r in eligible if ratio(r) >= cf_floor]
        return min(vivid or eligible, key=lambda r: (r["fd"], -r["psnr"]))
    return max(eligible, key=lambda r: (ratio(r), r["psnr"]))


def ship_check(row: dict[str, float], shipped: dict[str, float], fd_gain: float, cf_range: list[float],
               psnr_margin: float) -> list[tuple[str, bool]]:
    """The recipe's ship rule for a chosen row against the shipped model's row on the same validation:
    (criterion in words, met) for fd_lite0, colourfulness ratio and PSNR. Speed is measured apart."""
    fd_limit = (1 - fd_gain) * shipped["fd"]
    lo, hi = cf_range
    return [(f"fd_lite0 {row['fd']:.1f} <= {fd_limit:.1f} ({fd_gain:.0%} below the shipped {shipped['fd']:.1f})",
             row["fd"] <= fd_limit),
            (f"CF ratio {row['cf_ratio']:.2f} within {lo:g}-{hi:g}", lo <= row["cf_ratio"] <= hi),
            (f"PSNR {row['psnr']:.2f} >= {shipped['psnr'] - psnr_margin:.2f} (the shipped {shipped['psnr']:.2f} "
             f"- {psnr_margin:g} dB)", row["psnr"] >= shipped["psnr"] - psnr_margin)]
