"""SAM's image encoder (segment-anything's ``ImageEncoderViT``) as MASA-SAM's frozen backbone, and
the SAM parts an official MASA-SAM checkpoint holds under ``detector.*``.

MASA-SAM taps the outputs of four transformer blocks (ViT-B: 2, 5, 8, 11; ViT-H: 7, 15, 23, 31), all
at stride 16 with the encoder's width; SAM's own neck, prompt encoder and mask decoder are kept for
masks. Parameters are laid out for SAM's 1024² input (their shapes are the checkpoint's); a smaller
input interpolates the absolute position embedding, and the global-attention blocks interpolate their
relative position tables themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer
from torch import Tensor, nn

SAM_IMAGE_SIZE = 1024
SAM_PATCH = 16
PROMPT_DIM = 256


@dataclass(frozen=True)
class SamViTSpec:
    """One of segment-anything's encoders (``sam_model_registry`` arguments) and MASA's taps."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]

    @property
    def out_indices(self) -> tuple[int, ...]:
        """MASA taps the global-attention blocks (configs/masa-sam/sam-vit{b,h}.py ``out_indices``)."""
        return self.global_attn_indexes


SAM_VITS: dict[str, SamViTSpec] = {
    "vit_b": SamViTSpec(768, 12, 12, (2, 5, 8, 11)),
    "vit_h": SamViTSpec(1280, 32, 16, (7, 15, 23, 31)),
}


def build_sam_encoder(spec: SamViTSpec) -> ImageEncoderViT:
    """segment-anything's image encoder with SAM's own arguments (1024² input, window 14, rel. pos.)."""
    return ImageEncoderViT(
        depth=spec.depth,
        embed_dim=spec.embed_dim,
        img_size=SAM_IMAGE_SIZE,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=spec.num_heads,
        patch_size=SAM_PATCH,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=spec.global_attn_indexes,
        window_size=14,
        out_chans=PROMPT_DIM,
    )


def build_prompt_decoder(input_size: int = SAM_IMAGE_SIZE) -> tuple[PromptEncoder, MaskDecoder]:
    """SAM's prompt encoder and mask decoder, as SAM, MobileSAM and MASA-SAM build them (256-d prompts,
    two-way transformer of depth 2, 8 heads, MLP 2048, 3 multimask outputs, IoU head 3 × 256), for
    ``input_size``² model inputs (image embedding ``input_size / 16`` on a side); untrained."""
    if input_size % SAM_PATCH:
        raise ValueError(f"input_size = {input_size}: must be a multiple of {SAM_PATCH}")
    side = input_size // SAM_PATCH
    prompt_encoder = PromptEncoder(
        embed_dim=PROMPT_DIM,
        image_embedding_size=(side, side),
        input_image_size=(input_size, input_size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048, num_heads=8),
        transformer_dim=PROMPT_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return prompt_encoder, mask_decoder


class SamDetector(nn.Module):
    """The SAM model as MASA-SAM's checkpoint stores it under ``detector.``: ``backbone`` (the image
    encoder), ``prompt_encoder`` and ``mask_decoder`` — segment-anything's ``image_encoder.*`` /
    ``prompt_encoder.*`` / ``mask_decoder.*`` with the encoder renamed."""

    def __init__(self, spec: SamViTSpec) -> None:
        super().__init__()
        self.backbone = build_sam_encoder(spec)
        self.prompt_encoder, self.mask_decoder = build_prompt_decoder(SAM_IMAGE_SIZE)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> SamDetector:
        """SAM stays frozen, as MASA-SAM's ``freeze_detector`` keeps it."""
        return super().train(False)


class SamViTTaps(nn.Module):
    """Frozen SAM ViT: (B, 3, S, S) normalised image → four (B, C, S/16, S/16) block outputs."""

    def __init__(self, encoder: ImageEncoderViT, out_indices: tuple[int, ...], img_size: int = SAM_IMAGE_SIZE) -> None:
        super().__init__()
        if img_size % 64:
            raise ValueError(f"model.input_size = {img_size}: must be a multiple of 64")
        if len(out_indices) != 4 or max(out_indices) >= len(encoder.blocks):
            raise ValueError(f"need 4 block indices below {len(encoder.blocks)}, got {out_indices}")
        self.encoder = encoder
        self.out_indices = tuple(out_indices)
        self.img_size = img_size
        width = encoder.patch_embed.proj.out_channels
        self.out_channels = [width] * 4

    def _pos_embed(self, side: int) -> Tensor:
        pos = self.encoder.pos_embed
        assert pos is not None
        if pos.shape[1] == side:
            return pos
        grid = pos.permute(0, 3, 1, 2)
        return F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.encoder.patch_embed(x)  # (B, S/16, S/16, C)
        x = x + self._pos_embed(x.shape[1]).to(x.dtype)
        taps = []
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in self.out_indices:
                taps.append(x.permute(0, 3, 1, 2))
            if len(taps) == len(self.out_indices):
                break
        return taps
