"""Model-level evaluation for the model card: PSNR, colourfulness (and its ratio and delta-CF to
the truth's) and fd_lite0 on held-out photos and clip frames.

Every model goes through `vidcolor.pipeline.Colorizer.colorize`, the same L*-preserving path as
`vidcolor run`, so the numbers describe the product. The gray baseline is ab = 0 (the input's L
shown as gray). Frames are coloured one at a time here (no temporal smoothing): this measures the
model, `vidcolor eval` measures the video pipeline. fd_lite0 (`vidcolor.fd`) is the Fréchet
distance between a model's coloured set and the true colour set on Lite0 ImageNet features (not
FID); the truth's features are computed once per set. Every set is scored whole: the ratio and
delta-CF are of the set's mean colourfulness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from vidcolor.color import gray_rgb
from vidcolor.fd import FeatureStats, Lite0Features, stats_distance
from vidcolor.metrics import colorfulness_frames, colorfulness_ratio, delta_cf, psnr_frames
from vidcolor.pipeline import Colorizer

from .data import IMAGE_EXTS, iter_video_frames, read_image


@dataclass
class Score:
    psnr: float
    colorfulness: float
    colorfulness_ref: float
    count: int
    colorfulness_ratio: float = math.nan  # colorfulness / colorfulness_ref, 1 is right, 0 gray
    delta_cf: float = math.nan  # colorfulness - colorfulness_ref, 0 is right
    fd_lite0: float = math.nan  # lower is better; NaN when not computed (--no-fd, no training extra)


def iter_photos(folder: Path) -> Iterator[torch.Tensor]:
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS):
        yield torch.from_numpy(read_image(path)).permute(2, 0, 1)[None].float() / 255.0


def iter_pack_frames(pack: Path, split: str = "val", limit: int | None = None) -> Iterator[torch.Tensor]:
    """A pack split's frames whole, at their stored size: the validation set for choosing
    recipes, checkpoints and settings (never the evaluation folder). `limit`: that many,
    spread evenly over the split."""
    from .data import MemoryFrames, spread
    images = MemoryFrames(pack, split).images
    for i in spread(len(images), limit or len(images)):
        yield images[i][None].float() / 255.0


def iter_clip_frames(path: Path, every: int) -> Iterator[torch.Tensor]:
    for rgb in iter_video_frames(path, every):
        yield torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def score(colorizer: Colorizer | None, images: list[torch.Tensor], features: Lite0Features | None = None,
          ref_stats: FeatureStats | None = None) -> Score:
    """Mean per-image PSNR and colourfulness, the set's colourfulness ratio and delta-CF, and (given
    `features` and the truth's `ref_stats`) fd_lite0; `colorizer` None is the gray baseline."""
    psnrs, colours, refs = [], [], []
    pred_stats = FeatureStats()
    for rgb in images:
        pred = gray_rgb(rgb) if colorizer is None else colorizer.colorize(rgb)
        psnrs += psnr_frames(pred, rgb)
        colours += colorfulness_frames(pred)
        refs += colorfulness_frames(rgb)
        if features is not None:
            pred_stats.add(features(pred))
    n = len(psnrs)
    cf, cf_ref = sum(colours) / n, sum(refs) / n
    fd = stats_distance(pred_stats, ref_stats) if features is not None and ref_stats is not None else math.nan
    return Score(sum(psnrs) / n, cf, cf_ref, n, colorfulness_ratio(cf, cf_ref), delta_cf(cf, cf_ref), fd)


def evaluate(models: dict[str, Path | None], photos: Path | None, clips: list[Path], every: int = 5,
             render_size: int = 256, device: str = "auto",
             features: Lite0Features | None = None, pack: Path | None = None,
             pack_max: int | None = None) -> dict[str, dict[str, Score]]:
    """{model name: {"val": Score, "photos": Score, "clips": Score}}; a model path None is the gray
    baseline. `pack`: its validation split. `features`: also fd_lite0 of each model's set against
    the truth (else NaN)."""
    sets = {}
    if pack:
        sets["val"] = list(iter_pack_frames(pack, limit=pack_max))
    if photos:
        sets["photos"] = list(iter_photos(photos))
    if clips:
        sets["clips"] = [f for clip in clips for f in iter_clip_frames(clip, every)]
    truth = {name: features.stats(images) for name, images in sets.items()} if features is not None else {}
    results = {}
    for name, path in models.items():
        colorizer = None if path is None else Colorizer(path, device=device, render_size=render_size,
                                                       smoothing="none")
        results[name] = {set_name: score(colorizer, images, features, truth.get(set_name))
                         for set_name, images in sets.items()}
    return results
