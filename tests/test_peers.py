"""boxmot peers (ByteTrack, OC-SORT, BoT-SORT, motion only) behind the given-boxes interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from masa_core.baselines.peers import PEERS, PeerTracker
from masa_core.eval.given_boxes import TRACKERS, track_given_boxes
from tests.paths import TUD_STADTMITTE_GT, TUD_STADTMITTE_VIDEO

FRAME = np.zeros((240, 320, 3), np.uint8)


def _boxes(frame: int) -> np.ndarray:
    """Two people walking towards each other, 3 px per frame, never overlapping in 6 frames."""
    return np.array(
        [[10 + 3 * frame, 20, 50 + 3 * frame, 100], [200 - 3 * frame, 50, 240 - 3 * frame, 150]], np.float32
    )


def test_peers_are_tracker_kinds() -> None:
    assert {"bytetrack", "ocsort", "botsort"} <= set(TRACKERS) and set(PEERS) <= set(TRACKERS)


@pytest.mark.parametrize("kind", sorted(PEERS))
def test_peer_keeps_ids_aligned_with_given_boxes(kind: str) -> None:
    tracker = PeerTracker(kind)
    first = tracker.update(_boxes(0), np.ones(2), FRAME)
    assert first.dtype == np.int64 and len(first) == 2 and len(set(first.tolist())) == 2 and (first >= 0).all()
    for frame in range(1, 6):
        # the boxes are given in swapped order: the ids must follow the boxes, not the positions
        ids = tracker.update(_boxes(frame)[::-1], np.ones(2), FRAME)
        assert ids.tolist() == first[::-1].tolist(), frame


def test_bytetrack_new_track_waits_one_frame() -> None:
    tracker = PeerTracker("bytetrack")
    tracker.update(_boxes(0)[:1], np.ones(1), FRAME)
    assert tracker.update(_boxes(1), np.ones(2), FRAME).tolist() == [0, -1]  # unconfirmed: no output yet
    assert tracker.update(_boxes(2), np.ones(2), FRAME).tolist() == [0, 1]


def test_peer_reset_restarts_ids_and_empty_frames_work() -> None:
    tracker = PeerTracker("ocsort")
    tracker.update(_boxes(0), np.ones(2), FRAME)
    assert tracker.update(np.zeros((0, 4)), np.zeros(0), FRAME).tolist() == []
    tracker.reset()
    assert sorted(tracker.update(_boxes(0), np.ones(2), FRAME).tolist()) == [0, 1]


def test_unknown_peer_refused() -> None:
    with pytest.raises(ValueError, match="bytetrack"):
        PeerTracker("sort")


@pytest.mark.parametrize("kind", sorted(PEERS))
def test_peer_on_real_clip_is_sane_and_reproducible(kind: str, tmp_path: Path) -> None:
    runs = [
        track_given_boxes(
            TUD_STADTMITTE_VIDEO, TUD_STADTMITTE_GT, kind, max_frames=20, results_file=tmp_path / f"{k}.txt"
        )
        for k in range(2)
    ]
    first, second = runs
    assert first.frames == 20 and first.metrics["num_gt_dets"] > 100
    assert first.metrics["HOTA"] >= 0.9 and first.metrics["IDF1"] >= 0.9, first.metrics
    assert first.metrics["FP"] == 0  # the given boxes come back unchanged
    assert first.rows.keys() == second.rows.keys()
    for frame, rows in first.rows.items():
        np.testing.assert_array_equal(rows.ids, second.rows[frame].ids)
        np.testing.assert_array_equal(rows.boxes, second.rows[frame].boxes)
    assert first.metrics == second.metrics
