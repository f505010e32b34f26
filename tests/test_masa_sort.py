"""MASA-SORT: synthetic scenes with look-alike objects, bad input, stamps, and its Kalman filter."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from masa_core.tracking import MasaSortTracker, MasaTracker, TrackerConfig, TrackState, build_tracker, kalman
from masa_core.tracking.camera_motion import SparseFlowMotion
from tests.synthetic_scenes import DIM, SCENES, Walker, consistent, identities, make_scene, run, stamps


def _update(tracker, boxes, frame_id, stamp=None, embeds=None, scores=None):
    boxes = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4))
    n = len(boxes)
    embeds = torch.ones(n, DIM) if embeds is None else torch.as_tensor(np.asarray(embeds, np.float32))
    scores = torch.full((n,), 0.9) if scores is None else torch.as_tensor(np.asarray(scores, np.float32))
    return tracker.update(boxes, scores, torch.zeros(n, dtype=torch.long), embeds, frame_id, stamp=stamp)


def _state_is_finite(tracker: MasaSortTracker) -> bool:
    t = tracker._tracks
    return bool(np.isfinite(t.mean).all() and np.isfinite(t.cov).all() and np.isfinite(t.embed).all())


@pytest.mark.parametrize("name", sorted(SCENES))
def test_masa_sort_keeps_every_identity_in_every_scene(name: str) -> None:
    frames = SCENES[name]()
    ids = run(MasaSortTracker(TrackerConfig.plug_and_play()), frames)
    assert consistent(frames, ids), identities(frames, ids)
    published = sum(int((i >= 0).sum()) for i in ids)
    real = sum(int((f.truth >= 0).sum()) for f in frames)
    assert published >= real - 2 * len(identities(frames, ids))  # at most a frame per object unconfirmed


def test_the_official_masa_tracker_fails_at_least_two_scenes() -> None:
    failed = [n for n, make in SCENES.items() if not consistent(frames := make(), run(MasaTracker(), frames))]
    assert len(failed) >= 2, failed
    assert {"occlusion_1s", "missed_gap", "false_positive_burst"} <= set(failed)


def test_velocity_is_in_pixels_per_second_across_a_frame_rate_change() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    frames = SCENES["frame_rate_drop"]()
    for f, frame in enumerate(frames):
        result = _update(tracker, frame.boxes, f, frame.stamp, frame.embeds)
    assert result.velocities.numpy() == pytest.approx(np.array([[450.0, 0.0], [450.0, 0.0]]), abs=20.0)
    assert result.states.tolist() == [TrackState.CONFIRMED] * 2


def test_tentative_tracks_are_confirmed_on_the_second_match_and_published_only_then() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    _update(tracker, [[0, 0, 40, 100]], 0)  # the first frame confirms at once (ByteTrack)
    first = _update(tracker, [[0, 0, 40, 100], [300, 0, 340, 100]], 1)
    assert first.ids.tolist() == [0, -1] and first.states.tolist() == [TrackState.CONFIRMED, -1]
    second = _update(tracker, [[0, 0, 40, 100], [301, 0, 341, 100]], 2)
    assert second.ids.tolist() == [0, 1] and second.match_scores[1] > 0.9
    shown = MasaSortTracker(dataclasses.replace(TrackerConfig.plug_and_play(), publish_tentative=True))
    _update(shown, [[0, 0, 40, 100]], 0)
    result = _update(shown, [[0, 0, 40, 100], [300, 0, 340, 100]], 1)
    assert result.ids.tolist() == [0, 1] and result.states.tolist() == [TrackState.CONFIRMED, TrackState.TENTATIVE]


def test_non_finite_and_empty_boxes_are_ignored_and_change_nothing() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    _update(tracker, [[0, 0, 40, 100], [200, 0, 240, 100]], 0)
    bad = [[np.nan, 0, 40, 100], [200, 0, 200, 100], [np.inf, 0, 1, 1], [0, 0, 40, 100], [200, 0, 240, 100]]
    embeds = np.ones((5, DIM), np.float32)
    embeds[3, 0] = np.nan
    result = _update(tracker, bad, 1, embeds=embeds, scores=[0.9, 0.9, 0.9, 0.9, np.nan])
    assert result.ids.tolist() == [-1, -1, -1, -1, -1]
    assert _state_is_finite(tracker) and tracker.num_tracks == 2
    assert _update(tracker, [[0, 0, 40, 100], [200, 0, 240, 100]], 2).ids.tolist() == [0, 1]


def test_wrong_shapes_raise_and_leave_the_tracker_unchanged() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    _update(tracker, [[0, 0, 40, 100]], 0)
    with pytest.raises(ValueError, match="embeds have dimension"):
        _update(tracker, [[0, 0, 40, 100]], 1, embeds=np.ones((1, DIM + 1)))
    with pytest.raises(ValueError, match="frame_id"):
        _update(tracker, [[0, 0, 40, 100]], 0)
    assert tracker.num_tracks == 1 and _update(tracker, [[0, 0, 40, 100]], 1).ids.tolist() == [0]


def test_empty_frames_make_tracks_lost_then_they_come_back() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    for f in range(3):
        _update(tracker, [[10 * f, 0, 10 * f + 40, 100]], f)
    for f in range(3, 10):
        assert _update(tracker, np.zeros((0, 4)), f).ids.numel() == 0
    assert tracker.track_states() == {0: TrackState.LOST}
    assert _update(tracker, [[100, 0, 140, 100]], 10).ids.tolist() == [0]  # predicted along its path


def test_repeated_and_backwards_stamps_advance_nothing_and_are_counted() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    _update(tracker, [[0, 0, 40, 100]], 0, stamp=100.0)
    _update(tracker, [[0, 0, 40, 100]], 1, stamp=100.0)
    _update(tracker, [[0, 0, 40, 100]], 2, stamp=99.0)
    _update(tracker, [[0, 0, 40, 100]], 3, stamp=float("nan"))
    result = _update(tracker, [[1, 0, 41, 100]], 4, stamp=99.1)
    assert tracker.time_faults == 3 and tracker.clock == pytest.approx(0.1)
    assert result.ids.tolist() == [0] and _state_is_finite(tracker)


def test_a_jump_of_several_seconds_forgets_lost_tracks_without_nan() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    for f in range(5):
        _update(tracker, [[5 * f, 0, 5 * f + 40, 100]], f, stamp=f / 30)
    _update(tracker, np.zeros((0, 4)), 5, stamp=5 / 30)
    _update(tracker, np.zeros((0, 4)), 6, stamp=8.0)  # 8 s later: beyond lost_seconds
    assert tracker.num_tracks == 0
    assert _update(tracker, [[40, 0, 80, 100]], 7, stamp=8.03).ids.tolist() == [-1]  # a new, tentative track
    assert _update(tracker, [[41, 0, 81, 100]], 8, stamp=8.06).ids.tolist() == [1]
    assert _state_is_finite(tracker)


def test_an_occluded_box_does_not_update_the_appearance_memory() -> None:
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    a, b = np.eye(DIM, dtype=np.float32)[:2]
    _update(tracker, [[0, 0, 40, 100], [300, 0, 340, 100]], 0, embeds=[a, b])
    memory = tracker._tracks.embed.copy()
    _update(tracker, [[0, 0, 40, 100], [300, 0, 340, 100], [10, 0, 50, 100]], 1, embeds=[a + b, b + a, b])
    after = tracker._tracks.embed
    assert np.allclose(after[0], memory[0])  # overlapped (IoU 0.6) by the third box: not updated
    assert not np.allclose(after[1], memory[1])  # alone: updated


def test_kalman_prediction_is_time_additive_and_uncertainty_grows() -> None:
    mean, cov = kalman.initiate(np.array([[0.0, 0.0, 40.0, 100.0]]))
    mean[:, 4] = 300.0  # px/s
    one_m, one_c = kalman.predict(mean, cov, 0.2)
    half_m, _ = kalman.predict(*kalman.predict(mean, cov, 0.1), 0.1)
    assert one_m[0, 0] == pytest.approx(20.0 + 60.0) and np.allclose(one_m, half_m)
    assert np.all(np.diag(one_c[0]) > np.diag(cov[0]))
    assert kalman.predict(mean, cov, 0.0)[0] == pytest.approx(mean)


def test_build_tracker_follows_kind() -> None:
    assert isinstance(build_tracker(TrackerConfig()), MasaSortTracker)
    assert isinstance(build_tracker(TrackerConfig(kind="masa")), MasaTracker)
    with pytest.raises(ValueError, match="tracker.kind"):
        TrackerConfig(kind="sort").validate()
    with pytest.raises(ValueError, match="tracker.low_score_thr"):
        TrackerConfig(low_score_thr=0.7, high_score_thr=0.5).validate()
    with pytest.raises(ValueError, match="tracker.lost_seconds"):
        TrackerConfig(lost_seconds=0.0).validate()


def test_sparse_flow_recovers_a_camera_pan_and_the_tracker_follows_it() -> None:
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (600, 800, 3), np.uint8), (5, 5), 0)
    motion = SparseFlowMotion()
    motion(texture[50:530, 50:690])
    affine = motion(texture[50:530, 90:730])  # the camera turned: the scene moved 40 px left
    assert affine[:, 2] == pytest.approx([-40.0, 0.0], abs=1.0)
    assert affine[:, :2] == pytest.approx(np.eye(2), abs=0.01)

    walkers = [Walker((300, 300), (0, 0)), Walker((360, 300), (0, 0))]
    frames = make_scene(walkers, stamps(30, 1.0))
    for use_warp in (False, True):
        tracker = MasaSortTracker(TrackerConfig.plug_and_play())
        ids = []
        for f, frame in enumerate(frames):
            pan = np.array([[1.0, 0.0, -60.0 * f], [0.0, 1.0, 0.0]])
            boxes = frame.boxes + np.array([-60.0 * f, 0, -60.0 * f, 0], np.float32)
            warp = pan - np.array([[0.0, 0.0, -60.0 * (f - 1)], [0.0, 0.0, 0.0]]) if f else None
            n = len(boxes)
            result = tracker.update(
                torch.from_numpy(boxes), torch.full((n,), 0.9), torch.zeros(n, dtype=torch.long),
                torch.from_numpy(frame.embeds), f, stamp=frame.stamp, camera_warp=warp if use_warp else None,
            )  # fmt: skip
            ids.append(result.ids.numpy())
        assert consistent(frames, ids) == use_warp
