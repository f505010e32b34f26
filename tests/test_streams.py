"""``Pipeline.process_streams``: one frame of each of several camera streams through one backbone +
adapter call gives each stream the tracks of its own pipeline run alone (torch and OpenVINO); each
stream keeps its own tracker, ids and frame count; bad input is refused before anything changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from masa_core import Detections, FrameError, Pipeline, load_config
from masa_core.pipeline import FrameResult
from tests.test_batch import CONFIG, assert_same, backbone_calls, gt

# The second camera runs the official MASA tracker: each stream's own tracker settings apply to it alone.
CONFIG_B = dataclasses.replace(CONFIG, tracker=dataclasses.replace(CONFIG.tracker, kind="masa"))


def mirrored(frame: np.ndarray, dets: Detections) -> tuple[np.ndarray, Detections]:
    """The frame flipped left-right and its boxes with it: another camera's view of other content."""
    width = frame.shape[1]
    boxes = dets.boxes[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1], np.float32) + np.array([width, 0, width, 0])
    return np.ascontiguousarray(frame[:, ::-1]), Detections(boxes.astype(np.float32), dets.scores)


def alone(config, model, frames, dets) -> list[FrameResult]:
    pipe = Pipeline(config, model=model)
    return [pipe.process(f, d, stamp=0.1 * i) for i, (f, d) in enumerate(zip(frames, dets, strict=True))]


@pytest.mark.parametrize("backend", ["torch", "ov"])
def test_streams_track_like_their_own_pipelines(backend, request, tud_frames) -> None:
    model = request.getfixturevalue(f"{backend}_model")
    frames_a, dets_a = tud_frames[:6], [gt(i + 1) for i in range(6)]
    dets_a[3] = Detections.empty()  # camera A sees nobody in one frame
    views_b = [mirrored(f, gt(i + 1)) for i, f in enumerate(tud_frames[:6])]
    frames_b, dets_b = [v[0] for v in views_b], [v[1] for v in views_b]
    ref_a, ref_b = alone(CONFIG, model, frames_a, dets_a), alone(CONFIG_B, model, frames_b, dets_b)
    cam_a, cam_b = Pipeline(CONFIG, model=model), Pipeline(CONFIG_B, model=model)
    ours_a, ours_b = [], []
    with backbone_calls(model) as calls:
        for i in range(6):
            a, b = cam_a.process_streams([cam_b], [frames_a[i], frames_b[i]], [dets_a[i], dets_b[i]], [0.1 * i] * 2)
            ours_a.append(a)
            ours_b.append(b)
    assert calls == [2, 2, 2, 1, 2, 2]  # one call per step, on the cameras with boxes
    assert_same(ours_a, ref_a)
    assert_same(ours_b, ref_b)
    assert cam_a.stats.frames == cam_b.stats.frames == 6 and sum(len(r.tracks) for r in ours_b) > 30
    # camera A's MASA-SORT has Kalman velocities, camera B's official tracker none
    assert any(t.velocity != (0.0, 0.0) for t in ours_a[-1].tracks)
    assert all(t.velocity == (0.0, 0.0) for r in ours_b for t in r.tracks)


def test_streams_of_different_sizes_go_in_separate_groups(torch_model, tud_frames) -> None:
    square = [np.ascontiguousarray(f[:, 80:560]) for f in tud_frames[:3]]
    ref_b = alone(CONFIG, torch_model, square, [gt(i + 1) for i in range(3)])
    cam_a, cam_b = Pipeline(CONFIG, model=torch_model), Pipeline(CONFIG, model=torch_model)
    with backbone_calls(torch_model) as calls:
        ours_b = [
            cam_a.process_streams([cam_b], [tud_frames[i], square[i]], [gt(i + 1)] * 2, [0.1 * i] * 2)[1]
            for i in range(3)
        ]
    assert calls == [1, 1] * 3
    assert_same(ours_b, ref_b)


def test_streams_are_checked_before_anything_changes(torch_model, tud_frames) -> None:
    cam_a, cam_b = Pipeline(CONFIG, model=torch_model), Pipeline(CONFIG, model=torch_model)
    cam_a.process_streams([cam_b], tud_frames[:2], [gt(1), gt(1)])
    before = [(p.tracker.num_tracks, p.stats.frames) for p in (cam_a, cam_b)]
    bad = tud_frames[1].astype(np.float32)
    with backbone_calls(torch_model) as calls, pytest.raises(FrameError, match="stream 1: .*uint8"):
        cam_a.process_streams([cam_b], [tud_frames[1], bad], [gt(2), gt(2)])
    with pytest.raises(ValueError, match="appears twice"):
        cam_a.process_streams([cam_a], tud_frames[:2])
    with pytest.raises(ValueError, match="share one model"):
        cam_a.process_streams([Pipeline(CONFIG)], tud_frames[:2])
    other = load_config(overrides={**dataclasses.asdict(CONFIG), "frame": {"min_box_size": 5.0}})
    with pytest.raises(ValueError, match="tracker settings only"):
        cam_a.process_streams([Pipeline(other, model=torch_model)], tud_frames[:2])
    with pytest.raises(ValueError, match="one frame, detections entry and stamp each"):
        cam_a.process_streams([cam_b], tud_frames[:2], [gt(2)])
    with pytest.raises(ValueError, match="one .* image per stream"):
        cam_a.process_streams([cam_b], tud_frames[0])
    assert calls == [] and [(p.tracker.num_tracks, p.stats.frames) for p in (cam_a, cam_b)] == before
