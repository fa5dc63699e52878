"""The 70x70 PatchGAN discriminator of pix2pix (NLayerDiscriminator with n_layers=3).

It judges (L, ab) pairs: 3 input channels, one logit per overlapping 70x70 patch.
"""

from __future__ import annotations

import torch
from torch import nn

from .norm import get_norm_layer, uses_bias


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        kw, padw = 4, 1
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kw, 2, padw), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, kw, 2, padw, bias=bias),
                    norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, kw, 1, padw, bias=bias),
                norm_layer(ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, kw, 1, padw)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
