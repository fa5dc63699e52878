"""Norm-layer factory shared by the networks (pix2pix passes norm layers in rather than hard-coding them)."""

from __future__ import annotations

import functools
from typing import Callable

from torch import nn

NormFactory = Callable[[int], nn.Module]


def get_norm_layer(name: str = "batch") -> NormFactory:
    """'batch' | 'instance' | 'none' -> a callable that takes a channel count."""
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "none":
        return lambda _channels: nn.Identity()
    raise ValueError(f"unknown norm layer {name!r} (batch, instance, none)")


def uses_bias(norm: str) -> bool:
    """BatchNorm has its own affine shift, so the preceding conv needs no bias."""
    return norm != "batch"
