"""MASA's deformable fusion: each pyramid level gathers the level below, itself and the level above
through modulated deformable convolutions (DCNv2), with offsets and masks predicted from the level
itself, and averages them (the paper's F(p) = 1/L Σ_j Σ_k w_k F^j(p + p_k + Δp_k^j) Δm_k^j).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import deform_conv2d


def sampled_deform_conv2d(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, stride: int, mask: Tensor
) -> Tensor:
    """3×3 modulated deformable convolution (padding 1) as one bilinear ``grid_sample`` of the nine
    shifted grids and one 1×1 convolution: the same result as ``torchvision.ops.deform_conv2d``
    (tested), but several times faster on the CPU, backward pass included (``bench/bench_deform.py``).
    """
    b, c, h, w = x.shape
    ho, wo = offset.shape[-2:]
    k = torch.arange(3, device=x.device, dtype=x.dtype)
    ky, kx = k.repeat_interleave(3).view(1, 9, 1, 1), k.repeat(3).view(1, 9, 1, 1)
    rows = (torch.arange(ho, device=x.device, dtype=x.dtype) * stride - 1).view(1, 1, ho, 1)
    cols = (torch.arange(wo, device=x.device, dtype=x.dtype) * stride - 1).view(1, 1, 1, wo)
    off = offset.view(b, 9, 2, ho, wo)
    py = rows + ky + off[:, :, 0]
    px = cols + kx + off[:, :, 1]
    # Pixel p of n sits at (2p + 1) / n - 1 with align_corners=False (valid for n = 1 too); samples
    # outside the map read zeros, as in DCN.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    sampled = F.grid_sample(x, grid.view(b, 9 * ho, wo, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    columns = (sampled.view(b, c, 9, ho, wo) * mask.view(b, 1, 9, ho, wo)).view(b, c * 9, ho, wo)
    # A 1×1 convolution over the (channel, tap) columns: the batch shares one weight matrix.
    return F.conv2d(columns, weight.reshape(weight.shape[0], c * 9, 1, 1), bias)


_TORCHVISION_ON_CPU = False


@contextmanager
def torchvision_kernel() -> Iterator[None]:
    """Within this block :class:`ModulatedDeformConv` calls ``torchvision.ops.deform_conv2d`` on the CPU
    too: the op that a graph converter (OpenVINO) maps to its own deformable convolution."""
    global _TORCHVISION_ON_CPU
    before, _TORCHVISION_ON_CPU = _TORCHVISION_ON_CPU, True
    try:
        yield
    finally:
        _TORCHVISION_ON_CPU = before


class ModulatedDeformConv(nn.Module):
    """3×3 modulated deformable convolution (weights only; offsets and masks come from outside).

    torchvision's kernel on CUDA; :func:`sampled_deform_conv2d` on the CPU, where torchvision's
    kernel is the slowest part of the whole model (but see :func:`torchvision_kernel`).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        """x (B, C, H, W); offset (B, 18, H', W') as (dy, dx) pairs; mask (B, 9, H', W') in [0, 1]."""
        mask = mask.to(x.dtype)
        if x.device.type == "cpu" and not _TORCHVISION_ON_CPU:
            return sampled_deform_conv2d(x, offset, self.weight, self.bias, self.stride, mask)
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride, padding=1, mask=mask)


class NormedDeformConv(nn.Module):
    """Modulated deformable conv followed by GroupNorm(16) (DyHead's ``DyDCNv2``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = ModulatedDeformConv(in_channels, out_channels, stride=stride)
        self.norm = nn.GroupNorm(16, out_channels)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        return self.norm(self.conv(x, offset, mask))


def leading_planes(t: Tensor, height: int, width: int) -> Tensor:
    """(B, C, H, W) → (B, C, height, width) made of the first C·height·width values of each item in
    memory order: what mmcv's deformable-conv kernel reads when handed an offset or mask map larger
    than its output (it indexes the buffer as C planes of the output size)."""
    b, c = t.shape[:2]
    return t.contiguous().flatten(1)[:, : c * height * width].view(b, c, height, width)


class DeformFusionBlock(nn.Module):
    """One fusion step over all levels; levels are ordered fine (stride 4) to coarse.

    ``fix_upsample`` (MASA's flag) chooses the coarser level's path: True (default here) upsamples it
    onto this grid, then convolves it with this level's offsets; False (the official default, which the
    released MASA-R50 weights were trained with) convolves it at its own size with the offsets as mmcv
    reads them (:func:`leading_planes`), then upsamples the result.
    """

    offset_dim = 2 * 3 * 3 * 3  # (dy, dx) × 3×3 kernel × 3 source levels
    mask_dim = 3 * 3 * 3

    def __init__(self, in_channels: int, out_channels: int, fix_upsample: bool = True) -> None:
        super().__init__()
        self.fix_upsample = fix_upsample
        self.spatial_conv_offset = nn.Conv2d(in_channels, self.offset_dim + self.mask_dim, 3, padding=1)
        self.spatial_conv_high = NormedDeformConv(in_channels, out_channels)
        self.spatial_conv_mid = NormedDeformConv(in_channels, out_channels)
        self.spatial_conv_low = NormedDeformConv(in_channels, out_channels, stride=2)
        # Zero offsets and half-open masks at the start: fusion begins as a plain 3×3 conv average.
        nn.init.zeros_(self.spatial_conv_offset.weight)
        nn.init.zeros_(self.spatial_conv_offset.bias)

    def forward(self, levels: list[Tensor]) -> list[Tensor]:
        outs = []
        for i, x in enumerate(levels):
            om = self.spatial_conv_offset(x)
            offsets = om[:, : self.offset_dim].chunk(3, dim=1)
            masks = om[:, self.offset_dim :].sigmoid().chunk(3, dim=1)
            total = self.spatial_conv_mid(x, offsets[0], masks[0])
            n = 1
            if i > 0:  # the finer level below, sampled with stride 2 onto this grid
                total = total + self.spatial_conv_low(levels[i - 1], offsets[1], masks[1])
                n += 1
            if i < len(levels) - 1 and self.fix_upsample:  # the coarser level, upsampled onto this grid first
                up = F.interpolate(levels[i + 1], size=x.shape[-2:], mode="bilinear", align_corners=True)
                total = total + self.spatial_conv_high(up, offsets[2], masks[2])
                n += 1
            elif i < len(levels) - 1:  # official order: convolve the coarser level, then upsample
                h, w = levels[i + 1].shape[-2:]
                high = self.spatial_conv_high(
                    levels[i + 1], leading_planes(offsets[2], h, w), leading_planes(masks[2], h, w)
                )
                total = total + F.interpolate(high, size=x.shape[-2:], mode="bilinear", align_corners=True)
                n += 1
            outs.append(total / n)
        return outs


class DeformFusion(nn.Module):
    """``num_blocks`` fusion blocks applied in sequence to a feature pyramid (``fix_upsample``: see
    :class:`DeformFusionBlock`)."""

    def __init__(
        self, in_channels: int = 256, out_channels: int = 256, num_blocks: int = 3, fix_upsample: bool = True
    ) -> None:
        super().__init__()
        self.dyhead_blocks = nn.ModuleList(
            DeformFusionBlock(in_channels if i == 0 else out_channels, out_channels, fix_upsample)
            for i in range(num_blocks)
        )

    def forward(self, levels: list[Tensor]) -> list[Tensor]:
        for block in self.dyhead_blocks:
            levels = block(levels)
        return levels


def hard_sigmoid(x: Tensor) -> Tensor:
    """mmcv ``HSigmoid(bias=3, divisor=6)``: clamp((x + 3) / 6, 0, 1), as DyHead's official code uses it."""
    return ((x + 3.0) / 6.0).clamp(0.0, 1.0)


class ScaleAttention(nn.Module):
    """DyHead's scale-aware attention: global average → 1×1 conv to one channel → ReLU → hard
    sigmoid, one weight per map. Keyed like mmdet's ``nn.Sequential`` (conv at index 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.add_module("1", nn.Conv2d(channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        conv = self._modules["1"]
        assert conv is not None
        return hard_sigmoid(torch.relu(conv(x.mean(dim=(2, 3), keepdim=True))))


class Conv1x1(nn.Module):
    """A 1×1 conv with bias named ``conv`` (mmcv ``ConvModule`` without norm)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class DyReLU(nn.Module):
    """DyHead's task-aware attention (mmdet ``DyReLU``, ratio 4): from the global average, two
    1×1 convs (ReLU, hard sigmoid) give per-channel (a1, b1, a2, b2); out = max(a1·x + b1, a2·x + b2)."""

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = Conv1x1(channels, channels // ratio)
        self.conv2 = Conv1x1(channels // ratio, channels * 4)

    def forward(self, x: Tensor) -> Tensor:
        coeffs = torch.relu(self.conv1(x.mean(dim=(2, 3), keepdim=True)))
        coeffs = hard_sigmoid(self.conv2(coeffs)) - 0.5
        a1, b1, a2, b2 = torch.split(coeffs, self.channels, dim=1)
        return torch.maximum(x * (a1 * 2.0 + 1.0) + b1, x * (a2 * 2.0) + b2)


class DyHeadBlock(nn.Module):
    """mmdet's ``DyHeadBlock``: the spatial fusion of :class:`DeformFusionBlock` with one offset and
    mask (27 channels) shared by the three source levels, each source weighted by the scale-aware
    attention, and the average passed through the task-aware :class:`DyReLU`.

    As in mmdet the coarser level is convolved at its own resolution (with the offsets' top-left
    crop) and then upsampled bilinearly.
    """

    offset_dim = 2 * 3 * 3
    mask_dim = 3 * 3

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.spatial_conv_high = NormedDeformConv(in_channels, out_channels)
        self.spatial_conv_mid = NormedDeformConv(in_channels, out_channels)
        self.spatial_conv_low = NormedDeformConv(in_channels, out_channels, stride=2)
        self.spatial_conv_offset = nn.Conv2d(in_channels, self.offset_dim + self.mask_dim, 3, padding=1)
        self.scale_attn_module = ScaleAttention(out_channels)
        self.task_attn_module = DyReLU(out_channels)
        for m in self.modules():  # mmdet: Normal(0, 0.01) convs, zero offsets
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.spatial_conv_offset.weight)

    def forward(self, levels: list[Tensor]) -> list[Tensor]:
        outs = []
        for i, x in enumerate(levels):
            om = self.spatial_conv_offset(x)
            offset, mask = om[:, : self.offset_dim], om[:, self.offset_dim :].sigmoid()
            mid = self.spatial_conv_mid(x, offset, mask)
            total = mid * self.scale_attn_module(mid)
            n = 1
            if i > 0:
                low = self.spatial_conv_low(levels[i - 1], offset, mask)
                total = total + low * self.scale_attn_module(low)
                n += 1
            if i < len(levels) - 1:
                h, w = levels[i + 1].shape[-2:]
                high = self.spatial_conv_high(levels[i + 1], offset[:, :, :h, :w], mask[:, :, :h, :w])
                high = F.interpolate(high, size=x.shape[-2:], mode="bilinear", align_corners=True)
                total = total + high * self.scale_attn_module(high)
                n += 1
            outs.append(self.task_attn_module(total / n))
        return outs


class DyHead(nn.Module):
    """mmdet's ``DyHead`` neck (the MASA-SAM adapter's fusion): ``num_blocks`` :class:`DyHeadBlock` s."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256, num_blocks: int = 3) -> None:
        super().__init__()
        self.dyhead_blocks = nn.ModuleList(
            DyHeadBlock(in_channels if i == 0 else out_channels, out_channels) for i in range(num_blocks)
        )

    def forward(self, levels: list[Tensor]) -> list[Tensor]:
        for block in self.dyhead_blocks:
            levels = block(levels)
        return levels
