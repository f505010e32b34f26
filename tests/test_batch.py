"""``Pipeline.process_batch``: several frames of one stream through one backbone + adapter call give
the tracks of running them one at a time (torch and OpenVINO), frames of different sizes go in
separate groups, and bad input is refused before anything changes; ``masa-track --batch``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from masa_core import Detections, FrameError, Pipeline, load_config
from masa_core.cli.track import main
from masa_core.formats.mot import read_mot
from masa_core.models.backends import converted_parts
from masa_core.pipeline import FrameResult
from tests.paths import TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO

CONFIG = load_config(overrides={"model": {"variant": "masa_mnv2_lite", "input_size": 128, "device": "cpu"}})


def gt(frame: int) -> Detections:
    """TUD-Campus's ground-truth boxes of 1-based ``frame``, scored 1."""
    rows = read_mot(TUD_CAMPUS_GT, gt_filter=True)[frame]
    return Detections(rows.boxes, np.ones(len(rows), np.float32))


@contextmanager
def backbone_calls(model) -> Iterator[list[int]]:
    """A list that grows by the batch size at every backbone call of ``model`` inside the block."""
    calls: list[int] = []
    hook = model.backbone.register_forward_hook(lambda _m, args, _out: calls.append(len(args[0])))
    try:
        yield calls
    finally:
        hook.remove()


def assert_same(ours: list[FrameResult], ref: list[FrameResult]) -> None:
    """Same frames, ids, boxes, scores and states; match scores within 1e-4."""
    assert [r.frame_index for r in ours] == [r.frame_index for r in ref]
    for a, b in zip(ours, ref, strict=True):
        assert [(t.id, t.box, t.score, t.state, t.detection) for t in a.tracks] == [
            (t.id, t.box, t.score, t.state, t.detection) for t in b.tracks
        ]
        assert np.allclose([t.match_score for t in a.tracks], [t.match_score for t in b.tracks], atol=1e-4)
        assert a.dropped_boxes == b.dropped_boxes


@pytest.mark.parametrize("backend", ["torch", "ov"])
def test_a_batch_tracks_like_one_frame_at_a_time(backend, request, tud_frames) -> None:
    model = request.getfixturevalue(f"{backend}_model")
    dets = [gt(i + 1) for i in range(8)]
    dets[5] = Detections.empty()  # a frame without boxes inside a batch
    single, batched = Pipeline(CONFIG, model=model), Pipeline(CONFIG, model=model)
    ref = [single.process(f, d, stamp=0.1 * i) for i, (f, d) in enumerate(zip(tud_frames[:8], dets, strict=True))]
    ours: list[FrameResult] = []
    with backbone_calls(model) as calls:
        for start in (0, 4):
            stamps = [0.1 * i for i in range(start, start + 4)]
            ours += batched.process_batch(tud_frames[start : start + 4], dets[start : start + 4], stamps)
    assert calls == [4, 3]  # one backbone call per batch, on the frames with boxes only
    assert_same(ours, ref)
    assert sum(len(r.tracks) for r in ours) > 40 and any(t.match_score > 0.5 for t in ours[-1].tracks)
    assert ours[5].tracks == [] and "backbone" not in ours[5].timings
    assert ours[0].timings["backbone"] == pytest.approx(ours[1].timings["backbone"])  # shared evenly
    assert {"detector", "preprocess", "backbone", "adapter", "embed", "tracker"} <= set(ours[0].timings)
    assert batched.stats.frames == single.stats.frames == 8
    assert batched.stats.boxes_in == single.stats.boxes_in and batched.tracker.num_tracks == single.tracker.num_tracks
    if backend == "ov":
        assert not any(p.failed for p in converted_parts(model).values())


def test_frames_of_different_sizes_go_in_separate_groups(torch_model, tud_frames) -> None:
    """A 4:3 frame and a square crop have model inputs of different shapes: two backbone calls."""
    square = [np.ascontiguousarray(f[:, 80:560]) for f in tud_frames[:4]]
    frames = [tud_frames[0], square[1], tud_frames[2], square[3]]
    dets = [gt(i + 1) for i in range(4)]
    ref = [Pipeline(CONFIG, model=torch_model)]
    ref_results = [ref[0].process(f, d) for f, d in zip(frames, dets, strict=True)]
    with backbone_calls(torch_model) as calls:
        ours = Pipeline(CONFIG, model=torch_model).process_batch(frames, dets)
    assert sorted(calls) == [2, 2]
    assert_same(ours, ref_results)


def test_an_empty_batch_changes_nothing(torch_model) -> None:
    pipe = Pipeline(CONFIG, model=torch_model)
    assert pipe.process_batch([]) == [] and pipe.process_batch([], [], []) == []
    assert pipe.stats.frames == 0 and pipe.tracker.num_tracks == 0


def test_mismatched_lengths_are_refused_with_a_clear_message(torch_model, tud_frames) -> None:
    pipe = Pipeline(CONFIG, model=torch_model)
    with pytest.raises(ValueError, match="detections: 1 entries for 2 frames"):
        pipe.process_batch(tud_frames[:2], [gt(1)])
    with pytest.raises(ValueError, match="stamps: 3 entries for 2 frames"):
        pipe.process_batch(tud_frames[:2], stamps=[0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="one entry .* per frame"):
        pipe.process_batch(tud_frames[:2], gt(1))
    with pytest.raises(ValueError, match="use process"):
        pipe.process_batch(tud_frames[0])
    assert pipe.stats.frames == 0


def test_a_bad_frame_in_a_batch_leaves_the_tracker_untouched(torch_model, tud_frames) -> None:
    pipe = Pipeline(CONFIG, model=torch_model)
    pipe.process(tud_frames[0], gt(1))
    before = (pipe.tracker.num_tracks, pipe.stats.frames, pipe.stats.boxes_in)
    bad = [tud_frames[1], tud_frames[2].astype(np.float32), tud_frames[3]]
    with backbone_calls(torch_model) as calls, pytest.raises(FrameError, match="frame 1 of the batch: .*uint8"):
        pipe.process_batch(bad, [gt(2), gt(3), gt(4)])
    assert calls == [] and (pipe.tracker.num_tracks, pipe.stats.frames, pipe.stats.boxes_in) == before
    after = pipe.process_batch(tud_frames[1:3], [gt(2), gt(3)])
    assert [r.frame_index for r in after] == [1, 2] and any(t.match_score > 0.5 for t in after[0].tracks)


def test_the_detector_runs_beside_a_batch_and_the_feature_cache_serves_it(torch_model, tud_frames) -> None:
    """With the configured detector (here the ground truth, noting its thread) on the worker thread,
    a batch tracks like frames in turn; a second pass over the same frames reads the feature cache."""
    threads: list[str] = []

    class GroundTruth:
        class_names, score_thr = ("person",), 0.5

        def __call__(self, frame: np.ndarray, index: int = 0) -> Detections:
            threads.append(threading.current_thread().name)
            return gt(index + 1)

    in_turn, beside = (Pipeline(CONFIG, model=torch_model, detector=GroundTruth()) for _ in range(2))
    in_turn.detect_beside_features = False
    ref = [in_turn.process(f) for f in tud_frames[:4]]
    assert_same(beside.process_batch(tud_frames[:4]), ref)
    assert threads[-4:] == ["masa-detector_0"] * 4 and threads[0] == threading.current_thread().name
    beside.reset()
    beside.feature_cache_size = 4
    first = beside.process_batch(tud_frames[:4])
    beside.reset()
    with backbone_calls(torch_model) as calls:
        assert_same(beside.process_batch(tud_frames[:4]), first)
    assert calls == [] and all(r.tracks[0].label_name == "person" for r in first)


def test_the_adapters_own_detection_head_serves_a_batch(torch_model, tud_frames) -> None:
    """With ``detector.kind: masa_head`` one backbone call gives the boxes and embeddings of all
    frames; each frame's boxes come from its own row of the pyramid (equal to float rounding)."""
    cfg = load_config(overrides={"model": {"input_size": 128, "device": "cpu"}, "detector": {"kind": "masa_head"}})
    ref = [Pipeline(cfg, model=torch_model)]
    ref_results = [ref[0].process(f) for f in tud_frames[:3]]
    with backbone_calls(torch_model) as calls:
        ours = Pipeline(cfg, model=torch_model).process_batch(tud_frames[:3])
    assert calls == [3] and sum(len(r.tracks) for r in ref_results) > 0
    for a, b in zip(ours, ref_results, strict=True):
        assert [t.id for t in a.tracks] == [t.id for t in b.tracks]
        assert np.allclose([t.box for t in a.tracks], [t.box for t in b.tracks], atol=1e-3)


def test_masks_of_a_batch_come_from_each_frames_own_embedding(small_model, tud_frames) -> None:
    """SAM's image embedding is the backbone's last tap: each frame's masks use its own row of it."""
    overrides = {"model": {"variant": "masa_mobilesam", "input_size": 256, "device": "cpu"}}
    cfg = load_config(overrides={**overrides, "masks": {"enabled": True, "max_masks": 3}})
    single, batched = Pipeline(cfg, model=small_model), Pipeline(cfg, model=small_model)
    dets = [gt(1), gt(2)]
    ref = [single.process(f, d) for f, d in zip(tud_frames[:2], dets, strict=True)]
    ours = batched.process_batch(tud_frames[:2], dets)
    assert_same(ours, ref)
    masks = [[t.mask for t in r.tracks if t.mask is not None] for r in (*ours, *ref)]
    assert [len(m) for m in masks] == [3, 3, 3, 3]
    for a, b in zip(masks[0] + masks[1], masks[2] + masks[3], strict=True):
        assert a.shape == b.shape and (a == b).mean() > 0.999


def test_boxes_of_a_batch_are_read_from_their_own_frame(torch_model, tud_frames) -> None:
    """The batched RoIAlign reads each box from its frame's row of the pyramid: one embed call on a
    batch of two frames equals two single-frame calls."""
    images = torch.cat([torch_model.preprocess(f)[0] for f in tud_frames[:2]])
    boxes = torch.tensor([[10.0, 20.0, 60.0, 90.0], [70.0, 10.0, 120.0, 95.0]])
    with torch.inference_mode():
        pyramid = torch_model.fuse(torch_model.backbone(images))
        both = torch_model.embed(pyramid, torch.cat([boxes, boxes]), torch.tensor([0, 0, 1, 1]))
        alone = [torch_model.embed([p[i : i + 1] for p in pyramid], boxes) for i in range(2)]
    assert torch.allclose(both, torch.cat(alone), atol=1e-5)
    assert not torch.allclose(both[:2], both[2:], atol=1e-3)  # the frames differ


def test_masa_track_batch_flag(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([str(TUD_CAMPUS_VIDEO), "--batch", "0"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--batch: 0 is not >= 1" in err
    out = {}
    for batch in (1, 3):
        out[batch] = tmp_path / f"b{batch}.txt"
        argv = [str(TUD_CAMPUS_VIDEO), "--detections", str(TUD_CAMPUS_GT), "--output", str(out[batch])]
        argv += ["--no-video", "--input-size", "128", "--device", "cpu", "--quiet", "--max-frames", "7"]
        assert main([*argv, "--batch", str(batch), "--backend", "torch"]) == 0
        assert "frames: 7" in capsys.readouterr().out
    assert out[1].read_text() == out[3].read_text() and len(out[1].read_text().splitlines()) > 20
