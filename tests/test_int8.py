"""INT8 on the CPU (``model.int8``): NNCF quantizes the adapter and track head on the user's
calibration images; the embeddings follow fp32's, the result is cached under its own key, and every
misuse is a one-line error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from masa_core import Detections, Pipeline
from masa_core.config import ConfigError, PipelineConfig
from masa_core.formats.mot import read_mot
from masa_core.models import backends
from masa_core.models.backends import BackendError, converted_parts, describe
from masa_core.models.build import ModelConfig, build_runtime_model
from masa_core.models.quantize import BOXES_PER_IMAGE, CalibrationError, grid_boxes
from tests.paths import TUD_CAMPUS_GT

pytest.importorskip("nncf")

LITE_256 = ModelConfig(variant="masa_mnv2_lite", input_size=256, device="cpu", backend="openvino")


def write_images(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{i:02d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def embeddings(model, frame: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
    image, scale = model.preprocess(frame)
    pyramid = model.features(image)
    return torch.nn.functional.normalize(model.embed(pyramid, torch.from_numpy(boxes) * scale), dim=1)


@pytest.fixture(scope="module")
def int8_setup(tmp_path_factory, tud_frames):
    """An fp32 and an INT8 OpenVINO model sharing one cache folder; calibrated on frames 0, 2, 4, 6."""
    root = tmp_path_factory.mktemp("int8")
    calibration = write_images(root / "calibration", tud_frames[0:8:2])
    fp32 = dataclasses.replace(LITE_256, cache_dir=str(root / "cache"))
    int8 = dataclasses.replace(fp32, int8=True, calibration_dir=str(calibration))
    return build_runtime_model(fp32), build_runtime_model(int8), int8, root / "cache"


def test_int8_embeddings_follow_fp32_on_frames_it_was_not_calibrated_on(int8_setup, tud_frames):
    fp32_model, int8_model, _, cache = int8_setup
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    cosines, differ = [], False
    for index in (1, 5, 9):
        boxes = gt[index + 1].boxes.astype(np.float32)
        a, b = embeddings(fp32_model, tud_frames[index], boxes), embeddings(int8_model, tud_frames[index], boxes)
        cosines.append((a * b).sum(1))
        differ |= not torch.equal(a, b)
    assert differ, "the INT8 model gave fp32's embeddings exactly: nothing was quantized"
    assert torch.cat(cosines).min() > 0.98
    assert "int8 adapter + track_head" in describe(int8_model)
    quantized = sorted(p.name.split("-int8-")[0] for p in cache.glob("*-int8-*.xml"))
    assert quantized == ["masa_mnv2_lite-256-adapter", "masa_mnv2_lite-256-track_head"]  # the backbone stays fp32


def test_the_quantized_parts_load_from_the_cache(int8_setup, tud_frames, monkeypatch):
    _, int8_model, int8_config, _ = int8_setup

    def no_quantizing(*args, **kwargs):
        raise AssertionError("quantized again: the cached INT8 parts were not used")

    monkeypatch.setattr(backends.OpenVINORuntime, "_quantize", no_quantizing)
    again = build_runtime_model(int8_config)
    boxes = read_mot(TUD_CAMPUS_GT, gt_filter=True)[2].boxes.astype(np.float32)
    assert torch.equal(embeddings(again, tud_frames[1], boxes), embeddings(int8_model, tud_frames[1], boxes))


def test_a_batch_of_frames_runs_its_own_quantized_adapter(int8_setup, tud_frames):
    """A batch of two (``process_batch``, the node's cameras) is another conversion, quantized too."""
    _, int8_model, int8_config, cache = int8_setup
    pipeline = Pipeline(PipelineConfig(model=int8_config), model=int8_model)
    boxes = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    dets = [Detections(boxes[i + 1].boxes, np.ones(len(boxes[i + 1].boxes))) for i in (3, 4)]
    results = pipeline.process_batch(tud_frames[3:5], dets)
    assert [len(r.tracks) for r in results] == [len(d.boxes) for d in dets]
    assert not any(part.failed for part in converted_parts(int8_model).values())
    assert len(list(cache.glob("masa_mnv2_lite-256-adapter-int8-*.xml"))) == 2  # batch 1 and batch 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"int8": True, "calibration_dir": "x", "backend": "torch"}, "model.int8 runs on the openvino backend"),
        ({"int8": True}, "model.int8 needs model.calibration_dir"),
    ],
)
def test_int8_settings_are_checked_with_the_config(change, message):
    config = PipelineConfig(model=dataclasses.replace(LITE_256, **change))
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_too_few_or_unreadable_calibration_images_are_one_line_errors(tmp_path, tud_frames):
    few = write_images(tmp_path / "few", tud_frames[:2])
    with pytest.raises(CalibrationError, match="2 images; INT8 needs at least 4"):
        build_runtime_model(dataclasses.replace(LITE_256, int8=True, calibration_dir=str(few)))
    with pytest.raises(CalibrationError, match="not a folder of images"):
        build_runtime_model(dataclasses.replace(LITE_256, int8=True, calibration_dir=str(tmp_path / "missing")))
    broken = write_images(tmp_path / "broken", tud_frames[:4])
    (broken / "frame_00.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CalibrationError, match="cannot read frame_00.jpg"):
        build_runtime_model(dataclasses.replace(LITE_256, int8=True, calibration_dir=str(broken)))


def test_without_nncf_int8_is_a_one_line_error(tmp_path, tud_frames, monkeypatch):
    folder = write_images(tmp_path / "calibration", tud_frames[:4])
    monkeypatch.setattr(backends, "installed", lambda package: package != "nncf")
    with pytest.raises(BackendError, match="model.int8 needs the nncf package"):
        build_runtime_model(dataclasses.replace(LITE_256, int8=True, calibration_dir=str(folder)))


def test_calibration_boxes_tile_the_image():
    boxes = grid_boxes(384.0, 512.0).numpy()
    assert 0 < len(boxes) <= BOXES_PER_IMAGE
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 512).all() and (boxes[:, 3] <= 384).all()
    assert len({round(float(b[2] - b[0])) for b in boxes}) == 3  # the three sizes
