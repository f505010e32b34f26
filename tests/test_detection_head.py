"""The adapter's detection branch: anchors, box coding, RPN and box head, against hand-computed mmdet
values and hand-set weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from masa_core.detectors.base import Detections
from masa_core.models.detection_head import (
    MAX_RATIO,
    RCNN_STDS,
    AnchorGenerator,
    BoxHead,
    MasaDetectionHead,
    decode_deltas,
    encode_deltas,
)

torch.set_num_threads(1)

R2 = math.sqrt(2.0)


def pyramid(size: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 256, size // s, size // s, generator=g).to(dtype) for s in (4, 8, 16, 32, 64)]


@pytest.fixture(scope="module")
def head() -> MasaDetectionHead:
    torch.manual_seed(0)
    return MasaDetectionHead().eval()


def test_anchors_match_mmdet_hand_computed() -> None:
    gen = AnchorGenerator()
    assert gen.num_base_anchors == 3
    # base anchors at stride 4: base 4 · scale 8 = 32 px; ratio = h / w; order: ratios 0.5, 1, 2
    expected_base = torch.tensor(
        [[-16 * R2, -8 * R2, 16 * R2, 8 * R2], [-16, -16, 16, 16], [-8 * R2, -16 * R2, 8 * R2, 16 * R2]]
    )
    torch.testing.assert_close(gen.base_anchors[0], expected_base.float())
    torch.testing.assert_close(gen.base_anchors[1], 2 * expected_base.float())
    lvl0, lvl1 = gen.grid_anchors([(2, 3), (1, 2)])
    assert lvl0.shape == (2 * 3 * 3, 4) and lvl1.shape == (1 * 2 * 3, 4)
    # order (y, x, anchor): index = 3 · (y · W + x) + a
    for y in range(2):
        for x in range(3):
            for a in range(3):
                shift = torch.tensor([4.0 * x, 4.0 * y, 4.0 * x, 4.0 * y])
                torch.testing.assert_close(lvl0[3 * (y * 3 + x) + a], expected_base[a].float() + shift)
    torch.testing.assert_close(lvl1[3 * 1 + 1], torch.tensor([8.0 - 32, -32, 8 + 32, 32]))
    torch.testing.assert_close(lvl1[0], torch.tensor([-32 * R2, -16 * R2, 32 * R2, 16 * R2]).float())


def test_delta_round_trip_and_clamp() -> None:
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(50, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], 1)
    xy = torch.rand(50, 2, generator=g) * 100
    targets = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], 1)
    for stds in ((1.0, 1.0, 1.0, 1.0), RCNN_STDS):
        deltas = encode_deltas(boxes, targets, stds=stds)
        torch.testing.assert_close(decode_deltas(boxes, deltas, stds=stds), targets, atol=1e-3, rtol=1e-5)
    # mmdet's delta2bbox docstring example (clip to 32 × 32)
    rois = torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [5, 5, 5, 5]])
    deltas = torch.tensor([[0.0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 2, -1], [0.7, -1.9, -0.5, 0.3]])
    expected = torch.tensor([[0, 0, 1, 1], [0.1409, 0.1409, 2.8591, 2.8591], [0, 0.3161, 4.1945, 0.6839], [5, 5, 5, 5]])
    torch.testing.assert_close(decode_deltas(rois, deltas, max_hw=(32, 32)), expected, atol=1e-4, rtol=0)
    # dw, dh clamp at |log(16/1000)|: a 10× log-scale delta grows the box by 1000/16 only
    assert math.isclose(MAX_RATIO, math.log(1000 / 16))
    out = decode_deltas(torch.tensor([[0.0, 0, 2, 4]]), torch.tensor([[0.0, 0, 10, -10]]))
    torch.testing.assert_close(out[0, 2] - out[0, 0], torch.tensor(2 * 1000 / 16))
    torch.testing.assert_close(out[0, 3] - out[0, 1], torch.tensor(4 * 16 / 1000))


def check_detections(dets: Detections, frame_hw: tuple[float, float], max_per_img: int) -> None:
    assert isinstance(dets, Detections)
    assert 0 < len(dets) <= max_per_img
    assert np.isfinite(dets.boxes).all() and np.isfinite(dets.scores).all()
    assert (dets.boxes[:, 0::2] >= 0).all() and (dets.boxes[:, 0::2] <= frame_hw[1] + 1e-3).all()
    assert (dets.boxes[:, 1::2] >= 0).all() and (dets.boxes[:, 1::2] <= frame_hw[0] + 1e-3).all()
    assert (dets.boxes[:, 2:] >= dets.boxes[:, :2]).all()
    assert ((dets.scores >= 0) & (dets.scores <= 1)).all()
    assert (np.diff(dets.scores) <= 0).all()
    assert (dets.labels == 0).all()


def test_random_pyramid_gives_valid_clipped_boxes(head: MasaDetectionHead) -> None:
    feats = pyramid(128)
    # a 640 × 480 frame at scale 0.2 → 128 × 96 inside the 128 × 128 input
    dets = head.detect(feats, (128, 128), (96, 128), 0.2, max_per_img=20)
    check_detections(dets, (480, 640), 20)
    proposals, scores = head.rpn_head.predict(feats, (96, 128))
    assert 0 < len(proposals) <= 1000 and (proposals[:, 3] <= 96).all()
    assert (scores.diff() <= 0).all()


def test_empty_result_path(head: MasaDetectionHead) -> None:
    dets = head.detect(pyramid(128), (128, 128), (128, 128), 1.0, score_thr=1.0)
    assert len(dets) == 0 and dets.boxes.shape == (0, 4)


def test_fp16_pyramid_on_cpu(head: MasaDetectionHead) -> None:
    half = pyramid(128, seed=3, dtype=torch.float16)
    a = head.detect(half, (128, 128), (128, 128), 0.5)
    b = head.detect([f.float() for f in half], (128, 128), (128, 128), 0.5)
    assert a.boxes.dtype == np.float32 and len(a) > 0
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)


def hand_set_head(box_head: str = "shared2fc") -> MasaDetectionHead:
    """RPN fires only for anchor 1 (ratio 1) where pyramid level 0 channel 0 is on; boxes not moved."""
    torch.manual_seed(0)
    h = MasaDetectionHead(box_head=box_head).eval()
    rpn = h.rpn_head
    with torch.no_grad():
        rpn.rpn_conv.weight.zero_()
        rpn.rpn_conv.bias.zero_()
        rpn.rpn_conv.weight[0, 0, 1, 1] = 1.0  # channel 0 passes through
        rpn.rpn_cls.weight.zero_()
        rpn.rpn_cls.bias.fill_(-20.0)
        rpn.rpn_cls.weight[1, 0] = 40.0
        rpn.rpn_reg.weight.zero_()
        rpn.rpn_reg.bias.zero_()
        bbox = h.roi_head.bbox_head
        bbox.fc_reg.weight.zero_()
        bbox.fc_reg.bias.zero_()
        bbox.fc_cls.weight.zero_()
        bbox.fc_cls.bias.copy_(torch.tensor([5.0, 0.0]))  # fg logit 5, bg 0
    return h


def spike_pyramid(y: int, x: int) -> list[torch.Tensor]:
    feats = [torch.zeros(1, 256, 128 // s, 128 // s) for s in (4, 8, 16, 32, 64)]
    feats[0][0, 0, y, x] = 1.0
    return feats


@pytest.mark.parametrize("box_head", ["shared2fc", "shared4conv1fc"])
def test_hand_set_weights_return_the_firing_anchor(box_head: str) -> None:
    h = hand_set_head(box_head)
    feats = spike_pyramid(10, 12)  # anchor centre (48, 40) in input pixels, 32 × 32
    proposals, scores = h.rpn_head.predict(feats, (128, 128))
    torch.testing.assert_close(proposals[0], torch.tensor([32.0, 24, 64, 56]))
    assert scores[0] > 0.99 and (scores[1:] < 1e-6).all()
    dets = h.detect(feats, (128, 128), (128, 128), scale=0.5, rpn_max_per_img=1)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.boxes[0], [64, 48, 128, 112], atol=1e-4)
    assert dets.scores[0] == pytest.approx(1 / (1 + math.exp(-5)), rel=1e-5)


def test_hand_set_deltas_use_rpn_and_rcnn_stds() -> None:
    h = hand_set_head()
    with torch.no_grad():
        h.rpn_head.rpn_reg.weight[1 * 4 + 2, 0] = math.log(2.0)  # anchor 1: dw = log 2 → twice as wide
        h.roi_head.bbox_head.fc_reg.bias.copy_(torch.tensor([1.0, 0, 0, 0]))  # dx 1 · std 0.1 → 0.1 w
    dets = h.detect(spike_pyramid(10, 12), (128, 128), (128, 128), scale=1.0, rpn_max_per_img=1)
    # proposal [16, 24, 80, 56] (64 wide), moved right by 6.4
    np.testing.assert_allclose(dets.boxes[0], [22.4, 24, 86.4, 56], atol=1e-4)


def test_state_dict_keys_follow_official_layout() -> None:
    sam = MasaDetectionHead().state_dict()
    assert {k: tuple(v.shape) for k, v in sam.items()} == {
        "rpn_head.rpn_conv.weight": (256, 256, 3, 3),
        "rpn_head.rpn_conv.bias": (256,),
        "rpn_head.rpn_cls.weight": (3, 256, 1, 1),
        "rpn_head.rpn_cls.bias": (3,),
        "rpn_head.rpn_reg.weight": (12, 256, 1, 1),
        "rpn_head.rpn_reg.bias": (12,),
        "roi_head.bbox_head.shared_fcs.0.weight": (1024, 256 * 49),
        "roi_head.bbox_head.shared_fcs.0.bias": (1024,),
        "roi_head.bbox_head.shared_fcs.1.weight": (1024, 1024),
        "roi_head.bbox_head.shared_fcs.1.bias": (1024,),
        "roi_head.bbox_head.fc_cls.weight": (2, 1024),
        "roi_head.bbox_head.fc_cls.bias": (2,),
        "roi_head.bbox_head.fc_reg.weight": (4, 1024),
        "roi_head.bbox_head.fc_reg.bias": (4,),
    }
    r50 = MasaDetectionHead(box_head="shared4conv1fc").state_dict()
    bbox = {k.removeprefix("roi_head.bbox_head."): tuple(v.shape) for k, v in r50.items() if "bbox_head" in k}
    for i in range(4):
        assert bbox[f"shared_convs.{i}.conv.weight"] == (256, 256, 3, 3)
        assert f"shared_convs.{i}.conv.bias" not in bbox  # mmcv ConvModule: no bias under a norm
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert f"shared_convs.{i}.bn.{name}" in bbox
    assert bbox["shared_fcs.0.weight"] == (1024, 256 * 49)
    assert "shared_fcs.1.weight" not in bbox
    assert bbox["fc_cls.weight"] == (2, 1024) and bbox["fc_reg.weight"] == (4, 1024)


def test_box_head_rejects_unknown_norm() -> None:
    with pytest.raises(ValueError):
        BoxHead(num_shared_convs=1, num_shared_fcs=1, norm="ln")
    with pytest.raises(ValueError):
        MasaDetectionHead(box_head="cascade")


def test_grounding_dino_strides() -> None:
    torch.manual_seed(0)
    h = MasaDetectionHead(anchor_strides=(8, 16, 32, 64, 128), roi_strides=(8, 16, 32)).eval()
    assert h.rpn_head.anchor_generator.base_anchors[0][1].tolist() == [-32, -32, 32, 32]
    g = torch.Generator().manual_seed(5)
    feats = [torch.randn(1, 256, 256 // s, 256 // s, generator=g) for s in (8, 16, 32, 64, 128)]
    check_detections(h.detect(feats, (256, 256), (256, 200), 1.0), (256, 200), 50)
    with pytest.raises(ValueError):
        h.detect(pyramid(256), (256, 256), (256, 256), 1.0)  # stride-4 pyramid for stride-8 anchors
