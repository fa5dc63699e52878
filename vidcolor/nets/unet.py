"""The pix2pix U-Net generator (Isola et al. 2017), as in pix2pix's models/networks.py.

1 channel (normalised L) in, 2 channels (ab/110, tanh) out. With `num_downs` levels the
input sides must be multiples of 2**num_downs (256 for the classic 8-level net).
"""

from __future__ import annotations

import torch
from torch import nn

from .norm import get_norm_layer, uses_bias

FEATURE_DEPTH = 3  # forward_features: the activation after the third down-convolution (stride 8)


class UnetSkipConnectionBlock(nn.Module):
    """One level: down-conv, the inner levels, up-conv, and the skip concatenation."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)
        self._inner = None if innermost else model.index(submodule)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)

    def forward_features(self, x: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward(x)` and the down path's activation `depth` levels below this block's input
        (the innermost one if the net is shallower)."""
        if self._inner is None:
            down = self.model[:2](x)
            y, feature = self.model[2:](down), down
        else:
            down = self.model[:self._inner](x)
            inner = self.model[self._inner]
            y, feature = inner.forward_features(down, depth - 1) if depth > 1 else (inner(down), down)
            y = self.model[self._inner + 1:](y)
        return (y if self.outermost else torch.cat([x, y], 1)), feature


class UnetGenerator(nn.Module):
    """pix2pix U-Net built from the innermost level outwards."""

    def __init__(self, input_nc: int = 1, output_nc: int = 2, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        self.size_multiple = 2 ** num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(`forward(x)`, the stride-8 activation of the down path): the features reference colours are
        matched on (`vidcolor.exemplar`), from the pass that predicts ab anyway."""
        return self.model.forward_features(x, FEATURE_DEPTH)
