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

from .pack import IMAGE_EXTS, iter_video_frames, read_image, spread


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


def pack_frames(pack: Path, split: str = "val", limit: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """A pack split's (group, frame) pairs, frames whole at their stored size: the validation set for
    choosing recipes, checkpoints and settings (never the evaluation folder). `limit`: that many, spread
    evenly over the split. `pack`: a pack folder or a tensor pack."""
    from .datasets import FramePack, TensorFrames, is_tensor_pack
    frames = TensorFrames(pack, split) if is_tensor_pack(pack) else FramePack(pack, split, augment=False)
    picked = spread(len(frames), limit or len(frames))
    if isinstance(frames, TensorFrames):
        return [(frames.group_of(i), frames.whole([i])) for i in picked]
    return [(frames.group_of(i), frames.raw(i)[None].float() / 255.0) for i in picked]


def iter_clip_frames(path: Path, every: int) -> Iterator[torch.Tensor]:
    for rgb in iter_video_frames(path, every):
        yield torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


@dataclass
class Measured:
    """One image's numbers, kept so that any subset of a set can be summarised without colouring again."""
    psnr: float
    colorfulness: float
    colorfulness_ref: float
    features: torch.Tensor | None


def measure(colorizer: Colorizer | None, images: list[torch.Tensor],
            features: Lite0Features | None = None) -> list[Measured]:
    """Per-image PSNR, colourfulness (prediction and truth) and Lite0 features; `colorizer` None
    is the gray baseline."""
    out = []
    for rgb in images:
        pred = gray_rgb(rgb) if colorizer is None else colorizer.colorize(rgb)
        feats = None if features is None else features(pred)
        out += [Measured(p, c, r, None if feats is None else feats[i:i + 1])
                for i, (p, c, r) in enumerate(zip(psnr_frames(pred, rgb), colorfulness_frames(pred),
                                                  colorfulness_frames(rgb)))]
    return out


def summarise(measured: list[Measured], ref_stats: FeatureStats | None = None) -> Score:
    """Mean PSNR and colourfulness, the set's colourfulness ratio and delta-CF, and (given the
    truth's `ref_stats` and measured features) fd_lite0."""
    n = len(measured)
    cf = sum(m.colorfulness for m in measured) / n
    cf_ref = sum(m.colorfulness_ref for m in measured) / n
    fd = math.nan
    if ref_stats is not None and measured and measured[0].features is not None:
        fd = stats_distance(_stats([m.features for m in measured]), ref_stats)
    return Score(sum(m.psnr for m in measured) / n, cf, cf_ref, n, colorfulness_ratio(cf, cf_ref),
                 delta_cf(cf, cf_ref), fd)


def score(colorizer: Colorizer | None, images: list[torch.Tensor], features: Lite0Features | None = None,
          ref_stats: FeatureStats | None = None) -> Score:
    """`summarise(measure(...))`: the whole set's Score."""
    return summarise(measure(colorizer, images, features), ref_stats)


def evaluate(models: dict[str, Path | None], photos: Path | None, clips: list[Path], every: int = 5,
             render_size: int = 256, device: str = "auto",
             features: Lite0Features | None = None, pack: Path | None = None,
             pack_max: int | None = None, by_group: bool = False,
             saturations: tuple[float, ...] = (1.0,)) -> dict[str, dict[str, Score]]:
    """{model name: {"val": Score, "photos": Score, "clips": Score}}; a model path None is the gray
    baseline. `pack`: its validation split; `by_group` adds one "val:GROUP" set per source group of
    it, since the split's sizes follow the groups' (faces are a third of it) and one easy group
    can hide what happens on the others. `features`: also fd_lite0 of each model's set against the
    truth (else NaN). `saturations`: each model is also scored at these `run --saturation` values,
    named "MODEL @S" (1 keeps the plain name). Models run in torch (their fp32 weights), never in an int8
    copy, so that a candidate and the shipped model are compared as weights."""
    sets: dict[str, list[torch.Tensor]] = {}
    groups: dict[str, list[int]] = {}  # "val:GROUP" -> its frames' indices in sets["val"]
    if pack:
        grouped = pack_frames(pack, limit=pack_max)
        sets["val"] = [frame for _, frame in grouped]
        if by_group:
            for i, (group, _) in enumerate(grouped):
                groups.setdefault(f"val:{group}", []).append(i)
    if photos:
        sets["photos"] = list(iter_photos(photos))
    if clips:
        sets["clips"] = [f for clip in clips for f in iter_clip_frames(clip, every)]
    truth: dict[str, FeatureStats] = {}
    if features is not None:
        per_image = {name: [features(image) for image in images] for name, images in sets.items()}
        truth = {name: _stats(feats) for name, feats in per_image.items()}
        truth.update({name: _stats([per_image["val"][i] for i in idx]) for name, idx in groups.items()})
    results = {}
    runs = [(name, None, 1.0) if path is None else (name if sat == 1.0 else f"{name} @{sat:g}", path, sat)
            for name, path in models.items() for sat in (saturations if path is not None else (1.0,))]
    for name, path, sat in runs:
        colorizer = None if path is None else Colorizer(path, device=device, render_size=render_size,
                                                       smoothing="none", saturation=sat, engine="torch")
        results[name] = {}
        for set_name, images in sets.items():
            measured = measure(colorizer, images, features)
            results[name][set_name] = summarise(measured, truth.get(set_name))
            if set_name == "val":
                for group, idx in sorted(groups.items()):
                    results[name][group] = summarise([measured[i] for i in idx], truth.get(group))
    return results


def _stats(features: list[torch.Tensor]) -> FeatureStats:
    """Summary of (B,1280) feature batches: per-image features are kept rather than per-image
    summaries, whose 1280x1280 sums would take 13 MB each."""
    total = FeatureStats()
    for f in features:
        total.add(f)
    return total
