"""Detectors: file-backed, MediaPipe SSD and HOG on real TUD-Campus frames, factory and plug-ins."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from masa_core.assets import AssetError, asset_path
from masa_core.boxes import box_iou
from masa_core.detectors import (
    KINDS,
    Detections,
    Detector,
    DetectorConfig,
    GivenDetector,
    build_detector,
    build_detector_from_config,
)
from masa_core.detectors.factory import parse_class_score_thr
from masa_core.detectors.grounding_dino import format_prompt, match_phrase, parse_prompt
from masa_core.detectors.mediapipe_ssd import MediaPipeSSD, nms, ssd_anchors
from masa_core.detectors.tiling import TiledDetector
from masa_core.detectors.yolo import class_ids_for, names_tuple
from masa_core.formats.mot import read_mot
from tests.paths import TUD_CAMPUS as TUD

TUD_FRAMES = (0, 20, 50, 70)


def _has_ssd() -> bool:
    try:
        asset_path("ssd_oidv4")
        asset_path("ssd_oidv4_labels")
    except AssetError:
        return False
    return True


needs_tud = pytest.mark.skipif(not (TUD / "TUD-Campus.mp4").is_file(), reason="MOT15 data not present")
needs_ssd = pytest.mark.skipif(not _has_ssd(), reason="SSD assets not fetched")


@pytest.fixture(scope="module")
def tud() -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """RGB frames (by 0-based index) and their gt boxes x1y1x2y2."""
    cap = cv2.VideoCapture(str(TUD / "TUD-Campus.mp4"))
    frames = {}
    for i in range(max(TUD_FRAMES) + 1):
        ok, bgr = cap.read()
        assert ok, f"could not read frame {i}"
        if i in TUD_FRAMES:
            frames[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    cap.release()
    gt = read_mot(TUD / "gt" / "gt.txt")
    return frames, {i: gt[i + 1].boxes for i in TUD_FRAMES}


@pytest.fixture(scope="module")
def ssd() -> MediaPipeSSD:
    return MediaPipeSSD(classes=("Person",), num_threads=2)


def _matched(dets: Detections, gt: np.ndarray, thr: float = 0.5) -> int:
    """How many gt boxes have a detection with IoU > thr."""
    if len(dets) == 0:
        return 0
    return sum(int(box_iou(g[None], dets.boxes).max() > thr) for g in gt)


def _check_boxes(dets: Detections, shape: tuple[int, ...]) -> None:
    h, w = shape[:2]
    assert np.isfinite(dets.boxes).all() and np.isfinite(dets.scores).all()
    assert (dets.boxes[:, 0] >= 0).all() and (dets.boxes[:, 2] <= w).all()
    assert (dets.boxes[:, 1] >= 0).all() and (dets.boxes[:, 3] <= h).all()
    assert (dets.boxes[:, 2] > dets.boxes[:, 0]).all() and (dets.boxes[:, 3] > dets.boxes[:, 1]).all()
    assert ((dets.scores >= 0) & (dets.scores <= 1)).all()


# --- GivenDetector -------------------------------------------------------------------------------


def test_given_from_file_maps_frame_index_to_file_frame(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n3,-1,0,0,5,5,0.2,-1,-1,-1\n3,-1,1,1,5,5,0.8,-1,-1,-1\n")
    det = GivenDetector(path)
    assert isinstance(det, Detector) and det.class_names == ("object",)
    frame = np.zeros((4, 4, 3), np.uint8)
    first = det(frame, 0)
    np.testing.assert_allclose(first.boxes, [[10, 20, 40, 60]])
    np.testing.assert_allclose(first.scores, [0.9])
    assert len(det(frame, 1)) == 0  # file frame 2 has no rows
    assert len(det(frame, 2)) == 2
    assert len(det(frame, 99)) == 0
    assert det.frame_indices == [0, 2]
    assert len(GivenDetector(path, min_score=0.5)(frame, 2)) == 1


def test_given_mapping_and_set_next() -> None:
    one = Detections([[0, 0, 10, 10]], [0.5], [7])
    det = GivenDetector({4: one})
    frame = np.zeros((4, 4, 3), np.uint8)
    assert det(frame, 4).labels.tolist() == [0]  # class-agnostic
    assert len(det(frame, 3)) == 0
    det.set_next(Detections([[1, 1, 2, 2], [3, 3, 4, 4]], [0.1, 0.2]))
    assert len(det(frame, 4)) == 2  # pushed detections win once...
    assert len(det(frame, 4)) == 1  # ...then the table applies again
    det.set_frame(5, one)
    assert len(det(frame, 5)) == 1
    with pytest.raises(ValueError, match="frame_index"):
        det.set_frame(-1, one)


# --- MediaPipe SSD -------------------------------------------------------------------------------


def test_anchor_count_and_layout() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (1917, 4)  # 19*19*3 + (10*10 + 5*5 + 3*3 + 2*2 + 1) * 6
    np.testing.assert_allclose(anchors[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(anchors[-1, :2], [0.5, 0.5])
    assert anchors[-1, 2] == pytest.approx(np.sqrt(0.95))  # interpolated scale on the last layer


def test_nms_per_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, labels=np.array([0, 0, 1])).tolist() == [0, 2]


@needs_ssd
@needs_tud
def test_ssd_finds_people_on_tud_campus(ssd: MediaPipeSSD, tud) -> None:
    frames, gt = tud
    assert "Person" in ssd.class_names and "???" not in ssd.class_names
    recalls = []
    for i in TUD_FRAMES:
        dets = ssd(frames[i], i)
        _check_boxes(dets, frames[i].shape)
        assert {ssd.class_names[k] for k in dets.labels} <= {"Person"}
        recalls.append(_matched(dets, gt[i]) / len(gt[i]))
    # measured 5/6 gt people on frame 0 and recall 0.83 over all 71 frames
    assert _matched(ssd(frames[0], 0), gt[0]) >= 3
    assert np.mean(recalls) >= 0.6


@needs_ssd
@needs_tud
def test_ssd_all_classes_and_scaling(tud) -> None:
    frames, gt = tud
    det = build_detector("mediapipe_ssd", score_thr=0.3)
    dets = det(frames[0], 0)
    assert len(dets) >= len(gt[0])
    # the same frame at half size gives boxes at half scale
    small = cv2.resize(frames[0], (320, 240), interpolation=cv2.INTER_AREA)
    half = MediaPipeSSD(classes=("person",))(small, 0)
    _check_boxes(half, small.shape)
    assert _matched(Detections(half.boxes * 2, half.scores), gt[0]) >= 3


@needs_ssd
def test_ssd_blank_frames_give_few_detections(ssd: MediaPipeSSD) -> None:
    everything = MediaPipeSSD()
    for value in (0, 128, 255):
        frame = np.full((480, 640, 3), value, np.uint8)
        assert len(everything(frame, 0)) <= 2
        assert len(ssd(frame, 0)) == 0
    assert len(everything(np.zeros((1, 1, 3), np.uint8), 0)) <= 2
    with pytest.raises(ValueError, match="RGB frame"):
        ssd(np.zeros((10, 10), np.uint8), 0)


@needs_ssd
def test_ssd_unknown_class_name() -> None:
    with pytest.raises(ValueError, match="Unicorn"):
        MediaPipeSSD(classes=("Unicorn",))


# --- HOG -----------------------------------------------------------------------------------------


@needs_tud
def test_hog_finds_people_on_tud_campus(tud) -> None:
    frames, gt = tud
    hog = build_detector("hog")
    assert hog.class_names == ("person",)
    found = 0
    for i in TUD_FRAMES:
        dets = hog(frames[i], i)
        _check_boxes(dets, frames[i].shape)
        assert (dets.scores >= 0.5).all()  # logistic of a non-negative SVM margin
        found += _matched(dets, gt[i])
    assert found >= 3  # measured 3 + 2 + 2 + 2 gt people matched at IoU 0.5
    assert len(hog(np.zeros((480, 640, 3), np.uint8), 0)) == 0


# --- factory and config --------------------------------------------------------------------------


def test_unknown_kind_lists_allowed() -> None:
    with pytest.raises(ValueError, match="allowed kinds: mediapipe_ssd, given, hog, yolo, grounding_dino"):
        build_detector("rcnn")


def test_unknown_option_is_named() -> None:
    with pytest.raises(TypeError, match="bogus"):
        build_detector("hog", bogus=1)
    with pytest.raises(TypeError, match="score_threshold"):
        build_detector("yolo", weights="x.pt", score_threshold=0.3)  # rejected before importing


def test_config_validation_names_field() -> None:
    assert DetectorConfig().validate().kind == "mediapipe_ssd"
    cases = [
        (DetectorConfig(kind="nope"), "kind"),
        (DetectorConfig(score_thr=1.5), "score_thr"),
        (DetectorConfig(nms_iou_thr=0.0), "nms_iou_thr"),
        (DetectorConfig(num_threads=0), "num_threads"),
        (DetectorConfig(classes=["Person"]), "classes"),  # type: ignore[arg-type]
        (DetectorConfig(kind="given"), "detections_file"),
        (DetectorConfig(kind="yolo"), "weights"),
        (DetectorConfig(kind="grounding_dino", weights="/m", text_prompt=" . "), "text_prompt"),
        (DetectorConfig(kind="hog", classes=("car",)), "classes"),
    ]
    for cfg, field in cases:
        with pytest.raises(ValueError, match=rf"detector\.{field} = .* expected"):
            cfg.validate()


def test_build_from_config(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n1,-1,0,0,5,5,0.1,-1,-1,-1\n")
    det = build_detector_from_config(DetectorConfig(kind="given", detections_file=str(path), score_thr=0.5))
    assert isinstance(det, GivenDetector)
    assert len(det(np.zeros((4, 4, 3), np.uint8), 0)) == 1
    assert isinstance(build_detector_from_config(DetectorConfig(kind="hog")), Detector)
    assert set(KINDS) == {"given", "mediapipe_ssd", "hog", "yolo", "grounding_dino", "masa_head"}
    with pytest.raises(ValueError, match="runs inside the Pipeline"):
        build_detector("masa_head")


@needs_ssd
def test_build_default_from_config() -> None:
    det = build_detector_from_config(DetectorConfig(classes=("Person",), num_threads=1))
    assert isinstance(det, TiledDetector) and isinstance(det.base, MediaPipeSSD)  # tiled by default
    assert det.class_names == det.base.class_names and det.score_thr == det.base.score_thr
    whole = build_detector_from_config(DetectorConfig(classes=("Person",), num_threads=1, tile_size=0))
    assert isinstance(whole, MediaPipeSSD)


# --- plug-ins ------------------------------------------------------------------------------------


def test_yolo_missing_library_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install --no-deps ultralytics=="):
        build_detector_from_config(DetectorConfig(kind="yolo", weights="yolo11n.pt"))


def test_grounding_dino_missing_library_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed: import raises ImportError
    cfg = DetectorConfig(kind="grounding_dino", weights="/models/gdino", text_prompt="person . car .")
    with pytest.raises(ImportError, match="pip install transformers"):
        build_detector_from_config(cfg)


def test_prompt_parsing_and_phrase_matching() -> None:
    names = parse_prompt("Person . car.  traffic   light , person .")
    assert names == ("person", "car", "traffic light")
    assert format_prompt(names) == "person . car . traffic light ."
    assert match_phrase("car", names) == 1
    assert match_phrase("traffic light car", names) == 2  # longest contained name
    assert match_phrase("traffic", names) == 2  # partial phrase
    assert match_phrase("dog", names) is None
    assert match_phrase("", names) is None


def test_yolo_name_helpers() -> None:
    names = names_tuple({0: "person", 1: "bicycle", 2: "car"})
    assert names == ("person", "bicycle", "car")
    assert class_ids_for(names, ("Car", "person")) == [2, 0]
    with pytest.raises(ValueError, match="unicorn"):
        class_ids_for(names, ("unicorn",))


@needs_ssd
def test_ssd_person_threshold_is_calibrated_and_other_classes_keep_the_default() -> None:
    assert MediaPipeSSD(classes=("Person",)).score_thr == pytest.approx(0.36)
    everything = MediaPipeSSD()
    assert everything.score_thr == pytest.approx(0.3)  # the lowest threshold of the classes kept
    person = everything.class_names.index("Person")
    assert everything.class_thr[person] == pytest.approx(0.36)
    assert np.delete(everything.class_thr, person) == pytest.approx(0.3)
    given = MediaPipeSSD(score_thr=0.5)  # a threshold given applies to every class
    assert (given.class_thr == 0.5).all()
    own = MediaPipeSSD(classes=("Person", "Car"), class_score_thr={"person": 0.2, "Car": 0.6})
    assert own.score_thr == pytest.approx(0.2) and own.class_thr[own.class_names.index("Car")] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="Unicorn"):
        MediaPipeSSD(class_score_thr={"Unicorn": 0.5})


@needs_ssd
@needs_tud
def test_ssd_per_class_threshold_filters_its_class_only(tud) -> None:
    frames, _ = tud
    low = MediaPipeSSD(classes=("Person",), class_score_thr={"Person": 0.1})(frames[0], 0)
    high = MediaPipeSSD(classes=("Person",), class_score_thr={"Person": 0.5})(frames[0], 0)
    assert (low.scores >= 0.1).all() and (high.scores >= 0.5).all()
    assert len(low) > len(high)
    assert {tuple(b) for b in high.boxes} <= {tuple(b) for b in low.boxes}


def test_class_score_thr_config_builds_the_ssd_thresholds() -> None:
    assert parse_class_score_thr(("Person:0.4", "Car:0.55")) == {"Person": 0.4, "Car": 0.55}
    with pytest.raises(ValueError, match="ClassName:threshold"):
        parse_class_score_thr(("Person=0.4",))
