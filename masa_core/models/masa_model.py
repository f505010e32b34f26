"""The MASA model: a frozen backbone under the MASA adapter, from an RGB frame and boxes to
instance embeddings.

    frame ─▶ preprocess (resize longest side to S, normalise, pad to S×S, or for the CNN
             variants only up to the next multiple of 32 in each direction)
          ─▶ backbone (frozen) ─▶ adapter: pyramid (SimpleFPN) ─▶ deformable fusion
          ─▶ RoIAlign(boxes) ─▶ track head ─▶ (N, 256) embeddings
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masa_core.detectors.base import Detections
from masa_core.models.deform_fusion import DeformFusion
from masa_core.models.detection_head import MasaDetectionHead
from masa_core.models.embed_head import QuasiDenseEmbedHead
from masa_core.models.roi_extractor import MultiLevelRoIAlign
from masa_core.models.simple_fpn import SimpleFPN

# SAM's pixel statistics (RGB, 0..255); MobileSAM and SAM share them.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class MasaAdapter(nn.Module):
    """The trainable part: pyramid + deformable fusion + RoIAlign + track head, and the detection
    head (RPN + class-agnostic RoI box head) used for distillation and as a box source."""

    def __init__(
        self,
        in_channels: list[int],
        channels: int = 256,
        fusion_blocks: int = 3,
        neck: nn.Module | None = None,
        fusion: nn.Module | None = None,
        box_head: str = "shared2fc",
    ) -> None:
        """Defaults: SimpleFPN + DeformFusion (MobileSAM); ``neck`` / ``fusion`` replace them (the
        official variants: FPN + DeformFusion for R50, SimpleFPN + DyHead for SAM)."""
        super().__init__()
        self.neck = neck if neck is not None else SimpleFPN(in_channels, channels, num_outs=5, use_residual=True)
        self.fusion = fusion if fusion is not None else DeformFusion(channels, channels, num_blocks=fusion_blocks)
        self.roi_extractor = MultiLevelRoIAlign(strides=(4, 8, 16, 32), output_size=7)
        self.embed_head = QuasiDenseEmbedHead(in_channels=channels)
        # Built last so that the seeded initialisation of the parts above does not depend on it.
        self.detection_head = MasaDetectionHead(in_channels=channels, box_head=box_head)

    def forward(self, taps: list[Tensor]) -> list[Tensor]:
        """Backbone maps → fused pyramid, five (B, 256, S/s, S/s) maps for s = 4 … 64."""
        return self.fusion(self.neck(taps))

    def embed(self, pyramid: list[Tensor], boxes: Tensor, batch_index: Tensor | None = None) -> Tensor:
        """(N, 4) boxes in model-input pixels → (N, 256) embeddings; ``batch_index``: (N,) the pyramid
        row (frame of a batch) each box lies in, None: row 0."""
        return self.embed_head(self.roi_extractor(pyramid, boxes, batch_index))


class MasaModel(nn.Module):
    """Frozen ``backbone`` + :class:`MasaAdapter`; ``variant`` names the pairing.

    ``layout`` names the top-level modules that make up the state dict; default ``backbone`` and
    ``adapter``. The official variants pass the official checkpoint's tree instead (``backbone`` or
    ``detector``, ``masa_adapter``, ``rpn_head``, ``roi_head``, ``track_head``) built from the same
    parts; ``backbone`` and ``adapter`` are then runtime views over those parts, kept out of the state
    dict so that every weight has exactly one (official) name. ``pixel_mean`` / ``pixel_std`` (RGB,
    0..255) are the variant's input normalisation. ``pad_multiple``: None pads the resized image to
    the S×S square (SAM's input, which its ViT needs); a number pads it only up to the next multiple
    of that number in each direction (mmdet's ``pad_size_divisor``, for backbones that take any such
    size): a 4:3 frame then costs 3/4 of the square.
    """

    def __init__(
        self,
        variant: str,
        backbone: nn.Module,
        adapter: MasaAdapter,
        input_size: int,
        layout: Mapping[str, nn.Module] | None = None,
        pixel_mean: tuple[float, float, float] = PIXEL_MEAN,
        pixel_std: tuple[float, float, float] = PIXEL_STD,
        pad_multiple: int | None = None,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.input_size = input_size
        self.pad_multiple = pad_multiple
        for name, module in (layout or {"backbone": backbone, "adapter": adapter}).items():
            self.add_module(name, module)
        for name, view in (("backbone", backbone), ("adapter", adapter)):
            registered = self._modules.get(name)
            if registered is None:
                object.__setattr__(self, name, view)  # a view over registered parts, not in the state dict
            elif registered is not view:
                raise ValueError(f"layout module {name!r} is not the model's {name}")
        owned = {id(p) for p in self.parameters()}
        if any(id(p) not in owned for p in (*backbone.parameters(), *adapter.parameters())):
            raise ValueError("layout must hold every parameter of the backbone and the adapter")
        # Embeddings trained with a cosine / temperature loss carry no scale of their own; the tracker's
        # dot-product bi-softmax then needs them as unit vectors × 1/τ (set from the checkpoint's meta).
        self.embed_scale: float | None = None
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.adapter.parameters()).dtype

    def preprocess(self, frame: np.ndarray) -> tuple[Tensor, float]:
        """(H, W, 3) uint8 RGB → ((1, 3, S, S) normalised tensor, scale from frame to model pixels);
        with ``pad_multiple`` m the tensor is (1, 3, ⌈h/m⌉·m, ⌈w/m⌉·m) for the resized h × w."""
        h, w = frame.shape[:2]
        scale = self.input_size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(np.ascontiguousarray(resized)).to(self.device).permute(2, 0, 1)[None].float()
        x = (x - self.pixel_mean) / self.pixel_std
        m = self.pad_multiple
        ph, pw = (self.input_size, self.input_size) if m is None else (-(-nh // m) * m, -(-nw // m) * m)
        padded = x.new_zeros(1, 3, ph, pw)
        padded[:, :, :nh, :nw] = x
        return padded.to(self.dtype), scale

    @property
    def embed_dim(self) -> int:
        """Length of the embeddings :meth:`embed` returns."""
        return self.adapter.embed_head.fc_embed.out_features

    @torch.inference_mode()
    def features(self, image: Tensor) -> list[Tensor]:
        """Normalised (B, 3, S, S) images → fused pyramid of (B, C, h, w) maps."""
        return self.adapter(self.backbone(image))

    @torch.inference_mode()
    def fuse(self, taps: list[Tensor]) -> list[Tensor]:
        """The backbone's maps → the adapter's fused pyramid (:meth:`features` in two steps)."""
        return self.adapter(taps)

    @torch.inference_mode()
    def detect(
        self,
        pyramid: list[Tensor],
        input_hw: tuple[int, int],
        valid_hw: tuple[int, int],
        scale: float,
        score_thr: float,
        frame_hw: tuple[int, int],
    ) -> Detections:
        """Class-agnostic boxes in frame pixels from the adapter's own detection head; arguments as in
        :meth:`masa_core.models.detection_head.MasaDetectionHead.detect`."""
        return self.adapter.detection_head.detect(
            pyramid, input_hw, valid_hw, scale, score_thr=score_thr, frame_hw=frame_hw
        )

    @torch.inference_mode()
    def embed(self, pyramid: list[Tensor], boxes: Tensor, batch_index: Tensor | None = None) -> Tensor:
        """(N, 4) boxes in model-input pixels → (N, 256) float32 embeddings (unit length × ``embed_scale``
        when that is set, so that dot products are the cosine / τ the adapter was trained on).
        ``batch_index``: (N,) the row of the batched ``pyramid`` (the frame) each box lies in; None: row 0."""
        index = None if batch_index is None else batch_index.to(self.device)
        out = self.adapter.embed(pyramid, boxes.to(self.device, self.dtype), index).float()
        return out if self.embed_scale is None else F.normalize(out, dim=1) * self.embed_scale

    def forward(self, frame: np.ndarray, boxes: np.ndarray) -> Tensor:
        """One RGB frame and (N, 4) boxes in its pixels → (N, 256) embeddings."""
        image, scale = self.preprocess(frame)
        return self.embed(self.features(image), torch.as_tensor(boxes, dtype=torch.float32) * scale)
