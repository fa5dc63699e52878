"""Validation during training: PSNR (8-bit RGB) against the truth and the gray baseline, colourfulness,
fd_lite0 when the training extra is installed, each on the whole validation split and PSNR per source
group, plus a picture of gray / predicted / true rows. Torch only (the picture is written without an
image library), so it runs wherever training runs."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import torch

from vidcolor.lab import denormalize_ab, denormalize_l, join_lab, lab_to_rgb
from vidcolor.metrics import colorfulness_frames, psnr_frames

from .augment import to_lab_batch
from .datasets import center_batch, open_split
from .pack import spread


def write_png(path: Path, rgb: torch.Tensor) -> None:
    """(3,H,W) float RGB in [0,1] as an 8-bit PNG."""
    img = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    h, w, _ = img.shape
    rows = torch.cat([torch.zeros(h, 1, dtype=torch.uint8), img.view(h, w * 3)], 1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(bytes(rows.contiguous().untyped_storage()), 6))
                    + chunk(b"IEND", b""))
    tmp.replace(path)


class Validator:
    """Scores a trainer's generator on the validation split; the truth's and gray's statistics, which
    never change, are computed once per run."""

    def __init__(self, data: str, size: int, val_max: int, batch: int, device: torch.device, want_fd: bool):
        self.val = open_split(data, "val", size, device=device)
        self.picked = spread(len(self.val), val_max)
        self.groups = [self.val.group_of(i) for i in self.picked]
        self.size, self.batch, self.device, self.want_fd = size, batch, device, want_fd
        self._fd: Any = None

    def __len__(self) -> int:
        return len(self.picked)

    @torch.inference_mode()
    def __call__(self, G: torch.nn.Module, autocast: Any, picture: Path | None = None, rows: int = 8
                 ) -> dict[str, float]:
        if not self.picked:
            return {}
        was_training = G.training
        G.eval()
        preds, truths, grays = [], [], []
        for start in range(0, len(self.picked), self.batch):
            rgb = center_batch(self.val, self.picked[start:start + self.batch], self.size).to(self.device)
            L, ab = to_lab_batch(rgb)
            with autocast:
                pred_ab = G(L).float()
            Ld = denormalize_l(L)
            preds.append(lab_to_rgb(join_lab(Ld, denormalize_ab(pred_ab))).cpu())
            grays.append(lab_to_rgb(join_lab(Ld, torch.zeros_like(ab))).cpu())
            truths.append(rgb.cpu())
        G.train(was_training)
        pred, truth, gray = torch.cat(preds), torch.cat(truths), torch.cat(grays)
        scores = self.scores(pred, truth, gray)
        if picture is not None and rows:
            k = min(rows, len(pred))
            write_png(picture, torch.cat([torch.cat([gray[i], pred[i], truth[i]], dim=2) for i in range(k)], dim=1))
        return scores

    def scores(self, pred: torch.Tensor, truth: torch.Tensor, gray: torch.Tensor) -> dict[str, float]:
        p, g = psnr_frames(pred, truth), psnr_frames(gray, truth)
        cf, cf_truth = colorfulness_frames(pred), colorfulness_frames(truth)
        n = len(p)
        out = {"val_psnr": sum(p) / n, "val_psnr_gray": sum(g) / n, "val_colorfulness": sum(cf) / n,
               "val_colorfulness_truth": sum(cf_truth) / n}
        for group in sorted(set(self.groups)):
            idx = [i for i, name in enumerate(self.groups) if name == group]
            out[f"psnr:{group}"] = sum(p[i] for i in idx) / len(idx)
            out[f"psnr_gray:{group}"] = sum(g[i] for i in idx) / len(idx)
        out.update(self._fd_scores(pred, truth, gray))
        return out

    def _fd_scores(self, pred: torch.Tensor, truth: torch.Tensor, gray: torch.Tensor) -> dict[str, float]:
        if not self.want_fd:
            return {}
        from vidcolor.fd import Lite0Features, stats_distance
        if self._fd is None:
            try:
                features = Lite0Features(self.device)
            except ImportError:
                self.want_fd = False
                return {}
            truth_stats = features.stats([truth])
            self._fd = (features, truth_stats, stats_distance(features.stats([gray]), truth_stats))
        features, truth_stats, gray_fd = self._fd
        return {"val_fd_lite0": stats_distance(features.stats([pred]), truth_stats), "val_fd_lite0_gray": gray_fd}


def score_model(model: Path, data: str, size: int, device: str = "auto", limit: int = 10 ** 9) -> dict[str, float]:
    """A generator file's validation scores on a pack's whole validation split (centre crops at `size`), with
    torch alone: how a GPU run reports its model where the product's path (PyAV) is not installed."""
    from contextlib import nullcontext

    from vidcolor.checkpoint import load_generator
    from vidcolor.device import resolve_device
    dev = resolve_device(device)
    net, _ = load_generator(model, dev)
    return Validator(data, size, limit, 64, dev, want_fd=True)(net, nullcontext())


if __name__ == "__main__":  # python -m vidcolor.train.validate MODEL PACK SIZE OUT.json
    import json
    import sys
    scores = score_model(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
    Path(sys.argv[4]).write_text(json.dumps(scores, indent=2))
    print(" ".join(f"{k}={v:.3f}" for k, v in scores.items()))
