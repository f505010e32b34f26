"""Tiled inference (``masa_core.detectors.tiling``): the grid, boxes back in frame coordinates,
duplicates across tiles suppressed, and the default detector tiled on a real frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from masa_core.config import ConfigError, load_config
from masa_core.detectors import Detections, DetectorConfig, build_detector_from_config
from masa_core.detectors.tiling import TiledDetector, cut_by_tile, merge_detections, tile_grid
from masa_core.video_io import FrameSource
from tests.paths import TUD_CAMPUS_VIDEO


class BrightBlobs:
    """Finds the white rectangles of a black frame: one box per connected blob, in its frame's pixels."""

    class_names = ("blob",)
    score_thr = 0.5

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> Detections:
        import cv2

        self.calls.append(frame.shape[:2])
        count, _, stats, _ = cv2.connectedComponentsWithStats((frame[..., 0] > 127).astype(np.uint8))
        boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:count]]
        return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9))


def _frame(*rects: tuple[int, int, int, int], size: tuple[int, int] = (480, 640)) -> np.ndarray:
    frame = np.zeros((*size, 3), np.uint8)
    for x1, y1, x2, y2 in rects:
        frame[y1:y2, x1:x2] = 255
    return frame


@pytest.mark.parametrize(
    ("width", "height", "side", "overlap"), [(640, 480, 480, 0.2), (1280, 720, 300, 0.3), (100, 80, 40, 0.0)]
)
def test_tile_grid_covers_the_frame_with_the_overlap(width: int, height: int, side: int, overlap: float) -> None:
    windows = tile_grid(width, height, side, overlap)
    covered = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in windows:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert (x2 - x1, y2 - y1) == (min(side, width), min(side, height))
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    xs = sorted({int(w[0]) for w in windows})
    steps = np.diff(xs)
    assert (steps <= side * (1 - overlap) + 1).all()  # neighbours overlap by at least `overlap`


def test_tile_grid_refuses_bad_arguments() -> None:
    for args in [(0, 10, 5, 0.2), (10, 10, 0, 0.2), (10, 10, 5, 1.0)]:
        with pytest.raises(ValueError, match="tile_grid"):
            tile_grid(*args)


def test_a_4_3_frame_runs_the_detector_three_times_and_a_square_one_once() -> None:
    tiled = TiledDetector(BrightBlobs(), tile_size=1.0, overlap=0.2)
    assert tiled.runs_per_frame(640, 480) == 3 and tiled.runs_per_frame(1280, 720) == 3
    assert tiled.runs_per_frame(480, 480) == 1
    assert tiled.runs_per_frame(200, 20) == 1  # tiles under 32 pixels are not worth a run
    assert len(tiled.windows(640, 480)) == 2
    assert TiledDetector(BrightBlobs(), tile_size=0.5).runs_per_frame(640, 480) > 3


def test_tile_boxes_come_back_in_frame_coordinates() -> None:
    base = BrightBlobs()
    tiled = TiledDetector(base, tile_size=0.5, overlap=0.2)  # 240-pixel tiles
    frame = _frame((300, 200, 330, 260))  # inside a tile, away from its edges
    dets = tiled(frame, 0)
    assert len(base.calls) == tiled.runs_per_frame(640, 480) and (240, 240) in base.calls
    assert len(dets) == 1
    np.testing.assert_allclose(dets.boxes[0], [300, 200, 330, 260])


def test_an_object_found_by_several_runs_is_reported_once() -> None:
    tiled = TiledDetector(BrightBlobs(), tile_size=1.0, overlap=0.2)
    frame = _frame((200, 100, 260, 300), (20, 20, 60, 60), (600, 400, 630, 470))
    dets = tiled(frame, 0)  # each blob is seen whole by the frame run and by one or two tiles
    assert len(dets) == 3
    iou = box_iou(torch.from_numpy(dets.boxes), torch.from_numpy(dets.boxes)).fill_diagonal_(0)
    assert float(iou.max()) == 0.0


def test_a_box_cut_by_an_inner_tile_edge_is_dropped() -> None:
    tiled = TiledDetector(BrightBlobs(), tile_size=1.0, overlap=0.2)
    windows = tiled.windows(640, 480)  # x 0-480 and 160-640: the first tile cuts at x = 480
    frame = _frame((440, 100, 540, 300))
    dets = tiled(frame, 0)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.boxes[0], [440, 100, 540, 300])  # whole, not the cut 440-480 part
    cut = cut_by_tile(np.array([[440, 100, 480, 300], [0, 0, 50, 50]], np.float32), windows[0], 640, 480)
    assert cut.tolist() == [True, False]  # the frame's own edges cut nothing


def test_merge_is_class_aware() -> None:
    box = np.array([[10, 10, 50, 50]], np.float32)
    same = merge_detections([Detections(box, [0.9], [0]), Detections(box + 1, [0.8], [0])], 0.5)
    other = merge_detections([Detections(box, [0.9], [0]), Detections(box + 1, [0.8], [1])], 0.5)
    assert len(same) == 1 and same.scores[0] == pytest.approx(0.9)
    assert len(other) == 2
    assert len(merge_detections([Detections.empty()], 0.5)) == 0


def test_tiled_detector_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="tile_size"):
        TiledDetector(BrightBlobs(), tile_size=0.0)
    with pytest.raises(ValueError, match="overlap"):
        TiledDetector(BrightBlobs(), tile_size=1.0, overlap=0.95)


def test_tile_config_keys_are_validated() -> None:
    assert load_config(overrides={"detector": {"tile_size": 0.5, "tile_overlap": 0.3}}).detector.tiles() == 0.5
    assert DetectorConfig().tiles() == 1.0 and DetectorConfig(kind="hog").tiles() == 0.0
    bad = [
        ({"tile_size": 0.1}, "detector.tile_size"),
        ({"tile_size": 1.5}, "detector.tile_size"),
        ({"tile_size": "big"}, "detector.tile_size"),
        ({"tile_overlap": 0.95}, "detector.tile_overlap"),
        ({"kind": "given", "detections_file": "d.txt", "tile_size": 1.0}, "detector.tile_size"),
        ({"class_score_thr": ["Person"]}, "detector.class_score_thr"),
        ({"class_score_thr": ["Person:1.2"]}, "detector.class_score_thr"),
        ({"class_score_thr": "Person:0.4"}, "detector.class_score_thr"),
        ({"kind": "hog", "class_score_thr": ["person:0.4"]}, "detector.class_score_thr"),
    ]
    for detector, key in bad:
        with pytest.raises(ConfigError, match=key):
            load_config(overrides={"detector": detector})


def test_the_default_detector_is_tiled_and_reports_each_person_once() -> None:
    frame = next(iter(FrameSource(TUD_CAMPUS_VIDEO, 1)))
    whole = build_detector_from_config(DetectorConfig(classes=("Person",), tile_size=0))
    tiled = build_detector_from_config(DetectorConfig(classes=("Person",)))
    assert isinstance(tiled, TiledDetector) and tiled.score_thr == pytest.approx(0.36)
    dets = tiled(frame, 0)
    assert len(dets) >= len(whole(frame, 0)) >= 3
    assert (dets.boxes[:, 2] <= 640).all() and (dets.boxes[:, 3] <= 480).all() and (dets.scores >= 0.36).all()
    iou = box_iou(torch.from_numpy(dets.boxes), torch.from_numpy(dets.boxes)).fill_diagonal_(0)
    assert float(iou.max()) <= 0.5  # no duplicate left by the merge
