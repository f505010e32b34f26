"""RoIAlign over a feature pyramid, each box read from the level that suits its size."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align


def map_roi_levels(boxes: Tensor, num_levels: int, finest_scale: int = 56) -> Tensor:
    """Pyramid level per box, as mmdet's single RoI extractor picks it.

    boxes (N, 4) x1y1x2y2 in input pixels → (N,) int64 level: floor(log2(sqrt(area) / 56)),
    clamped to [0, num_levels - 1]; boxes up to 112 px go to stride 4, up to 224 px to stride 8, ...
    """
    scale = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt()
    levels = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return levels.clamp(0, num_levels - 1).long()


class MultiLevelRoIAlign(nn.Module):
    """(N, 4) boxes on a pyramid of (B, C, H_l, W_l) maps → (N, C, S, S) aligned features; each box is
    read from the pyramid row ``batch_index`` gives it (all from row 0 when None)."""

    def __init__(self, strides: tuple[int, ...] = (4, 8, 16, 32), output_size: int = 7) -> None:
        super().__init__()
        self.strides = tuple(strides)
        self.output_size = output_size

    def forward(self, feats: list[Tensor], boxes: Tensor, batch_index: Tensor | None = None) -> Tensor:
        feats = feats[: len(self.strides)]
        out = feats[0].new_zeros(len(boxes), feats[0].shape[1], self.output_size, self.output_size)
        if len(boxes) == 0:
            return out
        rows = boxes.new_zeros(len(boxes), 1) if batch_index is None else batch_index.to(boxes).view(-1, 1)
        rois = torch.cat([rows, boxes], dim=1).to(feats[0].dtype)
        levels = map_roi_levels(boxes, len(feats))
        for level, (feat, stride) in enumerate(zip(feats, self.strides, strict=True)):
            idx = (levels == level).nonzero(as_tuple=True)[0]
            if len(idx):
                out[idx] = roi_align(
                    feat,
                    rois[idx],
                    self.output_size,
                    spatial_scale=1.0 / stride,
                    sampling_ratio=0,
                    aligned=True,
                )
        return out
