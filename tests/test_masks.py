"""Instance masks: SAM box prompts on the backbone's own image embedding, per track, and MOTS RLE."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from masa_core import Detections, Pipeline, load_config
from masa_core.config import ConfigError, config_from_dict
from masa_core.formats.mot import read_mot
from masa_core.formats.rle import (
    MotsObject,
    counts_to_string,
    decode,
    encode,
    mask_to_counts,
    read_mots,
    remove_overlaps,
    string_to_counts,
    write_mots,
)
from masa_core.models.checkpoint import CheckpointError, load_state_dict_file
from masa_core.segmentation import BoxPromptSegmenter, box_window, paste_mask
from masa_core.visualize import TrackPainter
from tests.paths import TUD_CAMPUS_GT

OVERRIDES = {"model": {"input_size": 256, "device": "cpu"}}


@pytest.fixture(scope="module")
def segmenter(small_model) -> BoxPromptSegmenter:
    return BoxPromptSegmenter(small_model.input_size)


@pytest.fixture(scope="module")
def masked_run(small_model, segmenter, tud_frames):
    """Two TUD-Campus frames with their GT boxes through a masks-on pipeline, backbone calls counted."""
    cfg = load_config(overrides={**OVERRIDES, "masks": {"enabled": True}})
    pipe = Pipeline(cfg, model=small_model, segmenter=segmenter)
    calls = []
    handle = small_model.backbone.register_forward_hook(lambda *_: calls.append(1))
    try:
        results = [
            pipe.process(tud_frames[i], Detections(gt(i + 1).boxes, np.ones(len(gt(i + 1)), np.float32)))
            for i in range(2)
        ]
        backbone_calls = len(calls)
        empty = pipe.process(tud_frames[2], Detections.empty())
        assert empty.tracks == [] and len(calls) == backbone_calls
    finally:
        handle.remove()
    return results, backbone_calls


def gt(frame: int):
    return read_mot(TUD_CAMPUS_GT, gt_filter=True)[frame]


def test_masks_have_the_box_shape_lie_in_the_box_and_cover_the_person(masked_run, tud_frames):
    result = masked_run[0][0]
    assert len(result.tracks) == len(gt(1)) and "masks" in result.timings
    h, w = tud_frames[0].shape[:2]
    for t in result.tracks:
        x1, y1, x2, y2 = box_window(t.box, h, w)
        assert t.mask is not None and t.mask.dtype == bool and t.mask.shape == (y2 - y1, x2 - x1)
        ys, xs = np.nonzero(paste_mask(t.mask, t.box, h, w))
        assert len(ys) and x1 <= xs.min() and xs.max() < x2 and y1 <= ys.min() and ys.max() < y2
        assert 0.2 < t.mask.mean() < 0.95  # a pedestrian fills a good part of its box, not all of it


def test_one_backbone_pass_per_frame_with_masks_on(masked_run):
    results, backbone_calls = masked_run
    assert backbone_calls == 2
    assert all(t.mask is not None for r in results for t in r.tracks)


def test_box_prompts_match_a_full_segment_call_and_stay_in_the_image(small_model, segmenter, tud_frames):
    frame = tud_frames[0]
    h, w = frame.shape[:2]
    image, scale = small_model.preprocess(frame)
    embedding = small_model.backbone(image)[-1]
    boxes = np.array([[0, 0, 120, 200], [560, 300, 640, 480], [300.4, 150.6, 400.5, 479.9]], np.float32)
    full = segmenter.segment(embedding, boxes * scale, (h, w), scale)
    assert full.shape == (3, h, w) and full.dtype == bool
    crops = segmenter.segment_crops(embedding, boxes, (h, w), scale)
    for box, crop, mask in zip(boxes, crops, full, strict=True):
        x1, y1, x2, y2 = box_window(box, h, w)
        assert (x2, y2) <= (w, h) and crop.shape == (y2 - y1, x2 - x1)
        np.testing.assert_array_equal(crop, mask[y1:y2, x1:x2])
    assert box_window((300.4, 150.6, 400.5, 479.9), h, w) == (300, 150, 401, 480)
    assert box_window((-5.0, -3.0, 700.0, 500.0), h, w) == (0, 0, w, h)


def test_zero_and_many_boxes(small_model, segmenter, tud_frames):
    frame = tud_frames[0]
    h, w = frame.shape[:2]
    image, scale = small_model.preprocess(frame)
    embedding = small_model.backbone(image)[-1]
    assert segmenter.segment(embedding, np.zeros((0, 4), np.float32), (h, w), scale).shape == (0, h, w)
    assert segmenter.segment_crops(embedding, np.zeros((0, 4), np.float32), (h, w), scale) == []
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, [w - 40, h - 40], (150, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 40, (150, 2))], 1).astype(np.float32)
    crops = segmenter.segment_crops(embedding, boxes, (h, w), scale)
    assert len(crops) == 150
    assert all(
        c.shape == (y2 - y1, x2 - x1)
        for c, (x1, y1, x2, y2) in zip(crops, (box_window(b, h, w) for b in boxes), strict=True)
    )


def test_max_masks_keeps_the_highest_scores(small_model, segmenter, tud_frames):
    cfg = load_config(overrides={**OVERRIDES, "masks": {"enabled": True, "max_masks": 2}})
    pipe = Pipeline(cfg, model=small_model, segmenter=segmenter)
    rows = gt(1)
    scores = np.linspace(0.3, 0.9, len(rows)).astype(np.float32)
    tracks = pipe.process(tud_frames[0], Detections(rows.boxes, scores)).tracks
    with_mask = sorted(t.score for t in tracks if t.mask is not None)
    assert with_mask == sorted(t.score for t in tracks)[-2:]


def test_masks_off_builds_no_decoder_and_gives_none(small_model, tud_frames, monkeypatch):
    import masa_core.segmentation.box_prompt as bp

    monkeypatch.setattr(bp.BoxPromptSegmenter, "__init__", lambda *a, **k: pytest.fail("decoder built"))
    pipe = Pipeline(load_config(overrides=OVERRIDES), model=small_model)
    rows = gt(1)
    result = pipe.process(tud_frames[0], Detections(rows.boxes, np.ones(len(rows), np.float32)))
    assert pipe.segmenter is None and "masks" not in result.timings
    assert result.tracks and all(t.mask is None for t in result.tracks)


def test_painter_draws_masks(masked_run, tud_frames):
    tracks = masked_run[0][0].tracks
    bare = TrackPainter().draw(tud_frames[0], [dataclasses.replace(t, mask=None) for t in tracks])
    drawn = TrackPainter().draw(tud_frames[0], tracks)
    t = tracks[0]
    inside = paste_mask(t.mask, t.box, *tud_frames[0].shape[:2])
    assert (drawn[inside] != bare[inside]).any(axis=1).mean() > 0.5


def test_rle_round_trip_and_coco_layout(tmp_path):
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (5, 7), (480, 640)]:
        for density in (0.0, 0.02, 0.5, 1.0):
            mask = rng.random(shape) < density
            rle = encode(mask)
            assert rle["size"] == list(shape)
            np.testing.assert_array_equal(decode(rle), mask)
    counts = [0, 3, 40, 100000, 2, 7, 1]
    assert string_to_counts(counts_to_string(counts)) == counts
    # Column-major runs starting with 0s, as segment_anything's uncompressed RLE
    from segment_anything.utils.amg import mask_to_rle_pytorch

    mask = rng.random((30, 20)) < 0.3
    assert mask_to_counts(mask) == mask_to_rle_pytorch(torch.from_numpy(mask)[None])[0]["counts"]
    assert encode(np.zeros((2, 2), bool))["counts"] == "4" and encode(np.ones((1, 1), bool))["counts"] == "01"
    try:
        from pycocotools import mask as coco
    except ImportError:
        pass
    else:
        ref = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert encode(mask)["counts"] == ref["counts"].decode()
    objects = [MotsObject(1, 2, 2, mask), MotsObject(1, 1, 2, ~mask), MotsObject(2, 1, 2, np.zeros_like(mask))]
    write_mots(tmp_path / "m.txt", objects)
    back = read_mots(tmp_path / "m.txt")
    assert [(o.frame, o.id) for o in back] == [(1, 1), (1, 2)]
    np.testing.assert_array_equal(back[1].mask, mask)
    a, b = remove_overlaps([np.ones((2, 2), bool), np.eye(2, dtype=bool)], [0.4, 0.9])
    assert not (a & b).any() and b.sum() == 2 and a.sum() == 2


def test_bad_mask_checkpoint_names_the_missing_keys(tmp_path, small_model):
    from masa_core.assets import asset_path

    state = load_state_dict_file(asset_path("mobile_sam"))
    del state["mask_decoder.iou_token.weight"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match=r"missing keys: mask_decoder\.iou_token\.weight"):
        BoxPromptSegmenter(256, bad)
    encoder_only = tmp_path / "enc.pt"
    torch.save({k: v for k, v in state.items() if k.startswith("image_encoder.")}, encoder_only)
    with pytest.raises(CheckpointError, match=r"missing keys: prompt_encoder\..*\(\d+ in all\)"):
        cfg = load_config(overrides={**OVERRIDES, "masks": {"enabled": True, "checkpoint": str(encoder_only)}})
        Pipeline(cfg, model=small_model)
    with pytest.raises(ConfigError, match=r"masks.max_masks = 0"):
        config_from_dict({"masks": {"max_masks": 0}})


def test_cli_masks_writes_mots_next_to_the_results(tmp_path, capsys):
    from masa_core.cli.track import main
    from tests.paths import TUD_CAMPUS_VIDEO

    results, video = tmp_path / "results.txt", tmp_path / "tracks.mp4"
    argv = [str(TUD_CAMPUS_VIDEO), "--detections", str(TUD_CAMPUS_GT), "--output", str(results), "--masks"]
    argv += ["--video", str(video), "--input-size", "256", "--device", "cpu", "--quiet", "--max-frames", "2"]
    assert main(argv) == 0
    assert "masks (MOTS)" in capsys.readouterr().out
    mots = read_mots(tmp_path / "results.mots.txt")
    mot = read_mot(results)
    assert {o.frame for o in mots} == {1, 2} == set(mot)
    assert {(o.frame, o.id) for o in mots} == {(f, int(i)) for f, r in mot.items() for i in r.ids}
    assert all(o.class_id == 2 and o.mask.shape == (480, 640) for o in mots)
    frame1 = np.stack([o.mask for o in mots if o.frame == 1]).sum(0)
    assert frame1.max() == 1  # disjoint, as MOTS requires
