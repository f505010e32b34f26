"""MobileSAM's TinyViT image encoder as a frozen backbone that exposes its stride-16 features.

TinyViT (from PyPI ``mobilesam-mirror``) reaches stride 16 after its second stage and stays there:
MobileSAM removed the last down-sampling so that its output matches SAM ViT-H's 64×64 embedding,
which it was distilled to reproduce. We tap four maps at stride 16, from early to late, the way
MASA-SAM taps ViT-B blocks 2, 5, 8 and 11: the input of stage 3 (160 ch), the outputs of stages 3
and 4 (320 ch each) and the image embedding after SAM's neck (256 ch). SimpleFPN then builds
strides 4 to 64 from them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

with warnings.catch_warnings():  # mobile_sam re-registers timm models and uses deprecated timm paths
    warnings.simplefilter("ignore")
    from mobile_sam.modeling import TinyViT

from masa_core.models.checkpoint import load_state_dict_file

TINYVIT_TAP_CHANNELS = [160, 320, 320, 256]


def build_tinyvit(img_size: int) -> TinyViT:
    """MobileSAM's TinyViT-5M encoder (SAM's ``vit_t``) laid out for ``img_size``² inputs."""
    return TinyViT(
        img_size=img_size,
        in_chans=3,
        num_classes=1000,
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )


class TinyViTBackbone(nn.Module):
    """Frozen TinyViT: (B, 3, S, S) normalised image → four (B, C_i, S/16, S/16) maps."""

    out_channels = TINYVIT_TAP_CHANNELS

    def __init__(self, img_size: int = 1024) -> None:
        super().__init__()
        if img_size % 64:
            raise ValueError(f"model.input_size = {img_size}: must be a multiple of 64")
        self.img_size = img_size
        self.encoder = build_tinyvit(img_size)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> TinyViTBackbone:
        """The backbone stays in eval mode: it is frozen, batch-norm statistics included."""
        return super().train(False)

    def load_mobile_sam(self, path: str | Path) -> None:
        """Load the encoder from an official MobileSAM checkpoint (``mobile_sam.pt``, keys
        ``image_encoder.*``); the classifier head TinyViT keeps for ImageNet is not in it and unused."""
        state = load_state_dict_file(path)
        prefix = "image_encoder."
        enc = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not enc:
            raise ValueError(f"{path} holds no 'image_encoder.*' keys: not a MobileSAM checkpoint")
        missing, unexpected = self.encoder.load_state_dict(enc, strict=False)
        missing = [k for k in missing if not k.startswith(("head.", "norm_head."))]
        if missing or unexpected:
            raise ValueError(
                f"{path} does not fit MobileSAM's TinyViT: missing {missing[:8]}, unexpected {unexpected[:8]}"
            )

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        enc = self.encoder
        side = self.img_size // 16
        x = enc.patch_embed(x)
        x = enc.layers[0](x)
        x = enc.layers[1](x)  # tokens (B, side², 160) at stride 16
        taps = [x]
        for layer in enc.layers[2:]:
            x = layer(x)
            taps.append(x)
        maps = [t.transpose(1, 2).reshape(t.shape[0], t.shape[2], side, side) for t in taps]
        maps.append(enc.neck(maps[-1]))
        return maps
