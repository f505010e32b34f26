"""Feature pyramids: SimpleFPN from single-stride (1/16) transformer features, and the classic FPN
from a CNN's strides 4 … 32 (MASA-R50).

The ViTDet construction that MASA's SAM variants use: four feature maps at stride 16 become
strides 4, 8, 16 and 32 by two transposed convolutions, one transposed convolution, identity and
max-pooling; 1×1 lateral and 3×3 output convolutions bring each to ``out_channels``; with
``use_residual`` the coarser laterals are added top-down as in FPN; a fifth level is a stride-2
subsampling of the last output.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


class ConvModule(nn.Module):
    """mmcv's ``ConvModule`` without activation: a convolution named ``conv`` (with a bias only
    without a norm), then with ``norm="bn"`` a BatchNorm named ``bn``, so checkpoints keep mmcv's keys."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None = None) -> None:
        super().__init__()
        if norm not in (None, "bn"):
            raise ValueError(f"norm must be None or 'bn', not {norm!r}")
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=norm is None)
        self.bn = nn.BatchNorm2d(out_channels) if norm == "bn" else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


def top_down(
    laterals: list[Tensor], fpn_convs: nn.ModuleList, num_outs: int, use_residual: bool = True
) -> list[Tensor]:
    """FPN's shared tail: add each coarser lateral (nearest-upsampled) into the finer one, apply the
    output convs, then add stride-2 subsamplings of the last output until there are ``num_outs``."""
    laterals = list(laterals)
    if use_residual:
        for i in range(len(laterals) - 1, 0, -1):
            up = F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
            laterals[i - 1] = laterals[i - 1] + up
    outs = [conv(lat) for conv, lat in zip(fpn_convs, laterals, strict=True)]
    while len(outs) < num_outs:
        outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    return outs


class SimpleFPN(nn.Module):
    """Four stride-16 maps (B, C_i, H, W) → ``num_outs`` maps of ``out_channels`` at strides 4..64."""

    def __init__(
        self, in_channels: list[int], out_channels: int = 256, num_outs: int = 5, use_residual: bool = True
    ) -> None:
        super().__init__()
        if len(in_channels) != 4 or num_outs < 4:
            raise ValueError(f"SimpleFPN takes 4 inputs and gives >= 4 outputs, got {in_channels}, {num_outs}")
        c0, c1 = in_channels[0], in_channels[1]
        self.in_channels = list(in_channels)
        self.num_outs = num_outs
        self.use_residual = use_residual
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(c0, c0, kernel_size=2, stride=2),
            ChannelLayerNorm(c0),
            nn.GELU(),
            nn.ConvTranspose2d(c0, c0, kernel_size=2, stride=2),
        )
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(c1, c1, kernel_size=2, stride=2))
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3) for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        ops = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        laterals = [lat(op(x)) for lat, op, x in zip(self.lateral_convs, ops, inputs, strict=True)]
        return top_down(laterals, self.fpn_convs, self.num_outs, self.use_residual)


class FPN(nn.Module):
    """mmdet's ``FPN`` (no extra convs): maps at strides 4 … 32 → ``num_outs`` maps of
    ``out_channels`` at strides 4 … 64; with ``norm="bn"`` every conv is conv + BatchNorm, as in
    MASA-R50 (keys ``lateral_convs.i.{conv,bn}``, ``fpn_convs.i.{conv,bn}``)."""

    def __init__(
        self, in_channels: list[int], out_channels: int = 256, num_outs: int = 5, norm: str | None = None
    ) -> None:
        super().__init__()
        if num_outs < len(in_channels):
            raise ValueError(f"FPN gives at least one output per input, got {num_outs} for {len(in_channels)}")
        self.in_channels = list(in_channels)
        self.num_outs = num_outs
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1, norm) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, norm) for _ in in_channels)
        for m in self.modules():  # mmdet FPN init: Xavier-uniform convs
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        if len(inputs) != len(self.lateral_convs):
            raise ValueError(f"FPN expects {len(self.lateral_convs)} maps, got {len(inputs)}")
        laterals = [lat(x) for lat, x in zip(self.lateral_convs, inputs, strict=True)]
        return top_down(laterals, self.fpn_convs, self.num_outs)


def strides_of(num_outs: int) -> tuple[int, ...]:
    """Strides of SimpleFPN's outputs: 4, 8, 16, 32, 64, ..."""
    return tuple(4 * 2**i for i in range(num_outs))


__all__ = ["FPN", "ChannelLayerNorm", "ConvModule", "SimpleFPN", "strides_of", "top_down"]
