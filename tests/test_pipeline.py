"""The Pipeline end to end on a real clip, and what it does with bad frames and bad boxes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from masa_core import Detections, FrameError, Pipeline, load_config
from masa_core.formats.mot import read_mot
from tests.gt_tracking import track_tud_campus_with_gt
from tests.paths import TUD_CAMPUS_GT


@pytest.fixture()
def pipeline(small_model) -> Pipeline:
    return Pipeline(load_config(overrides={"model": {"input_size": 256, "device": "cpu"}}), model=small_model)


def gt_detections(frame: int) -> Detections:
    rows = read_mot(TUD_CAMPUS_GT, gt_filter=True)[frame]
    return Detections(rows.boxes, np.ones(len(rows), np.float32))


def test_same_people_keep_their_ids_over_real_frames(pipeline, tud_frames):
    check = track_tud_campus_with_gt(pipeline, tud_frames)
    assert check.total >= 50
    assert check.consistent / check.total >= 0.9


def test_tracks_carry_boxes_in_frame_pixels_scores_and_ages(pipeline, tud_frames):
    dets = gt_detections(1)
    first = pipeline.process(tud_frames[0], dets)
    assert len(first.tracks) == len(dets)
    assert {tuple(np.round(t.box, 3)) for t in first.tracks} == {tuple(np.round(b, 3)) for b in dets.boxes}
    assert all(t.age == 0 and t.match_score == 0.0 and t.label_name == "object" for t in first.tracks)
    second = pipeline.process(tud_frames[1], gt_detections(2))
    assert any(t.age == 1 and t.match_score > 0.5 for t in second.tracks)
    assert set(first.timings) >= {"backbone", "adapter", "embed", "tracker"}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_frames_are_refused_and_tracks_survive(pipeline, tud_frames, frame, message):
    pipeline.process(tud_frames[0], gt_detections(1))
    before = (pipeline.tracker.num_tracks, pipeline.stats.frames)
    with pytest.raises(FrameError, match=message):
        pipeline.process(frame, gt_detections(2))
    assert (pipeline.tracker.num_tracks, pipeline.stats.frames) == before
    after = pipeline.process(tud_frames[1], gt_detections(2))
    assert any(t.match_score > 0 for t in after.tracks)


def test_odd_sized_frames_are_tracked(pipeline):
    frame = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    result = pipeline.process(frame, Detections([[2, 3, 30, 35]], [0.9]))
    assert [t.box for t in result.tracks] == [(2.0, 3.0, 30.0, 35.0)]


def test_invalid_boxes_are_dropped_and_counted_partial_ones_clipped(pipeline, tud_frames):
    boxes = [
        [np.nan, 10, 50, 80],  # NaN
        [10, 10, 10, 80],  # zero width
        [700, 500, 800, 600],  # outside the 640×480 image
        [60, 60, 20, 20],  # inside out
        [100, 100, 160, 220],  # fine
        [-20, 300, 40, 520],  # partly outside: clipped
    ]
    scores = [0.9, 0.9, 0.9, 0.9, 0.9, np.inf]
    result = pipeline.process(tud_frames[0], Detections(boxes, scores))
    assert result.dropped_boxes == 5  # the last one has an infinite score
    assert [t.box for t in result.tracks] == [(100.0, 100.0, 160.0, 220.0)]
    partly_outside = Detections([[-20, 300, 40, 520]], [0.8])
    assert pipeline.process(tud_frames[1], partly_outside).tracks == []  # a new track is tentative
    clipped = pipeline.process(tud_frames[2], partly_outside)
    assert clipped.tracks[0].box == (0.0, 300.0, 40.0, 480.0) and clipped.tracks[0].detection == 0
    assert pipeline.stats.boxes_dropped == 5


def test_frames_without_boxes_skip_the_model_and_age_tracks(pipeline, tud_frames):
    pipeline.process(tud_frames[0], gt_detections(1))
    empty = pipeline.process(tud_frames[1], Detections.empty())
    assert empty.tracks == [] and "backbone" not in empty.timings
    assert pipeline.tracker.num_tracks > 0
    back = pipeline.process(tud_frames[2], gt_detections(3))
    assert any(t.age == 2 for t in back.tracks)


def test_reset_forgets_tracks(pipeline, tud_frames):
    pipeline.process(tud_frames[0], gt_detections(1))
    pipeline.reset()
    assert pipeline.tracker.num_tracks == 0 and pipeline.stats.frames == 0
    assert all(t.age == 0 for t in pipeline.process(tud_frames[0], gt_detections(1)).tracks)


def test_the_adapters_detection_head_can_be_the_box_source(small_model, tud_frames):
    cfg = load_config(overrides={"model": {"input_size": 256, "device": "cpu"}, "detector": {"kind": "masa_head"}})
    pipe = Pipeline(cfg, model=small_model)
    calls = []
    hook = small_model.backbone.register_forward_hook(lambda *_: calls.append(1))
    try:
        result = pipe.process(tud_frames[0])
    finally:
        hook.remove()
    assert calls == [1]  # one backbone pass gives both the boxes and their embeddings
    assert "detector" in result.timings and len(result.tracks) <= 50
    for t in result.tracks:
        x1, y1, x2, y2 = t.box
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480 and t.label_name == "object"


def test_the_detector_runs_beside_the_features_with_the_same_tracks(small_model, tud_frames):
    """The configured detector runs on a worker thread while the backbone and adapter run; the tracks
    equal those of running it in turn, and a frame where it finds nothing still has no tracks."""
    config = load_config(overrides={"model": {"input_size": 256, "device": "cpu"}})
    threads: list[str] = []

    class Recording:
        """The default detector, noting the thread it ran on; no boxes on frame 2."""

        def __init__(self) -> None:
            self.inner = Pipeline(config, model=small_model).detector
            self.class_names, self.score_thr = self.inner.class_names, self.inner.score_thr

        def __call__(self, frame: np.ndarray, index: int = 0) -> Detections:
            threads.append(threading.current_thread().name)
            return Detections.empty() if index == 2 else self.inner(frame, index)

    beside, in_turn = (Pipeline(config, model=small_model, detector=Recording()) for _ in range(2))
    in_turn.detect_beside_features = False
    counts = []
    for frame in tud_frames[:4]:
        ours, ref = beside.process(frame), in_turn.process(frame)
        assert [(t.id, t.box, t.score, t.label_name) for t in ours.tracks] == [
            (t.id, t.box, t.score, t.label_name) for t in ref.tracks
        ]
        assert {"detector", "backbone", "adapter"} <= set(ours.timings)
        counts.append(len(ours.tracks))
    assert counts[2] == 0 and min(counts[:2] + counts[3:]) > 0
    assert threads[0].startswith("masa-detector") and threads[1] == threading.current_thread().name
