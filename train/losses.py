"""Losses: pix2pix's GAN loss (vanilla BCE-with-logits with one-sided label smoothing, or LSGAN) and the
feature (perceptual) loss of DeOldify and DDColor."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


class GANLoss(torch.nn.Module):
    """Compares discriminator logits with a real/fake target of the logits' shape.

    One-sided label smoothing: real targets are `real_label` (e.g. 0.9), fake targets stay 0,
    which keeps the discriminator from becoming over-confident early.
    """

    def __init__(self, mode: str = "vanilla", real_label: float = 0.9):
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown GAN mode {mode!r} (vanilla, lsgan)")
        self.mode, self.real_label = mode, real_label

    def forward(self, logits: torch.Tensor, is_real: bool, smooth: bool = True) -> torch.Tensor:
        value = (self.real_label if smooth else 1.0) if is_real else 0.0
        target = torch.full_like(logits, value)
        if self.mode == "lsgan":
            return F.mse_loss(logits.float(), target.float())
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())


class FeatureLoss(torch.nn.Module):
    """The mean over depths of the L1 distance between a frozen network's features of the coloured RGB and
    of the true RGB. L1 on ab alone averages the plausible colours of an object into brown; features of an
    ImageNet network respond to texture-consistent colour, so they pull towards a plausible one.

    `extractor`: RGB in [0,1] -> list of feature maps (`vidcolor.nets.lite_features.LiteFeatures`). Never the
    network fd_lite0 is measured with: a loss on the judge's own features would game it.
    """

    def __init__(self, extractor: Callable[[torch.Tensor], list[torch.Tensor]] | torch.nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, pred_rgb: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = [t.detach() for t in self.extractor(true_rgb)]
        feats = self.extractor(pred_rgb)
        return sum(F.l1_loss(f.float(), t.float()) for f, t in zip(feats, targets)) / len(feats)


def feature_loss(variant: str, device: torch.device) -> FeatureLoss:
    """The feature loss on EfficientNet-Lite `variant` ImageNet features."""
    from vidcolor.nets.lite_features import LiteFeatures, lite_weights
    return FeatureLoss(LiteFeatures(variant, lite_weights(variant)).to(device))
