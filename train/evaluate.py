"""Model-level evaluation for the model card: PSNR and colourfulness on held-out photos and clip frames.

Every model goes through `vidcolor.pipeline.Colorizer.colorize`, the same L*-preserving path as
`vidcolor run`, so the numbers describe the product. The gray baseline is ab = 0 (the input's L
shown as gray). Frames are coloured one at a time here (no temporal smoothing): this measures the
model, `vidcolor eval` measures the video pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from vidcolor.color import gray_rgb
from vidcolor.metrics import colorfulness_frames, psnr_frames
from vidcolor.pipeline import Colorizer

from .data import IMAGE_EXTS, iter_video_frames, read_image


@dataclass
class Score:
    psnr: float
    colorfulness: float
    colorfulness_ref: float
    count: int


def iter_photos(folder: Path) -> Iterator[torch.Tensor]:
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS):
        yield torch.from_numpy(read_image(path)).permute(2, 0, 1)[None].float() / 255.0


def iter_clip_frames(path: Path, every: int) -> Iterator[torch.Tensor]:
    for rgb in iter_video_frames(path, every):
        yield torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def score(colorizer: Colorizer | None, images: list[torch.Tensor]) -> Score:
    """Mean per-image PSNR and colourfulness; `colorizer` None is the gray baseline."""
    psnrs, colours, refs = [], [], []
    for rgb in images:
        pred = gray_rgb(rgb) if colorizer is None else colorizer.colorize(rgb)
        psnrs += psnr_frames(pred, rgb)
        colours += colorfulness_frames(pred)
        refs += colorfulness_frames(rgb)
    n = len(psnrs)
    return Score(sum(psnrs) / n, sum(colours) / n, sum(refs) / n, n)


def evaluate(models: dict[str, Path | None], photos: Path | None, clips: list[Path], every: int = 5,
             render_size: int = 256, device: str = "auto") -> dict[str, dict[str, Score]]:
    """{model name: {"photos": Score, "clips": Score}}; a model path None is the gray baseline."""
    sets = {}
    if photos:
        sets["photos"] = list(iter_photos(photos))
    if clips:
        sets["clips"] = [f for clip in clips for f in iter_clip_frames(clip, every)]
    results = {}
    for name, path in models.items():
        colorizer = None if path is None else Colorizer(path, device=device, render_size=render_size,
                                                       smoothing="none")
        results[name] = {set_name: score(colorizer, images) for set_name, images in sets.items()}
    return results
