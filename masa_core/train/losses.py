"""MASA's training losses: the instance contrastive loss with its auxiliary L2 loss (track head),
and Faster R-CNN's RPN + RoI box losses for distilling SAM's object prior (detection head).

Box matching and sampling use torchvision's ``Matcher`` and ``BalancedPositiveNegativeSampler``;
box deltas use the detection head's own mmdet encoding, so training and inference agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher
from torchvision.ops import box_iou

from masa_core.models.detection_head import RCNN_STDS, RPN_STDS, ZERO_MEANS, encode_deltas


def contrastive_loss(
    key: Tensor, ref: Tensor, targets: Tensor, temperature: float = 0.07, ignore: Tensor | None = None
) -> Tensor:
    """Multi-positive InfoNCE over cosine similarities / ``temperature`` (the paper's L_C).

    key (K, D), ref (R, D) embeddings; targets (K, R) is 1 where key k and ref r are the same
    instance; ``ignore`` (K, R), optional, marks pairs that are neither positive nor negative.
    Rows without a positive are skipped; each row's positives share one unit of probability mass
    (the official "unbiased" form). Returns the mean over rows, 0 if none.
    """
    valid = targets.sum(1) > 0
    if not valid.any():
        return key.sum() * 0
    logits = F.normalize(key[valid], dim=1) @ F.normalize(ref, dim=1).T / temperature
    labels = targets[valid].float()
    negatives = 1 - labels
    if ignore is not None:
        negatives = negatives * (~ignore[valid]).float()
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    pos_share = labels / labels.sum(1, keepdim=True)
    denom = (logits.exp() * (pos_share + negatives)).sum(1, keepdim=True)
    log_prob = logits - denom.log()
    return (-(labels * log_prob).sum(1) / labels.sum(1)).mean()


def auxiliary_l2_loss(
    key: Tensor,
    ref: Tensor,
    targets: Tensor,
    neg_pos_ub: int = 3,
    pos_margin: float = 0.0,
    neg_margin: float = 0.1,
    ignore: Tensor | None = None,
) -> Tensor:
    """QDTrack's auxiliary loss on cosine similarities: (cos - 1)² for positives, max(cos - margin, 0)²
    for the hardest negatives, at most ``neg_pos_ub`` per positive (official MASA margins); pairs
    marked in ``ignore`` are never negatives."""
    cos = F.normalize(key, dim=1) @ F.normalize(ref, dim=1).T
    t = targets.float()
    pred = torch.where(t > 0, cos + pos_margin, cos - neg_margin).clamp(0, 1)
    loss = (pred - t) ** 2
    pos = t > 0
    num_pos = int(pos.sum())
    weight = pos.float()
    excluded = pos if ignore is None else pos | ignore
    neg_loss = loss.detach().masked_fill(excluded, -1).flatten()
    num_neg = min(int((~excluded).sum()), max(num_pos, 1) * neg_pos_ub)
    if num_neg:
        weight.view(-1)[neg_loss.topk(num_neg).indices] = 1.0
    return (loss * weight).sum() / weight.sum().clamp(min=1)


def nested_pairs(boxes: Tensor, threshold: float) -> Tensor:
    """(N, N) bool: instance boxes of which one lies inside the other (intersection over the
    smaller box's area ≥ ``threshold``), e.g. SAM's masks of a person and of the person's coat;
    the diagonal is False."""
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(-1)
    smaller = torch.minimum(area[:, None], area[None, :]).clamp(min=1e-6)
    nested = inter / smaller >= threshold
    nested.fill_diagonal_(False)
    return nested


def match_targets(boxes: Tensor, gt: Tensor, high: float, low: float) -> Tensor:
    """For each box the index of its ground truth (IoU ≥ ``high``), -1 background (< ``low``) or
    -2 ignored (in between), as torchvision's ``Matcher``; every box is background without GT."""
    if len(gt) == 0:
        return torch.full((len(boxes),), -1, dtype=torch.long, device=boxes.device)
    return Matcher(high, low, allow_low_quality_matches=False)(box_iou(gt, boxes))


def sample(matched: Tensor, num: int, pos_fraction: float) -> tuple[Tensor, Tensor]:
    """Indices of sampled positives and negatives (torchvision's balanced sampler)."""
    pos, neg = BalancedPositiveNegativeSampler(num, pos_fraction)([(matched >= 0).long() - (matched == -2).long()])
    return pos[0].nonzero().squeeze(1), neg[0].nonzero().squeeze(1)


@dataclass(frozen=True)
class DetectionLossConfig:
    """mmdet Faster R-CNN training settings of the official configs."""

    rpn_pos_iou: float = 0.7
    rpn_neg_iou: float = 0.3
    rpn_num: int = 256
    rpn_pos_fraction: float = 0.5
    roi_pos_iou: float = 0.5
    roi_neg_iou: float = 0.5
    roi_num: int = 512
    roi_pos_fraction: float = 0.25


def rpn_loss(
    cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor], anchors: Sequence[Tensor], gt: Tensor, i: int,
    cfg: DetectionLossConfig,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Objectness BCE over sampled anchors and L1 on positive anchors' deltas, for image ``i``."""
    scores = torch.cat([c[i].permute(1, 2, 0).reshape(-1) for c in cls_scores]).float()
    deltas = torch.cat([b[i].permute(1, 2, 0).reshape(-1, 4) for b in bbox_preds]).float()
    all_anchors = torch.cat(list(anchors))
    matched = match_targets(all_anchors, gt, cfg.rpn_pos_iou, cfg.rpn_neg_iou)
    if len(gt):  # every GT keeps its best anchor (mmdet's min_pos_iou / low-quality matches)
        best = box_iou(gt, all_anchors).argmax(dim=1)
        matched[best] = torch.arange(len(gt), device=gt.device)
    pos, neg = sample(matched, cfg.rpn_num, cfg.rpn_pos_fraction)
    idx = torch.cat([pos, neg])
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).float()
    loss_cls = F.binary_cross_entropy_with_logits(scores[idx], labels, reduction="sum") / max(len(idx), 1)
    if len(pos) == 0:
        return loss_cls, deltas.sum() * 0
    target = encode_deltas(all_anchors[pos], gt[matched[pos]], ZERO_MEANS, RPN_STDS)
    loss_box = F.l1_loss(deltas[pos], target, reduction="sum") / max(len(idx), 1)
    return loss_cls, loss_box


def roi_samples(proposals: Tensor, gt: Tensor, cfg: DetectionLossConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Sampled RoIs (GT added as proposals), their GT indices (-1 background) and the positive mask."""
    boxes = torch.cat([proposals, gt])
    matched = match_targets(boxes, gt, cfg.roi_pos_iou, cfg.roi_neg_iou)
    pos, neg = sample(matched, cfg.roi_num, cfg.roi_pos_fraction)
    idx = torch.cat([pos, neg])
    return boxes[idx], matched[idx].clamp(min=-1), torch.arange(len(idx), device=boxes.device) < len(pos)


def roi_loss(
    cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, gt_index: Tensor, is_pos: Tensor, gt: Tensor
) -> tuple[Tensor, Tensor]:
    """Class-agnostic RoI head: cross-entropy (label 0 object, 1 background, as mmdet) and L1 on
    positive deltas with stds (0.1, 0.1, 0.2, 0.2)."""
    labels = torch.where(is_pos, 0, cls_score.shape[1] - 1)
    loss_cls = F.cross_entropy(cls_score.float(), labels)
    if not is_pos.any():
        return loss_cls, bbox_pred.sum() * 0
    target = encode_deltas(rois[is_pos], gt[gt_index[is_pos]], ZERO_MEANS, RCNN_STDS)
    loss_box = F.l1_loss(bbox_pred[is_pos, :4].float(), target, reduction="sum") / max(len(rois), 1)
    return loss_cls, loss_box
