"""The adapter's detection branch (MASA's "object prior distillation"): an RPN and a Fast R-CNN box
head on the fused pyramid, giving class-agnostic "object" boxes.

    pyramid (5 maps, strides 4 … 64) ─▶ RPNHead ─▶ ≤ 1000 proposals (NMS 0.7 per level)
        ─▶ RoIAlign 7×7 (strides 4 … 32) ─▶ BoxHead ─▶ refined boxes, fg score ─▶ NMS 0.5 ─▶ ≤ 50

Layer names, anchors, box coding and test-time post-processing follow mmdet 3.x (``RPNHead``,
``AnchorGenerator``, ``DeltaXYWHBBoxCoder``, ``ConvFCBBoxHead``, ``StandardRoIHead``) as the official
MASA configs set them, so official checkpoints keep their ``rpn_head.*`` / ``roi_head.bbox_head.*``
keys. See ``docs/detection_head.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, nms

from masa_core.detectors.base import Detections
from masa_core.models.roi_extractor import MultiLevelRoIAlign

RPN_STDS = (1.0, 1.0, 1.0, 1.0)
RCNN_STDS = (0.1, 0.1, 0.2, 0.2)
ZERO_MEANS = (0.0, 0.0, 0.0, 0.0)
WH_RATIO_CLIP = 16 / 1000
MAX_RATIO = abs(math.log(WH_RATIO_CLIP))  # ≈ 4.135: the clamp on decoded log width/height deltas


class AnchorGenerator:
    """mmdet 3.x ``AnchorGenerator`` (center offset 0, base size = stride, scale-major, no rounding).

    Per level the A = len(ratios) · len(scales) base anchors are centred on (0, 0) with
    w = base · (1/√ratio) · scale, h = base · √ratio · scale (ratio = h / w); grid anchors add
    (x · stride, y · stride) and are ordered (y, x, a), row-major: the order of a head output
    ``(A·k, H, W)`` permuted to ``(H, W, A·k)``.
    """

    def __init__(
        self,
        strides: Sequence[int] = (4, 8, 16, 32, 64),
        ratios: Sequence[float] = (0.5, 1.0, 2.0),
        scales: Sequence[float] = (8.0,),
    ) -> None:
        self.strides = tuple(int(s) for s in strides)
        ratios_t = torch.tensor(list(ratios), dtype=torch.float32)
        scales_t = torch.tensor(list(scales), dtype=torch.float32)
        h_ratios = torch.sqrt(ratios_t)
        w_ratios = 1 / h_ratios
        self.base_anchors: list[Tensor] = []
        for base in self.strides:  # same operation order as mmdet, so float32 values agree bit for bit
            ws = (base * w_ratios[:, None] * scales_t[None, :]).view(-1)
            hs = (base * h_ratios[:, None] * scales_t[None, :]).view(-1)
            self.base_anchors.append(torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1))

    @property
    def num_base_anchors(self) -> int:
        """A, the anchors per feature-map location (the same on every level)."""
        return int(self.base_anchors[0].shape[0])

    def single_level(self, featmap_hw: tuple[int, int], level: int, device: torch.device | str = "cpu") -> Tensor:
        """Anchors of one level: (H·W·A, 4) float32 x1y1x2y2 in input pixels."""
        feat_h, feat_w = featmap_hw
        stride = self.strides[level]
        shift_x = torch.arange(feat_w, device=device).float() * stride
        shift_y = torch.arange(feat_h, device=device).float() * stride
        xx = shift_x.repeat(feat_h)
        yy = shift_y.view(-1, 1).repeat(1, feat_w).view(-1)
        shifts = torch.stack([xx, yy, xx, yy], dim=-1)
        return (self.base_anchors[level].to(device)[None] + shifts[:, None]).view(-1, 4)

    def grid_anchors(
        self, featmap_sizes: Sequence[tuple[int, int]], device: torch.device | str = "cpu"
    ) -> list[Tensor]:
        """Anchors of every level, a list of (H_l·W_l·A, 4) float32."""
        return [self.single_level(tuple(hw), i, device) for i, hw in enumerate(featmap_sizes)]


def encode_deltas(
    boxes: Tensor, targets: Tensor, means: Sequence[float] = ZERO_MEANS, stds: Sequence[float] = RPN_STDS
) -> Tensor:
    """(N, 4) reference boxes and (N, 4) target boxes → (N, 4) normalised deltas (dx, dy, dw, dh)."""
    boxes, targets = boxes.float(), targets.float()
    pxy, pwh = (boxes[:, :2] + boxes[:, 2:]) * 0.5, boxes[:, 2:] - boxes[:, :2]
    gxy, gwh = (targets[:, :2] + targets[:, 2:]) * 0.5, targets[:, 2:] - targets[:, :2]
    deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=1)
    return (deltas - deltas.new_tensor(means)) / deltas.new_tensor(stds)


def decode_deltas(
    boxes: Tensor,
    deltas: Tensor,
    means: Sequence[float] = ZERO_MEANS,
    stds: Sequence[float] = RPN_STDS,
    max_hw: tuple[float, float] | None = None,
    wh_ratio_clip: float = WH_RATIO_CLIP,
) -> Tensor:
    """mmdet ``delta2bbox``: (N, 4) reference boxes and (N, 4) deltas → (N, 4) float32 boxes.

    dw, dh are clamped to ±|log(wh_ratio_clip)|; with ``max_hw = (h, w)`` x is clipped to [0, w]
    and y to [0, h].
    """
    boxes, deltas = boxes.float(), deltas.float()
    if len(deltas) == 0:
        return deltas.reshape(0, 4)
    d = deltas * deltas.new_tensor(stds) + deltas.new_tensor(means)
    pxy, pwh = (boxes[:, :2] + boxes[:, 2:]) * 0.5, boxes[:, 2:] - boxes[:, :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    gxy = pxy + pwh * d[:, :2]
    gwh = pwh * d[:, 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    out = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=1)
    if max_hw is not None:
        out[:, 0::2] = out[:, 0::2].clamp(min=0, max=max_hw[1])
        out[:, 1::2] = out[:, 1::2].clamp(min=0, max=max_hw[0])
    return out


class RPNHead(nn.Module):
    """mmdet ``RPNHead``: a shared 3×3 conv + ReLU, then per anchor a sigmoid objectness logit and
    four deltas, on every pyramid level.

    Keys: ``rpn_conv`` (3×3, C→C), ``rpn_cls`` (1×1, C→A), ``rpn_reg`` (1×1, C→4A).
    """

    def __init__(
        self,
        in_channels: int = 256,
        feat_channels: int = 256,
        strides: Sequence[int] = (4, 8, 16, 32, 64),
        ratios: Sequence[float] = (0.5, 1.0, 2.0),
        scales: Sequence[float] = (8.0,),
    ) -> None:
        super().__init__()
        self.anchor_generator = AnchorGenerator(strides, ratios, scales)
        num_anchors = self.anchor_generator.num_base_anchors
        self.rpn_conv = nn.Conv2d(in_channels, feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(feat_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, num_anchors * 4, 1)
        for conv in (self.rpn_conv, self.rpn_cls, self.rpn_reg):  # mmdet: Normal(std=0.01) on Conv2d
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, feats: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Pyramid of (B, C, H_l, W_l) maps → objectness logits (B, A, H_l, W_l) and deltas (B, 4A, H_l, W_l)."""
        dtype = self.rpn_conv.weight.dtype
        cls_scores, bbox_preds = [], []
        for x in feats:
            x = torch.relu(self.rpn_conv(x.to(dtype)))
            cls_scores.append(self.rpn_cls(x))
            bbox_preds.append(self.rpn_reg(x))
        return cls_scores, bbox_preds

    def predict(
        self,
        feats: Sequence[Tensor],
        valid_hw: tuple[float, float],
        nms_pre: int = 1000,
        max_per_img: int = 1000,
        iou_threshold: float = 0.7,
        min_bbox_size: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Proposals of image 0 of the batch: ((P, 4) float32 boxes in input pixels, (P,) scores),
        P ≤ ``max_per_img``, sorted by score (mmdet test cfg of the MASA configs)."""
        cls_scores, bbox_preds = self(feats)
        return self.predict_by_feat(
            cls_scores, bbox_preds, valid_hw, nms_pre, max_per_img, iou_threshold, min_bbox_size
        )

    def predict_by_feat(
        self,
        cls_scores: Sequence[Tensor],
        bbox_preds: Sequence[Tensor],
        valid_hw: tuple[float, float],
        nms_pre: int = 1000,
        max_per_img: int = 1000,
        iou_threshold: float = 0.7,
        min_bbox_size: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Head outputs → proposals: top ``nms_pre`` per level, decode (clip to ``valid_hw``), drop
        boxes not wider and taller than ``min_bbox_size``, NMS per level, keep ``max_per_img``."""
        device = cls_scores[0].device
        anchors = self.anchor_generator.grid_anchors([tuple(c.shape[-2:]) for c in cls_scores], device)
        all_scores, all_deltas, all_anchors, level_ids = [], [], [], []
        for level, (cls, reg, anc) in enumerate(zip(cls_scores, bbox_preds, anchors, strict=True)):
            scores = cls[0].permute(1, 2, 0).reshape(-1).float().sigmoid()
            deltas = reg[0].permute(1, 2, 0).reshape(-1, 4).float()
            if 0 < nms_pre < scores.shape[0]:
                scores, order = scores.sort(descending=True)
                scores, order = scores[:nms_pre], order[:nms_pre]
                deltas, anc = deltas[order], anc[order]
            all_scores.append(scores)
            all_deltas.append(deltas)
            all_anchors.append(anc)
            level_ids.append(torch.full_like(scores, level, dtype=torch.long))
        boxes = decode_deltas(torch.cat(all_anchors), torch.cat(all_deltas), ZERO_MEANS, RPN_STDS, valid_hw)
        scores, levels = torch.cat(all_scores), torch.cat(level_ids)
        if min_bbox_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            valid = (wh > min_bbox_size).all(dim=1)
            boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
        if len(boxes) == 0:
            return boxes.reshape(0, 4), scores
        keep = batched_nms(boxes, scores, levels, iou_threshold)[:max_per_img]
        return boxes[keep], scores[keep]


class ConvNormReLU(nn.Module):
    """mmcv ``ConvModule``: 3×3 conv → optional norm (keyed ``bn`` or ``gn``) → ReLU; the conv has a
    bias only without a norm."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | None = None, gn_groups: int = 32) -> None:
        super().__init__()
        self.norm_name = norm
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm is None)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)
        if norm == "bn":
            self.bn = nn.BatchNorm2d(out_channels)
        elif norm == "gn":
            self.gn = nn.GroupNorm(gn_groups, out_channels)
        elif norm is not None:
            raise ValueError(f"norm must be None, 'bn' or 'gn', not {norm!r}")
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        return self.activate(x)


class BoxHead(nn.Module):
    """mmdet ``ConvFCBBoxHead`` with shared layers only: (N, C, 7, 7) RoI features → class logits
    (N, num_classes + 1; the last is background, softmax) and deltas (N, 4) class-agnostic or
    (N, 4·num_classes).

    ``shared2fc()`` is ``Shared2FCBBoxHead`` (MASA-SAM / Grounding-DINO / Detic: keys
    ``shared_fcs.{0,1}``, ``fc_cls``, ``fc_reg``); ``shared4conv1fc("bn")`` is
    ``Shared4Conv1FCBBoxHead`` with SyncBN as in MASA-R50 (keys ``shared_convs.{0..3}.conv`` /
    ``.bn``, ``shared_fcs.0``, ``fc_cls``, ``fc_reg``).
    """

    def __init__(
        self,
        in_channels: int = 256,
        roi_feat_size: int = 7,
        num_shared_convs: int = 0,
        num_shared_fcs: int = 2,
        conv_out_channels: int = 256,
        fc_out_channels: int = 1024,
        num_classes: int = 1,
        reg_class_agnostic: bool = True,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if num_shared_convs + num_shared_fcs == 0:
            raise ValueError("BoxHead needs at least one shared conv or fc")
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        self.shared_convs = nn.ModuleList(
            ConvNormReLU(in_channels if i == 0 else conv_out_channels, conv_out_channels, norm)
            for i in range(num_shared_convs)
        )
        last = conv_out_channels if num_shared_convs else in_channels
        last *= roi_feat_size * roi_feat_size
        self.shared_fcs = nn.ModuleList()
        for i in range(num_shared_fcs):
            self.shared_fcs.append(nn.Linear(last if i == 0 else fc_out_channels, fc_out_channels))
        if num_shared_fcs:
            last = fc_out_channels
        self.fc_cls = nn.Linear(last, num_classes + 1)
        self.fc_reg = nn.Linear(last, 4 if reg_class_agnostic else 4 * num_classes)
        for fc in self.shared_fcs:  # mmdet init: Xavier-uniform shared fcs, Normal 0.01 / 0.001 cls / reg
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, 0, 0.01)
        nn.init.normal_(self.fc_reg.weight, 0, 0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)

    @classmethod
    def shared2fc(cls, in_channels: int = 256, fc_out_channels: int = 1024, num_classes: int = 1) -> BoxHead:
        """``Shared2FCBBoxHead``: 0 convs, 2 fcs."""
        return cls(
            in_channels, num_shared_convs=0, num_shared_fcs=2, fc_out_channels=fc_out_channels, num_classes=num_classes
        )

    @classmethod
    def shared4conv1fc(
        cls, norm: str | None = "bn", in_channels: int = 256, fc_out_channels: int = 1024, num_classes: int = 1
    ) -> BoxHead:
        """``Shared4Conv1FCBBoxHead``: 4 convs (256, ``norm``), 1 fc."""
        return cls(
            in_channels,
            num_shared_convs=4,
            num_shared_fcs=1,
            fc_out_channels=fc_out_channels,
            num_classes=num_classes,
            norm=norm,
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C, 7, 7) → (cls logits (N, num_classes + 1), deltas (N, 4 or 4·num_classes))."""
        x = x.to(self.fc_cls.weight.dtype)
        for conv in self.shared_convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = torch.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)

    def predict_by_feat(
        self,
        proposals: Tensor,
        cls_score: Tensor,
        bbox_pred: Tensor,
        valid_hw: tuple[float, float],
        score_thr: float = 0.02,
        iou_threshold: float = 0.5,
        max_per_img: int = 50,
        class_agnostic_nms: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """mmdet ``BBoxHead._predict_by_feat_single`` + ``multiclass_nms``: softmax, decode each
        proposal with stds (0.1, 0.1, 0.2, 0.2) and clip to ``valid_hw``, keep class scores
        > ``score_thr``, NMS, keep ``max_per_img``.

        proposals (N, 4) → (boxes (D, 4) float32, scores (D,), labels (D,) int64), sorted by score.
        """
        n = len(proposals)
        scores = torch.softmax(cls_score.float(), dim=-1)[:, :-1]  # (N, K), background dropped
        k = scores.shape[1]
        reg_k = 1 if self.reg_class_agnostic else k
        deltas = bbox_pred.float().reshape(n * reg_k, 4)
        boxes = decode_deltas(proposals.repeat_interleave(reg_k, dim=0), deltas, ZERO_MEANS, RCNN_STDS, valid_hw)
        boxes = boxes.reshape(n, reg_k, 4).expand(n, k, 4).reshape(-1, 4)
        labels = torch.arange(k, device=scores.device).expand(n, k).reshape(-1)
        scores = scores.reshape(-1)
        valid = scores > score_thr
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        if len(boxes) == 0:
            return boxes.reshape(0, 4), scores, labels
        keep = (
            nms(boxes, scores, iou_threshold)
            if class_agnostic_nms
            else batched_nms(boxes, scores, labels, iou_threshold)
        )
        keep = keep[:max_per_img]
        return boxes[keep], scores[keep], labels[keep]


class RoIHead(nn.Module):
    """mmdet ``StandardRoIHead`` (box branch only): ``bbox_roi_extractor`` (no weights) + ``bbox_head``."""

    def __init__(self, bbox_head: BoxHead, bbox_roi_extractor: MultiLevelRoIAlign | None = None) -> None:
        super().__init__()
        self.bbox_roi_extractor = bbox_roi_extractor or MultiLevelRoIAlign(strides=(4, 8, 16, 32), output_size=7)
        self.bbox_head = bbox_head

    def forward(self, feats: Sequence[Tensor], boxes: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 4) boxes in input pixels → (cls logits, deltas) of ``bbox_head``."""
        dtype = self.bbox_head.fc_cls.weight.dtype
        rois = self.bbox_roi_extractor([f.to(dtype) for f in feats], boxes.to(dtype))
        return self.bbox_head(rois)


class MasaDetectionHead(nn.Module):
    """The MASA adapter's detection branch: ``rpn_head`` + ``roi_head.bbox_head`` on the fused pyramid.

    ``box_head="shared2fc"`` (the SAM variants, default) or ``"shared4conv1fc"`` (MASA-R50, SyncBN →
    ``bn`` keys). ``anchor_strides`` / ``roi_strides`` are those of the pyramid levels (SAM and R50:
    4 … 64 and 4 … 32; MASA-GroundingDINO: 8 … 128 and 8 … 32). The state dict holds exactly the
    official keys ``rpn_head.rpn_{conv,cls,reg}.*`` and ``roi_head.bbox_head.*``.
    """

    def __init__(
        self,
        in_channels: int = 256,
        box_head: str = "shared2fc",
        anchor_strides: Sequence[int] = (4, 8, 16, 32, 64),
        roi_strides: Sequence[int] = (4, 8, 16, 32),
    ) -> None:
        super().__init__()
        self.rpn_head = RPNHead(in_channels, in_channels, strides=anchor_strides)
        if box_head == "shared2fc":
            bbox_head = BoxHead.shared2fc(in_channels)
        elif box_head == "shared4conv1fc":
            bbox_head = BoxHead.shared4conv1fc("bn", in_channels)
        else:
            raise ValueError(f"box_head must be 'shared2fc' or 'shared4conv1fc', not {box_head!r}")
        self.roi_head = RoIHead(bbox_head, MultiLevelRoIAlign(strides=tuple(roi_strides), output_size=7))

    @torch.inference_mode()
    def detect(
        self,
        pyramid: Sequence[Tensor],
        input_hw: tuple[int, int],
        valid_hw: tuple[int, int],
        scale: float,
        score_thr: float = 0.02,
        max_per_img: int = 50,
        frame_hw: tuple[int, int] | None = None,
        rpn_nms_pre: int = 1000,
        rpn_max_per_img: int = 1000,
        rpn_iou_threshold: float = 0.7,
        iou_threshold: float = 0.5,
    ) -> Detections:
        """Class-agnostic object boxes for image 0 of a fused pyramid.

        pyramid: one (1, C, S/s, S/s) map per anchor stride s = 4 … 64 (fp16 or fp32; boxes in fp32).
        input_hw: the padded model input, (S, S) or smaller (``MasaModel.pad_multiple``); valid_hw:
        (h, w) of the resized image inside it (mmdet's ``img_shape``: boxes are clipped to it); scale:
        frame → model pixels.
        frame_hw: (H, W) of the original frame for the final clip; default ``valid_hw / scale``.
        Returns :class:`Detections` in original frame pixels, labels 0, sorted by score.
        """
        if len(pyramid) != len(self.rpn_head.anchor_generator.strides):
            raise ValueError(
                f"expected {len(self.rpn_head.anchor_generator.strides)} pyramid levels, got {len(pyramid)}"
            )
        stride0 = self.rpn_head.anchor_generator.strides[0]
        if tuple(pyramid[0].shape[-2:]) != (math.ceil(input_hw[0] / stride0), math.ceil(input_hw[1] / stride0)):
            raise ValueError(
                f"pyramid level 0 is {tuple(pyramid[0].shape[-2:])}, not input {tuple(input_hw)} / {stride0}"
            )
        proposals, _ = self.rpn_head.predict(
            pyramid, valid_hw, nms_pre=rpn_nms_pre, max_per_img=rpn_max_per_img, iou_threshold=rpn_iou_threshold
        )
        if len(proposals) == 0:
            return Detections.empty()
        cls_score, bbox_pred = self.roi_head(pyramid, proposals)
        boxes, scores, _ = self.roi_head.bbox_head.predict_by_feat(
            proposals, cls_score, bbox_pred, valid_hw, score_thr, iou_threshold, max_per_img
        )
        if len(boxes) == 0:
            return Detections.empty()
        frame_h, frame_w = frame_hw if frame_hw is not None else (valid_hw[0] / scale, valid_hw[1] / scale)
        boxes = boxes / scale
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, frame_w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, frame_h)
        return Detections(boxes.cpu().numpy(), scores.cpu().numpy(), np.zeros(len(boxes), dtype=np.int64))
