"""Box-prompted instance masks from SAM's prompt encoder and mask decoder.

MobileSAM's TinyViT is SAM's image encoder, so the MASA backbone already computes SAM's image
embedding (its last tap). :class:`BoxPromptSegmenter` turns that embedding and the tracked boxes
into one mask per box, the way ``SamPredictor.predict_torch(boxes=..., multimask_output=False)``
does, without a second encoder pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masa_core.assets import asset_path
from masa_core.models.checkpoint import check_state_dict, load_state_dict_file
from masa_core.models.sam_backbone import PROMPT_DIM as EMBED_DIM
from masa_core.models.sam_backbone import build_prompt_decoder

PREFIXES = ("prompt_encoder.", "mask_decoder.")


def box_window(
    box: tuple[float, float, float, float] | np.ndarray, height: int, width: int
) -> tuple[int, int, int, int]:
    """Integer pixel window ``(x1, y1, x2, y2)`` of a box, rounded outward and clipped to the image.

    ``Track.mask`` covers exactly ``frame[y1:y2, x1:x2]`` of this window.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    wx1 = min(max(math.floor(x1), 0), width)
    wy1 = min(max(math.floor(y1), 0), height)
    wx2 = min(max(math.ceil(x2), wx1), width)
    wy2 = min(max(math.ceil(y2), wy1), height)
    return wx1, wy1, wx2, wy2


def paste_mask(crop: np.ndarray, box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """A full (height, width) bool mask with a box-cropped ``Track.mask`` put back in place."""
    x1, y1, x2, y2 = box_window(box, height, width)
    full = np.zeros((height, width), bool)
    full[y1:y2, x1:x2] = crop
    return full


class BoxPromptSegmenter(nn.Module):
    """SAM's ``PromptEncoder`` + ``MaskDecoder`` for ``input_size``² model inputs
    (:func:`~masa_core.models.sam_backbone.build_prompt_decoder`, as SAM and MobileSAM build them).
    Weights come from ``checkpoint``: an official SAM ViT-B/L/H or MobileSAM file (keys
    ``prompt_encoder.*`` and ``mask_decoder.*``; the decoder is the same for all of them); empty → the
    MobileSAM asset. Runs in float32. ``forward`` (one chunk of boxes → low-resolution logits) is
    what a backend (:func:`masa_core.models.backends.accelerate_segmenter`) converts.
    """

    def __init__(self, input_size: int = 1024, checkpoint: str | Path = "", chunk: int = 64) -> None:
        super().__init__()
        self.input_size = input_size
        self.chunk = chunk
        self.prompt_encoder, self.mask_decoder = build_prompt_decoder(input_size)
        self.load_sam(checkpoint or asset_path("mobile_sam"))
        self.requires_grad_(False)
        self.eval()

    def load_sam(self, path: str | Path) -> None:
        """Load ``prompt_encoder.*`` / ``mask_decoder.*`` strictly; CheckpointError names any misfit."""
        state = load_state_dict_file(path)
        own = {k: v for k, v in state.items() if k.startswith(PREFIXES)}
        check_state_dict(self, own, f"{path} (SAM prompt encoder + mask decoder)")
        self.load_state_dict(own)

    @property
    def device(self) -> torch.device:
        return self.prompt_encoder.point_embeddings[0].weight.device

    @torch.inference_mode()
    def low_res_logits(self, image_embedding: Tensor, boxes: Tensor) -> Iterator[Tensor]:
        """(1, 256, S/16, S/16) embedding and (N, 4) boxes in model pixels → (n, 1, S/4, S/4) logits,
        ``chunk`` boxes per decoder call."""
        embedding = image_embedding.to(self.device, torch.float32)
        side = self.input_size // 16
        if tuple(embedding.shape) != (1, EMBED_DIM, side, side):
            raise ValueError(
                f"image embedding of shape {tuple(embedding.shape)}: expected (1, {EMBED_DIM}, {side}, {side}), "
                "SAM's image embedding for this input size"
            )
        boxes = boxes.to(self.device, torch.float32).reshape(-1, 4)
        for start in range(0, len(boxes), self.chunk):
            yield self(embedding, boxes[start : start + self.chunk])

    def forward(self, image_embedding: Tensor, boxes: Tensor) -> Tensor:
        """(1, 256, S/16, S/16) image embedding and (n, 4) boxes in model pixels → (n, 1, S/4, S/4)
        mask logits: ``SamPredictor.predict_torch(boxes=..., multimask_output=False)`` without the
        encoder."""
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        logits, _ = self.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return logits

    def postprocess(self, logits: Tensor, frame_hw: tuple[int, int], scale: float) -> Tensor:
        """SAM's ``postprocess_masks``: upscale to S×S, crop the unpadded region, resize to the frame,
        threshold at 0 → (n, H, W) bool."""
        height, width = frame_hw
        valid_h = min(self.input_size, max(1, round(height * scale)))
        valid_w = min(self.input_size, max(1, round(width * scale)))
        size = (self.input_size, self.input_size)
        out = []
        for part in logits.split(8):  # an S×S float map per mask: bound the peak memory
            up = F.interpolate(part, size, mode="bilinear", align_corners=False)[..., :valid_h, :valid_w]
            out.append(F.interpolate(up, (height, width), mode="bilinear", align_corners=False)[:, 0] > 0)
        return torch.cat(out) if out else torch.zeros(0, height, width, dtype=torch.bool)

    def segment(
        self, image_embedding: Tensor, boxes: Tensor | np.ndarray, frame_hw: tuple[int, int], scale: float
    ) -> np.ndarray:
        """One mask per box: (N, 4) boxes in model-input pixels (frame pixels × ``scale``) →
        (N, H, W) bool masks in frame pixels. N = 0 gives (0, H, W)."""
        boxes = torch.as_tensor(np.asarray(boxes, np.float32) if isinstance(boxes, np.ndarray) else boxes)
        height, width = frame_hw
        parts = [
            self.postprocess(lg, frame_hw, scale).cpu().numpy() for lg in self.low_res_logits(image_embedding, boxes)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, height, width), bool)

    def segment_crops(
        self, image_embedding: Tensor, boxes: np.ndarray, frame_hw: tuple[int, int], scale: float
    ) -> list[np.ndarray]:
        """Like :meth:`segment` for (N, 4) boxes in frame pixels, each mask cropped to its
        :func:`box_window`; only one chunk of full-frame masks exists at a time."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        height, width = frame_hw
        windows = [box_window(b, height, width) for b in boxes]
        crops: list[np.ndarray] = []
        for logits in self.low_res_logits(image_embedding, torch.from_numpy(boxes) * scale):
            full = self.postprocess(logits, frame_hw, scale).cpu().numpy()
            for mask in full:
                x1, y1, x2, y2 = windows[len(crops)]
                crops.append(np.ascontiguousarray(mask[y1:y2, x1:x2]))
        return crops
