"""Losses: pix2pix's GAN loss (vanilla BCE-with-logits with one-sided label smoothing, or LSGAN)
and the rebalanced ab-bin cross-entropy of the bins head."""

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


class BinLoss(torch.nn.Module):
    """Class-rebalanced cross-entropy over ab bins with soft-encoded targets (Zhang et al. 2016).

    Targets are taken at the logits' resolution (ab area-averaged down to it). The rebalancing
    weights come from the training set's ab prior, so rare saturated colours are not drowned by
    the desaturated majority.
    """

    def __init__(self, centers: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("centers", centers.float().clone())
        self.register_buffer("weights", weights.float().clone())

    @classmethod
    def from_pack(cls, centers: torch.Tensor, dataset, seed: int = 0, count: int = 2000) -> "BinLoss":
        """Weights from the ab histogram of up to `count` training frames (at 32x32)."""
        from vidcolor.colorbins import bin_histogram, rebalance_weights
        from vidcolor.color import rgb_to_lab

        centers = centers.detach().cpu()
        if hasattr(dataset, "ab_sample"):
            ab = dataset.ab_sample(min(count, len(dataset)), seed)
        else:
            gen = torch.Generator().manual_seed(seed)
            picks = torch.randperm(len(dataset), generator=gen)[:count].tolist()
            rgb = torch.stack([dataset[i] for i in picks])
            ab = rgb_to_lab(F.interpolate(rgb, size=(32, 32), mode="area"))[:, 1:]
        return cls(centers, rebalance_weights(bin_histogram(ab, centers), centers))

    def forward(self, logits: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
        """`logits` (B,Q,h,w); `ab_norm` (B,2,H,W) target ab / 110 at full size."""
        from vidcolor.color import denormalize_ab
        from vidcolor.colorbins import soft_cross_entropy, soft_encode

        ab = denormalize_ab(F.adaptive_avg_pool2d(ab_norm.float(), logits.shape[-2:]))
        idx, w = soft_encode(ab, self.centers)
        pixel_weight = self.weights[idx[:, 0]]  # the nearest bin comes first
        return soft_cross_entropy(logits, idx, w, pixel_weight)
