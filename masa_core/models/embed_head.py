"""The track head: RoI features → instance embedding (QuasiDenseEmbedHead: 4 convs + 1 FC + embed)."""

from __future__ import annotations

from torch import Tensor, nn


class ConvGNReLU(nn.Module):
    """3×3 conv (no bias) → GroupNorm(32) → ReLU, keyed ``conv`` / ``gn`` as in mmcv's ConvModule."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(32, out_channels)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.gn(self.conv(x)))


class QuasiDenseEmbedHead(nn.Module):
    """(N, C, 7, 7) RoI features → (N, embed_channels) embeddings (not normalised; the tracker
    compares them by dot product and cosine)."""

    def __init__(
        self,
        in_channels: int = 256,
        num_convs: int = 4,
        conv_channels: int = 256,
        fc_channels: int = 1024,
        embed_channels: int = 256,
        roi_size: int = 7,
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            ConvGNReLU(in_channels if i == 0 else conv_channels, conv_channels) for i in range(num_convs)
        )
        self.fcs = nn.ModuleList([nn.Linear(conv_channels * roi_size * roi_size, fc_channels)])
        self.relu = nn.ReLU(inplace=True)
        self.fc_embed = nn.Linear(fc_channels, embed_channels)
        nn.init.normal_(self.fc_embed.weight, 0, 0.01)
        nn.init.zeros_(self.fc_embed.bias)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.fcs:
            x = self.relu(fc(x))
        return self.fc_embed(x)
