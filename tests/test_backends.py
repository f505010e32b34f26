"""Inference backends: OpenVINO's backbone + adapter equal torch's, its disk cache is reused and a
corrupt entry rebuilt, a part that cannot convert falls back to torch alone, TensorRT without CUDA is
a one-line error, and the CPU defaults resolve to the real-time configuration."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from masa_core import Detections, Pipeline, load_config
from masa_core.config import ConfigError, PipelineConfig
from masa_core.formats.mot import read_mot
from masa_core.models import backends
from masa_core.models.backends import (
    OpenVINORuntime,
    accelerate_segmenter,
    converted_parts,
    describe,
    resolve_backend,
    unwrap,
)
from masa_core.models.build import (
    ModelConfig,
    build_model,
    build_runtime_model,
    resolve_input_size,
    resolve_variant,
)
from masa_core.segmentation import BoxPromptSegmenter
from tests.gt_tracking import track_tud_campus_with_gt
from tests.paths import REPO, TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO

pytest.importorskip("openvino")

# The CPU default's variant with its shipped adapter, small so that conversion and runs are quick.
CONFIG = ModelConfig(variant="masa_mnv2_lite", input_size=128, device="cpu", backend="openvino")
# Relative error allowed between OpenVINO (fp32) and torch outputs; measured about 5e-6.
RTOL = 1e-4
BOXES = torch.tensor([[10.0, 20.0, 60.0, 90.0], [70.0, 10.0, 120.0, 95.0]])


def rel_err(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float((x - y).abs().max() / y.abs().max()) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def torch_model():
    return build_model(dataclasses.replace(CONFIG, backend="torch"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ov_cache")


@pytest.fixture(scope="module")
def ov_model(cache):
    return build_runtime_model(dataclasses.replace(CONFIG, cache_dir=str(cache)))


@pytest.fixture(scope="module")
def image(torch_model, tud_frames):
    return torch_model.preprocess(tud_frames[0])[0]


def outputs(model, image: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    with torch.inference_mode():
        taps = model.backbone(image)
        pyramid = model.adapter(taps)
        return taps, pyramid, model.embed(pyramid, BOXES)


def test_openvino_backbone_adapter_and_embeddings_equal_torch(torch_model, ov_model, image) -> None:
    assert set(converted_parts(ov_model)) == {"backbone", "adapter", "track_head", "rpn_head", "box_head"}
    taps, pyramid, emb = outputs(ov_model, image)
    ref_taps, ref_pyramid, ref_emb = outputs(torch_model, image)
    assert rel_err(taps, ref_taps) < RTOL
    assert rel_err(pyramid, ref_pyramid) < RTOL
    assert rel_err([emb], [ref_emb]) < RTOL
    assert not any(p.failed for p in converted_parts(ov_model).values())
    assert describe(ov_model) == "model masa_mnv2_lite, backend openvino, device cpu, precision fp32, input 128 px"


def test_openvino_detection_head_equals_torch(torch_model, ov_model, image) -> None:
    """The RPN (pyramid → objectness, deltas) and the box head (RoIs → logits, deltas; any number of
    RoIs) through OpenVINO, and the boxes ``detect`` makes from them."""
    with torch.inference_mode():
        pyramid = torch_model.adapter(torch_model.backbone(image))
        ours, ref = (m.adapter.detection_head for m in (ov_model, torch_model))
        (cls, reg), (ref_cls, ref_reg) = ours.rpn_head(pyramid), ref.rpn_head(pyramid)
        assert len(cls) == len(reg) == 5 and rel_err(cls + reg, ref_cls + ref_reg) < RTOL
        for n in (3, 7):
            rois = torch.rand(n, 64, 7, 7)
            assert rel_err(ours.roi_head.bbox_head(rois), ref.roi_head.bbox_head(rois)) < RTOL
        hw = tuple(image.shape[-2:])
        dets, ref_dets = (h.detect(pyramid, hw, hw, 1.0, score_thr=0.0) for h in (ours, ref))
    assert len(dets) == len(ref_dets) > 0
    assert np.allclose(dets.boxes, ref_dets.boxes, atol=1e-3) and np.allclose(dets.scores, ref_dets.scores, atol=1e-5)
    assert not any(p.failed for p in converted_parts(ov_model).values())


def test_openvino_mask_decoder_equals_torch_for_any_number_of_boxes(ov_model) -> None:
    """SAM's prompt encoder + mask decoder (one conversion, the box count left open) against torch's."""
    ref, ours = BoxPromptSegmenter(128), BoxPromptSegmenter(128)
    accelerate_segmenter(ov_model, ours)
    embedding = torch.randn(1, 256, 8, 8, generator=torch.Generator().manual_seed(0))
    for boxes in (BOXES, torch.cat([BOXES, BOXES + 3, BOXES[:1] * 0.5])):
        (logits,), (ref_logits,) = ours.low_res_logits(embedding, boxes), ref.low_res_logits(embedding, boxes)
        assert logits.shape == (len(boxes), 1, 32, 32) and rel_err([logits], [ref_logits]) < RTOL
    assert "mask_decoder" in converted_parts(ov_model) and not converted_parts(ov_model)["mask_decoder"].failed


def test_masks_on_the_cpu_default_run_the_mask_decoder_through_openvino(small_model, tud_frames, tmp_path) -> None:
    """``masks.enabled`` with the OpenVINO backend: the pipeline hands the decoder to the backend and
    its masks are torch's (backbone and adapter kept in torch here, to keep the test short)."""
    overrides = {"model": {"variant": "masa_mobilesam", "input_size": 256, "device": "cpu", "checkpoint": "untrained"}}
    cfg = load_config(overrides={**overrides, "masks": {"enabled": True}})
    ov = build_runtime_model(dataclasses.replace(cfg.model, backend="openvino", cache_dir=str(tmp_path)), True)
    unwrap([ov.backbone, ov.adapter])
    pipes = [Pipeline(cfg, model=m) for m in (ov, small_model)]
    rows = read_mot(TUD_CAMPUS_GT, gt_filter=True)[1]
    ours, ref = (p.process(tud_frames[0], Detections(rows.boxes, np.ones(len(rows), np.float32))) for p in pipes)
    assert "mask_decoder" in converted_parts(ov) and not converted_parts(ov)["mask_decoder"].failed
    assert len(ours.tracks) == len(ref.tracks) == len(rows)
    for a, b in zip(ours.tracks, ref.tracks, strict=True):
        assert a.mask is not None and b.mask is not None and (a.mask == b.mask).mean() > 0.999


def test_tud_campus_with_given_boxes_tracks_the_same_through_openvino(torch_model, ov_model, tud_frames) -> None:
    config = load_config(overrides={"model": {"variant": "masa_mnv2_lite", "input_size": 128, "device": "cpu"}})
    ours = track_tud_campus_with_gt(Pipeline(config, model=ov_model), tud_frames)
    ref = track_tud_campus_with_gt(Pipeline(config, model=torch_model), tud_frames)
    assert ours.total == ref.total > 0
    for a, b in zip(ours.results, ref.results, strict=True):
        assert [(t.id, t.box) for t in a.tracks] == [(t.id, t.box) for t in b.tracks]
        assert np.allclose([t.match_score for t in a.tracks], [t.match_score for t in b.tracks], atol=1e-4)


def test_a_second_model_loads_the_cached_conversion(ov_model, cache, image, torch_model, monkeypatch) -> None:
    outputs(ov_model, image)  # converted (or already) for this shape
    assert len(list(cache.glob("*.xml"))) == len(list(cache.glob("*.json")))
    assert {"backbone", "adapter", "track_head"} <= {p.name.split("-")[2] for p in cache.glob("*.xml")}

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr(OpenVINORuntime, "_convert", no_conversion)
    again = build_runtime_model(dataclasses.replace(CONFIG, cache_dir=str(cache)))
    assert rel_err(outputs(again, image)[1], outputs(torch_model, image)[1]) < RTOL
    three = torch.cat([BOXES, BOXES[:1] + 5])  # another number of boxes: the same track head conversion
    with torch.inference_mode():
        embeds = again.embed(again.adapter(again.backbone(image)), three)
        assert rel_err([embeds], [torch_model.embed(torch_model.adapter(torch_model.backbone(image)), three)]) < RTOL
    assert not any(p.failed for p in converted_parts(again).values())


def test_a_corrupt_cache_entry_is_rebuilt_with_a_message(ov_model, cache, tmp_path, image, torch_model, caplog):
    outputs(ov_model, image)
    broken = tmp_path / "cache"
    shutil.copytree(cache, broken)
    (weights,) = broken.glob("*adapter*.bin")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="masa_core.backends"):
        model = build_runtime_model(dataclasses.replace(CONFIG, cache_dir=str(broken)))
        _, pyramid, _ = outputs(model, image)
    assert any("corrupt" in r.message and "rebuilding" in r.message and "adapter" in r.message for r in caplog.records)
    assert rel_err(pyramid, outputs(torch_model, image)[1]) < RTOL
    record = json.loads(next(broken.glob("*adapter*.json")).read_text())
    assert backends.file_sha256(weights) == record["sha256"]["bin"]  # rewritten whole


def test_a_part_that_cannot_convert_runs_in_torch_alone(cache, image, torch_model, monkeypatch, caplog) -> None:
    real = OpenVINORuntime.compile

    def refuse_adapter(self, name, *args):
        if name == "adapter":
            raise RuntimeError("Cannot create DeformableConvolution layer\nmore detail")
        return real(self, name, *args)

    monkeypatch.setattr(OpenVINORuntime, "compile", refuse_adapter)
    model = build_runtime_model(dataclasses.replace(CONFIG, cache_dir=str(cache)))
    with caplog.at_level(logging.WARNING, logger="masa_core.backends"):
        taps, pyramid, _ = outputs(model, image)
    (message,) = [r.getMessage() for r in caplog.records]
    assert "cannot run the adapter" in message and "DeformableConvolution" in message and "torch" in message
    parts = converted_parts(model)
    assert parts["adapter"].failed and not parts["backbone"].failed
    ref_taps, ref_pyramid, _ = outputs(torch_model, image)
    assert rel_err(taps, ref_taps) < RTOL and rel_err(pyramid, ref_pyramid) < RTOL
    assert "backend openvino (adapter in torch)" in describe(model)


def test_training_mode_gradients_bypass_the_backend(ov_model, image) -> None:
    with torch.enable_grad():
        taps = ov_model.backbone(image)
    assert isinstance(taps, list) and len(taps) == 4


def test_tensorrt_without_cuda_or_its_package_is_a_one_line_error(tmp_path) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and backends.installed("torch_tensorrt"):
        pytest.skip("TensorRT and CUDA are here: the error path cannot be reached")
    with pytest.raises(ConfigError, match="model.backend = tensorrt"):
        load_config(overrides={"model": {"backend": "tensorrt"}})
    cmd = [sys.executable, "-m", "masa_core.cli.track", str(TUD_CAMPUS_VIDEO), "--backend", "tensorrt"]
    out = subprocess.run([*cmd, "--quiet", "--no-video"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "tensorrt" in out.stderr and "Traceback" not in out.stderr


def test_unknown_or_missing_backends_are_refused_or_fall_back(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="allowed are auto, torch, openvino, tensorrt"):
        load_config(overrides={"model": {"backend": "onnx"}})
    cpu = torch.device("cpu")
    monkeypatch.setattr(backends, "installed", lambda package: False)
    assert resolve_backend("auto", cpu) == "torch"
    with pytest.raises(ValueError, match="openvino package is missing"):
        resolve_backend("openvino", cpu)


def test_the_cpu_defaults_are_the_real_time_configuration() -> None:
    model = PipelineConfig().model
    assert load_config(REPO / "config" / "masa.yaml").model == model
    if torch.cuda.is_available():
        pytest.skip("the CPU defaults resolve differently where CUDA is available")
    concrete = dataclasses.replace(model, variant=resolve_variant(model))
    assert (concrete.variant, resolve_input_size(concrete)) == ("masa_mnv2_lite", 512)
    assert resolve_backend(model.backend, torch.device("cpu")) == "openvino"
    # Masks need SAM's image embedding: auto then takes the MobileSAM variant at its 1024 px.
    sam = dataclasses.replace(model, variant=resolve_variant(model, needs_sam=True))
    assert (sam.variant, resolve_input_size(sam)) == ("masa_mobilesam", 1024)
    reference = load_config(REPO / "config" / "masa_reference.yaml").model
    assert (reference.variant, reference.input_size, reference.backend) == ("masa_mnv2", 1024, "torch")


def test_an_unwritable_cache_costs_a_warning_not_the_backend(tmp_path, image, torch_model, caplog) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    model = build_runtime_model(dataclasses.replace(CONFIG, cache_dir=str(blocker / "cache")))
    with caplog.at_level(logging.WARNING, logger="masa_core.backends"), torch.inference_mode():
        taps = model.backbone(image)
    assert any("cannot cache" in r.getMessage() for r in caplog.records)
    assert not converted_parts(model)["backbone"].failed
    with torch.inference_mode():
        assert rel_err(taps, torch_model.backbone(image)) < RTOL
