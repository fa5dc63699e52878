"""Reference colours without training: match each frame's features against the reference images' and
take the ab of the best-matching reference positions.

The training-free version of He et al. 2018 (Deep Exemplar-based Colorization), which learns the
similarity: here it is the cosine similarity of the generator's own encoder features, which see L only,
so a reference's gray version and a frame are compared on the same terms. The reference features are
computed once; each frame's come out of the model pass that predicts its ab anyway
(`forward_features`), so the cost is one small matrix product per batch. The result is an exemplar ab map
and a confidence (from the best similarity), which `blend` uses to pull the model's ab towards it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .color import rgb_to_lab
from .controls import MATCH_CONFIDENCE, MATCH_TEMPERATURE
from .geometry import render_shape, resize

Predict = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # L (B,1,h,w) -> (ab, features)


def centred_unit(features: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(..., C) features minus the references' mean, scaled to unit length: cosine similarity becomes a
    dot product, and centring keeps what all positions share (the ReLU's positive offset) from making
    every pair look alike."""
    return F.normalize(features - mean, dim=-1)


def match(frame_features: torch.Tensor, ref_features: torch.Tensor, ref_ab: torch.Tensor,
          temperature: float = MATCH_TEMPERATURE, confidence: tuple[float, float] = MATCH_CONFIDENCE
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,hw,C) unit frame features, (N,C) unit reference features, (N,2) their ab ->
    (B,hw,2) exemplar ab, (B,hw) confidence in [0,1].

    ab is the softmax-weighted mean over all reference positions (a low temperature: the best matches
    dominate, so a reference region that the frame does not show gets no weight); the confidence rises
    linearly from 0 to 1 as the best similarity goes from `confidence[0]` to `confidence[1]`.
    """
    sim = frame_features @ ref_features.T
    ab = torch.softmax(sim / temperature, dim=-1) @ ref_ab
    lo, hi = confidence
    conf = ((sim.amax(dim=-1) - lo) / (hi - lo)).clamp(0.0, 1.0)
    return ab, conf


class ReferenceBank:
    """The reference images' features (unit, centred) and ab at the feature grid, ready to match frames."""

    def __init__(self, features: torch.Tensor, ab: torch.Tensor):
        self.mean = features.mean(dim=0)
        self.features = centred_unit(features, self.mean)
        self.ab = ab.float()

    @classmethod
    @torch.no_grad()
    def from_images(cls, images: Sequence[np.ndarray], predict: Predict, render_size: int,
                    device: torch.device) -> ReferenceBank:
        """Each (H,W,3) uint8 RGB image seen as the model sees a frame: its L* at render size, gray."""
        feats, abs_ = [], []
        for rgb in images:
            lab = rgb_to_lab(torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None].float() / 255.0)
            L = resize(lab[:, :1], render_shape(*rgb.shape[:2], render_size))
            _, f = predict(L)
            ab = F.adaptive_avg_pool2d(resize(lab[:, 1:], tuple(L.shape[-2:])), tuple(f.shape[-2:]))
            feats.append(f[0].flatten(1).T.float())
            abs_.append(ab[0].flatten(1).T)
        return cls(torch.cat(feats), torch.cat(abs_))

    def exemplar(self, features: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,C,h,w) frame features -> (B,2,H,W) exemplar ab and (B,1,H,W) confidence at `size`."""
        b, c, h, w = features.shape
        frame = centred_unit(features.float().flatten(2).transpose(1, 2), self.mean)
        ab, conf = match(frame, self.features, self.ab)
        ab = ab.transpose(1, 2).reshape(b, 2, h, w)
        conf = conf.reshape(b, 1, h, w)
        return resize(ab, size), resize(conf, size)

    def blend(self, ab: torch.Tensor, features: torch.Tensor, strength: float) -> torch.Tensor:
        """The model's (B,2,H,W) ab pulled towards the exemplar's by strength x confidence."""
        ex, conf = self.exemplar(features, tuple(ab.shape[-2:]))
        return torch.lerp(ab.float(), ex, (strength * conf).to(ab.device))
