"""GAN losses of pix2pix: vanilla (BCE-with-logits, with one-sided label smoothing) or LSGAN."""

from __future__ import annotations

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
