"""MASA-R50's backbone: mmdet's caffe-style ResNet-50, frozen, batch norm in eval mode.

"Caffe style" puts the stride-2 of each stage's first bottleneck on its 1×1 ``conv1`` instead of
the 3×3 ``conv2`` (PyTorch style). Module names are torchvision's, which are mmdet's too (``conv1``,
``bn1``, ``layer{1..4}.N.{conv,bn}{1,2,3}``, ``downsample.{0,1}``); there is no classifier.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.resnet import resnet50

RESNET50_CHANNELS = [256, 512, 1024, 2048]


class CaffeResNet50(nn.Module):
    """(B, 3, H, W) normalised image → four maps at strides 4, 8, 16, 32 (256 … 2048 channels)."""

    out_channels = RESNET50_CHANNELS

    def __init__(self) -> None:
        super().__init__()
        net = resnet50(weights=None)
        for layer in (net.layer2, net.layer3, net.layer4):
            first = layer[0]
            first.conv1.stride = (2, 2)  # caffe style: stride on the 1×1 reduction
            first.conv2.stride = (1, 1)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> CaffeResNet50:
        """Frozen with ``norm_eval``: batch-norm statistics are never updated."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            outs.append(x)
        return outs
