"""The training objective of the MASA adapter on a batch of view pairs: L = L_det + L_track.

L_det distils SAM's object prior: RPN and RoI box losses with boxes around SAM's masks as ground
truth. L_track is quasi-dense: around every instance many boxes (RPN proposals, the instance's box
and jittered copies of it) are matched by IoU; positives of the key view are contrasted against all
sampled boxes of the reference view, same instance = positive, everything else (other instances and
background boxes) = negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from masa_core.models.masa_model import MasaAdapter
from masa_core.train.losses import (
    DetectionLossConfig,
    auxiliary_l2_loss,
    contrastive_loss,
    match_targets,
    nested_pairs,
    roi_loss,
    roi_samples,
    rpn_loss,
    sample,
)


@dataclass(frozen=True)
class TrackLossConfig:
    """Contrastive loss (paper: cosine / τ = 0.07) and QDTrack's auxiliary loss (official weights)."""

    temperature: float = 0.07
    weight: float = 0.25
    aux_weight: float = 1.0
    aux_neg_margin: float = 0.1
    aux_neg_pos_ub: int = 3
    samples: int = 128  # boxes sampled per view
    pos_fraction: float = 0.5
    pos_iou: float = 0.7
    neg_iou: float = 0.3
    jitter_copies: int = 4  # jittered copies of each instance box added to the proposals
    jitter: float = 0.1  # of the box size
    nested_ignore: float = 0.0  # > 0: instances whose boxes nest (intersection / smaller ≥ this) are not negatives


def jittered(gt: Tensor, copies: int, amount: float, hw: tuple[int, int]) -> Tensor:
    """``copies`` random shifts/rescalings of each box by up to ``amount`` of its size, clipped."""
    if copies == 0 or len(gt) == 0:
        return gt.new_zeros(0, 4)
    size = (gt[:, 2:] - gt[:, :2]).repeat(1, 2).repeat(copies, 1)
    out = gt.repeat(copies, 1) + (torch.rand_like(size) * 2 - 1) * amount * size
    out[:, 0::2] = out[:, 0::2].clamp(0, hw[1])
    out[:, 1::2] = out[:, 1::2].clamp(0, hw[0])
    return out[(out[:, 2] - out[:, 0] > 1) & (out[:, 3] - out[:, 1] > 1)]


class AdapterObjective(nn.Module):
    """Wraps the adapter so one ``forward`` computes every loss (what DDP needs)."""

    def __init__(
        self, adapter: MasaAdapter, track: TrackLossConfig | None = None, det: DetectionLossConfig | None = None
    ) -> None:
        super().__init__()
        self.adapter = adapter
        self.track = track or TrackLossConfig()
        self.det = det or DetectionLossConfig()

    def nested(self, gt: Tensor, gt_ids: Tensor, key_lab: Tensor, ref_lab: Tensor) -> Tensor | None:
        """(K, R) pairs of key and reference samples whose instances nest in the key view (SAM's
        part-and-whole masks): neither positive nor negative. None when ``nested_ignore`` is 0."""
        if self.track.nested_ignore <= 0 or len(gt) < 2:
            return None
        nested = nested_pairs(gt.float(), self.track.nested_ignore).float()
        key_onehot = (key_lab[:, None] == gt_ids[None, :]).float()
        ref_onehot = (ref_lab[:, None] == gt_ids[None, :]).float()
        return (key_onehot @ nested @ ref_onehot.T) > 0

    def forward(self, taps: list[Tensor], boxes: list[Tensor], ids: list[Tensor]) -> dict[str, Tensor]:
        """Backbone maps of 2B views (B keys, then their B references), per view the (N, 4) instance
        boxes in input pixels and (N,) instance IDs → weighted loss terms (sum them to train)."""
        n = len(boxes)
        if n % 2:
            raise ValueError("views come in pairs: B key views, then their B reference views")
        pyramid = self.adapter(taps)
        head = self.adapter.detection_head
        # The input size from the finest pyramid level (stride 4 for every variant), not from the
        # backbone's taps, whose stride differs between backbones (16 for ViTs, 4 for CNNs).
        stride0 = head.rpn_head.anchor_generator.strides[0]
        hw = (pyramid[0].shape[-2] * stride0, pyramid[0].shape[-1] * stride0)
        cls_scores, bbox_preds = head.rpn_head(pyramid)
        anchors = head.rpn_head.anchor_generator.grid_anchors(
            [tuple(c.shape[-2:]) for c in cls_scores], boxes[0].device
        )
        terms: dict[str, list[Tensor]] = {k: [] for k in ("rpn_cls", "rpn_box", "roi_cls", "roi_box")}
        embeds, labels = [], []
        for i, gt in enumerate(boxes):
            rc, rb = rpn_loss(cls_scores, bbox_preds, anchors, gt, i, self.det)
            with torch.no_grad():
                proposals, _ = head.rpn_head.predict_by_feat(
                    [c[i : i + 1].detach() for c in cls_scores],
                    [b[i : i + 1].detach() for b in bbox_preds],
                    hw,
                    nms_pre=1000,
                    max_per_img=300,
                )
            feats = [f[i : i + 1] for f in pyramid]
            rois, gt_index, is_pos = roi_samples(proposals, gt, self.det)
            cls, reg = head.roi_head(feats, rois)
            lc, lb = roi_loss(cls, reg, rois, gt_index, is_pos, gt)
            for key, value in zip(terms, (rc, rb, lc, lb), strict=True):
                terms[key].append(value)
            # Quasi-dense track samples of this view.
            candidates = torch.cat([proposals, gt, jittered(gt, self.track.jitter_copies, self.track.jitter, hw)])
            matched = match_targets(candidates, gt, self.track.pos_iou, self.track.neg_iou)
            pos, neg = sample(matched, self.track.samples, self.track.pos_fraction)
            keep = torch.cat([pos, neg])
            embeds.append(self.adapter.embed(feats, candidates[keep]))
            lab = torch.full((len(keep),), -1, dtype=torch.long, device=gt.device)
            lab[: len(pos)] = ids[i][matched[pos]]
            labels.append(lab)
        out = {k: torch.stack(v).mean() for k, v in terms.items()}
        track, aux = self._track_losses(embeds, labels, boxes, ids)
        out["track"] = self.track.weight * track
        out["track_aux"] = self.track.aux_weight * aux
        return out

    def _track_losses(
        self, embeds: list[Tensor], labels: list[Tensor], boxes: list[Tensor], ids: list[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Mean contrastive and auxiliary L2 losses over the (key, reference) view pairs, unweighted."""
        half = len(boxes) // 2
        track, aux = [], []
        for k in range(half):
            key_pos = labels[k] >= 0
            key_emb, key_lab = embeds[k][key_pos], labels[k][key_pos]
            ref_emb, ref_lab = embeds[k + half], labels[k + half]
            targets = (key_lab[:, None] == ref_lab[None, :]) & (ref_lab[None, :] >= 0)
            ignore = self.nested(boxes[k], ids[k], key_lab, ref_lab)
            track.append(contrastive_loss(key_emb, ref_emb, targets, self.track.temperature, ignore))
            aux.append(
                auxiliary_l2_loss(
                    key_emb,
                    ref_emb,
                    targets,
                    self.track.aux_neg_pos_ub,
                    neg_margin=self.track.aux_neg_margin,
                    ignore=ignore,
                )
            )
        return torch.stack(track).mean(), torch.stack(aux).mean()
