"""The ``yolo`` detector plug-in run through the real ``ultralytics`` library, on the CPU, offline.

A YOLO11n / YOLOv8n built from the YAML inside the ultralytics wheel (random weights, see
tests/yolo_tiny.py) is saved as a checkpoint and loaded through ``detector.weights`` as a user's
would be. Any attempt to reach the network fails the test. Not skipped without ultralytics:
scripts/setup.sh installs it, and CI must run this.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from masa_core.config import load_config
from masa_core.detectors import Detections, DetectorConfig, build_detector_from_config
from masa_core.detectors.yolo import UltralyticsYOLO, YoloWeightsError, import_ultralytics
from masa_core.errors import MasaError
from masa_core.pipeline import Pipeline
from tests.yolo_tiny import NAMES, class_names, write_tiny_yolo


@pytest.fixture(scope="module", autouse=True)
def ultralytics_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Ultralytics writes its settings.json on import: into a temporary folder, not ~/.config. It is
    imported as the plug-in imports it (offline), whichever test here runs first."""
    folder = tmp_path_factory.mktemp("ultralytics_config")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YOLO_CONFIG_DIR", str(folder))
        import_ultralytics()
        yield folder


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DNS look-up or a connection (update check, telemetry, download) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, tud_frames: list[np.ndarray]) -> Path:
    return write_tiny_yolo(tmp_path_factory.mktemp("yolo") / "tiny_yolo11n.pt", tud_frames[:2])


def yolo(weights: Path, **fields: object) -> UltralyticsYOLO:
    """The plug-in as the config builds it (``detector.kind: yolo``)."""
    detector = build_detector_from_config(DetectorConfig(kind="yolo", weights=str(weights), **fields))
    assert isinstance(detector, UltralyticsYOLO)  # yolo is not tiled by default
    return detector


def rows(dets: Detections) -> np.ndarray:
    """Detections as sorted (x1, y1, x2, y2, score, label) rows, for order-free comparison."""
    table = np.column_stack([dets.boxes, dets.scores, dets.labels]).astype(np.float64)
    return table[np.lexsort(table.T[::-1])]


def test_runs_real_ultralytics_on_a_tud_frame(weights: Path, tud_frames: list[np.ndarray]) -> None:
    from ultralytics.utils import SETTINGS

    det = yolo(weights, score_thr=0.3)
    frame = tud_frames[2]
    out = det(frame, 2)
    h, w = frame.shape[:2]
    assert det.device == "cpu" and det.class_names == tuple(class_names().values())
    assert 0 < len(out) <= 300  # ultralytics' max_det
    assert out.boxes.dtype == np.float32 and out.scores.dtype == np.float32 and out.labels.dtype == np.int64
    assert (out.boxes >= 0).all() and (out.boxes[:, [0, 2]] <= w).all() and (out.boxes[:, [1, 3]] <= h).all()
    assert (out.boxes[:, 2] > out.boxes[:, 0]).all() and (out.boxes[:, 3] > out.boxes[:, 1]).all()
    assert ((out.scores >= 0.3) & (out.scores <= 1)).all()
    assert ((out.labels >= 0) & (out.labels < len(det.class_names))).all() and len(set(out.labels)) > 1
    assert Path(SETTINGS.file).is_relative_to(Path(os.environ["YOLO_CONFIG_DIR"]))


@pytest.mark.parametrize("yaml", ["yolo11n.yaml", "yolov8n.yaml"])
def test_same_boxes_as_ultralytics_own_api(tmp_path: Path, tud_frames: list[np.ndarray], yaml: str) -> None:
    from ultralytics import YOLO

    path = write_tiny_yolo(tmp_path / "model.pt", tud_frames[:2], yaml=yaml)
    det = yolo(path, score_thr=0.55, nms_iou_thr=0.6)
    frame = tud_frames[3]
    ours = det(frame)
    direct = YOLO(str(path)).predict(
        cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), conf=0.55, iou=0.6, device="cpu", verbose=False
    )[0]
    assert len(ours) > 0
    np.testing.assert_allclose(ours.boxes, direct.boxes.xyxy.numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.scores, direct.boxes.conf.numpy(), atol=1e-6)
    np.testing.assert_array_equal(ours.labels, direct.boxes.cls.numpy().astype(np.int64))


def test_threshold_nms_and_class_filter(weights: Path, tud_frames: list[np.ndarray]) -> None:
    frame = tud_frames[4]
    det = yolo(weights, score_thr=0.75)
    low = det(frame)
    assert 0 < len(low) < 300  # below max_det, so nothing is cut by the box budget
    high_thr = float(np.round(np.median(low.scores), 3))
    high = yolo(weights, score_thr=high_thr)(frame)
    assert 0 < len(high) < len(low)
    np.testing.assert_allclose(rows(high), rows(low.select(low.scores >= high_thr)), atol=1e-4)

    common = int(np.bincount(low.labels).argmax())
    only = yolo(weights, score_thr=0.75, classes=(det.class_names[common].upper(),))(frame)
    assert 0 < len(only) < len(low) and (only.labels == common).all()
    np.testing.assert_allclose(rows(only), rows(low.select(low.labels == common)), atol=1e-4)  # NMS is per class

    strict = yolo(weights, score_thr=0.75, nms_iou_thr=0.3)(frame)
    assert 0 < len(strict) < len(low)
    # NMS runs before the boxes are clipped to the frame: check the boxes that clipping left alone
    h, w = frame.shape[:2]
    b = strict.boxes
    inside = strict.select((b[:, 0] > 0) & (b[:, 1] > 0) & (b[:, 2] < w) & (b[:, 3] < h))
    iou = box_iou(torch.from_numpy(inside.boxes), torch.from_numpy(inside.boxes)).fill_diagonal_(0)
    same_class = torch.from_numpy(inside.labels[:, None] == inside.labels[None, :])
    assert len(inside) > 1 and 0 < float(iou[same_class].max()) <= 0.3 + 1e-4


def test_loading_is_restricted_and_offline(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ultralytics.nn.tasks as tasks
    from ultralytics.utils import AUTOINSTALL, ONLINE

    calls: list[dict] = []
    real_load = tasks.torch_load

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(tasks, "torch_load", spy)
    yolo(weights)
    assert calls == [{"map_location": "cpu", "weights_only": True}]  # one load, weights_only
    assert tasks.SAFE_LOAD is False  # the restricted switch was on for our load only
    assert ONLINE is False  # YOLO_OFFLINE: no DNS probe at import, no telemetry or update check
    assert AUTOINSTALL is False  # YOLO_AUTOINSTALL=false: no pip install of a module a file names


def test_importing_ultralytics_leaves_the_process_settings_alone(tmp_path: Path) -> None:
    """In a fresh process: OpenCV's threads, numpy's printing and OMP_NUM_THREADS stay as they were."""
    code = (
        "import os, cv2, numpy as np\n"
        "before = cv2.getNumThreads(), np.get_printoptions()\n"
        "from masa_core.detectors.yolo import import_ultralytics\n"
        "import_ultralytics()\n"
        "import ultralytics.utils as u\n"
        "assert (cv2.getNumThreads(), np.get_printoptions()) == before\n"
        "assert 'OMP_NUM_THREADS' not in os.environ and u.ONLINE is False and os.environ['YOLO_OFFLINE'] == '1'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "YOLO_OFFLINE")}
    env["YOLO_CONFIG_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


class _Payload:
    """Unpickling this runs code: it creates the file it names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def _bad_weights(tmp_path: Path, kind: str, good: Path) -> Path:
    path = tmp_path / "weights.pt"
    if kind == "missing":
        return tmp_path / "nope.pt"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "a zip archive, not a torch.save one")
    elif kind == "state_dict":
        torch.save({"weight": torch.zeros(3)}, path)
    elif kind == "onnx":
        path = tmp_path / "weights.onnx"
        path.write_bytes(b"\x08\x07")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "not found"),
        ("directory", "is not a file"),
        ("empty", "is empty"),
        ("corrupt", "is not a PyTorch checkpoint"),
        ("truncated", "is not a PyTorch checkpoint"),
        ("zip", "cannot be loaded as an Ultralytics checkpoint: the zip archive is not one that torch.save wrote"),
        ("state_dict", "cannot be loaded as an Ultralytics checkpoint: it holds no Ultralytics model"),
        ("onnx", r"expected an Ultralytics PyTorch checkpoint \(\.pt\)"),
    ],
)
def test_bad_weights_give_one_clear_error(tmp_path: Path, weights: Path, kind: str, message: str) -> None:
    path = _bad_weights(tmp_path, kind, weights)
    with pytest.raises(YoloWeightsError, match=message) as err:
        yolo(path)
    assert isinstance(err.value, MasaError) and "\n" not in str(err.value)


def test_pickled_code_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": _Payload(marker)}, path)
    with pytest.raises(YoloWeightsError, match="references code or types outside"):
        yolo(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file does run code when fully unpickled
    assert marker.exists()


def test_a_segmentation_model_gives_its_boxes(tmp_path: Path, tud_frames: list[np.ndarray]) -> None:
    det = yolo(write_tiny_yolo(tmp_path / "seg.pt", tud_frames[:2], yaml="yolo11n-seg.yaml"), score_thr=0.75)
    out = det(tud_frames[2])
    assert det._model.task == "segment" and len(out) > 0 and (out.boxes[:, 2] > out.boxes[:, 0]).all()


def test_a_model_without_boxes_and_an_unknown_class_are_refused(tmp_path: Path, weights: Path) -> None:
    from ultralytics import YOLO

    cls_path = tmp_path / "cls.pt"
    YOLO("yolo11n-cls.yaml").save(str(cls_path))
    with pytest.raises(YoloWeightsError, match="'classify' model"):
        yolo(cls_path)
    with pytest.raises(YoloWeightsError, match="unicorn"):
        yolo(weights, classes=("unicorn",))
    with pytest.raises(ValueError, match="RGB frame"):
        yolo(weights)(np.zeros((48, 64), np.uint8))


def test_pipeline_tracks_with_the_yolo_detector(weights: Path, small_model, tud_frames: list[np.ndarray]) -> None:
    config = load_config(None, {"detector": {"kind": "yolo", "weights": str(weights), "classes": list(NAMES)}})
    pipe = Pipeline(config, model=small_model)
    results = [pipe.process(frame) for frame in tud_frames[:3]]
    assert isinstance(pipe.detector, UltralyticsYOLO) and pipe.detector.score_thr == 0.25
    ids = [{t.id for t in r.tracks} for r in results]
    assert all(ids) and set.intersection(*ids), "the near-identical frames keep some tracks all along"
    for result in results:
        assert result.timings["detector"] > 0
        for track in result.tracks:
            assert track.label_name in NAMES
            assert 0 <= track.box[0] < track.box[2] <= 640 and 0 <= track.box[1] < track.box[3] <= 480


@pytest.mark.parametrize("good", [True, False])
def test_masa_track_with_yolo_weights(tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture, good: bool) -> None:
    from masa_core.cli.track import main as track_main
    from tests.paths import TUD_CAMPUS_VIDEO

    path = weights if good else tmp_path / "corrupt.pt"
    if not good:
        path.write_bytes(np.random.default_rng(1).bytes(1000))
    config = tmp_path / "yolo.yaml"
    config.write_text(f"detector:\n  kind: yolo\n  weights: {path}\n  score_thr: 0.75\n")
    results = tmp_path / "results.txt"
    argv = [str(TUD_CAMPUS_VIDEO), "--config", str(config), "--max-frames", "2", "--output", str(results)]
    code = track_main([*argv, "--no-video", "--quiet", "--device", "cpu", "--input-size", "128"])
    err = capsys.readouterr().err
    if good:
        assert code == 0 and results.read_text().count("\n") > 0
    else:
        lines = [line for line in err.splitlines() if line.startswith("masa-track:")]
        assert code == 2 and "Traceback" not in err and len(lines) == 1 and "is not a PyTorch checkpoint" in lines[0]
        assert not results.exists()
