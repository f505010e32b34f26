"""The MASA model: shapes through every stage, RoI level choice, checkpoints and their errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from masa_core.assets import AssetError, bundled_weights
from masa_core.device import resolve_device, resolve_dtype
from masa_core.models.build import ModelConfig, build_model
from masa_core.models.checkpoint import CheckpointError, load_adapter, read_checkpoint, save_adapter
from masa_core.models.roi_extractor import map_roi_levels
from masa_core.models.tinyvit_backbone import TinyViTBackbone


def test_backbone_gives_four_stride16_maps(small_model):
    image = torch.zeros(1, 3, 256, 256)
    taps = small_model.backbone(image)
    assert [t.shape for t in taps] == [(1, c, 16, 16) for c in (160, 320, 320, 256)]


def test_adapter_builds_a_five_level_pyramid_at_strides_4_to_64(small_model):
    taps = small_model.backbone(torch.zeros(1, 3, 256, 256))
    with torch.inference_mode():
        pyramid = small_model.adapter(taps)
    assert [p.shape for p in pyramid] == [(1, 256, 256 // s, 256 // s) for s in (4, 8, 16, 32, 64)]


def test_embeddings_have_256_dims_per_box_and_none_for_no_boxes(small_model, tud_frames):
    boxes = np.array([[10, 20, 60, 200], [300, 100, 420, 470], [0, 0, 640, 480]], np.float32)
    assert small_model(tud_frames[0], boxes).shape == (3, 256)
    assert small_model(tud_frames[0], np.zeros((0, 4), np.float32)).shape == (0, 256)


def test_embed_dim_and_detect_are_the_adapters(small_model, tud_frames):
    image, scale = small_model.preprocess(tud_frames[0])
    pyramid = small_model.fuse(small_model.backbone(image))
    boxes = torch.tensor([[10.0, 20.0, 60.0, 200.0]]) * scale
    assert small_model.embed(pyramid, boxes).shape == (1, small_model.embed_dim) and small_model.embed_dim == 256
    hw, valid = (256, 256), (192, 256)
    ours = small_model.detect(pyramid, hw, valid, scale, 0.02, (480, 640))
    with torch.inference_mode():
        head = small_model.adapter.detection_head.detect(pyramid, hw, valid, scale, score_thr=0.02, frame_hw=(480, 640))
    assert len(ours) == len(head) > 0
    np.testing.assert_array_equal(ours.boxes, head.boxes)


def test_embeddings_are_finite_and_differ_between_boxes(small_model, tud_frames):
    emb = small_model(tud_frames[0], np.array([[10, 20, 60, 200], [300, 100, 420, 470]], np.float32))
    assert torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])


def test_roi_levels_follow_box_scale_like_mmdet():
    boxes = torch.tensor([[0, 0, 50, 50], [0, 0, 112, 112], [0, 0, 224, 224], [0, 0, 448, 448], [0, 0, 2000, 2000]])
    assert map_roi_levels(boxes.float(), num_levels=4).tolist() == [0, 1, 2, 3, 3]


def test_preprocess_keeps_aspect_and_pads_to_square(small_model, tud_frames):
    image, scale = small_model.preprocess(tud_frames[0])
    assert image.shape == (1, 3, 256, 256)
    assert scale == pytest.approx(256 / 640)
    assert torch.all(image[0, :, 192:, :] == 0)  # 480 * 0.4 = 192 rows of image, the rest padding


def test_input_size_must_be_a_multiple_of_64():
    with pytest.raises(ValueError, match="input_size = 100"):
        ModelConfig(input_size=100).validate()
    with pytest.raises(ValueError, match="multiple of 64"):
        TinyViTBackbone(img_size=200)


def test_checkpoint_round_trip_restores_identical_embeddings(tmp_path, small_model, tud_frames):
    path = tmp_path / "adapter.pt"
    save_adapter(path, small_model.adapter, "masa_mobilesam", meta={"note": "test"})
    other = build_model(
        ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", seed=1, checkpoint=str(path))
    )
    boxes = np.array([[10, 20, 60, 200]], np.float32)
    torch.testing.assert_close(other(tud_frames[0], boxes), small_model(tud_frames[0], boxes))
    fresh = build_model(
        ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", seed=1, checkpoint="untrained")
    )
    assert not torch.allclose(fresh(tud_frames[0], boxes), small_model(tud_frames[0], boxes))


def test_half_precision_tracking_only_checkpoint_keeps_the_rest(tmp_path, small_model, tud_frames):
    path = tmp_path / "tracking.pt"
    save_adapter(path, small_model.adapter, "masa_mobilesam", half=True, omit=("detection_head.",))
    stored = read_checkpoint(path)["state_dict"]
    assert not any(k.startswith("detection_head.") for k in stored)
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    other = build_model(
        ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", seed=1, checkpoint=str(path))
    )
    boxes = np.array([[10, 20, 60, 200]], np.float32)
    torch.testing.assert_close(other(tud_frames[0], boxes), small_model(tud_frames[0], boxes), atol=2e-3, rtol=2e-3)
    fresh = build_model(
        ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", seed=1, checkpoint="untrained")
    )
    for key, value in fresh.adapter.state_dict().items():  # omitted parts keep the model's own values
        if key.startswith("detection_head."):
            torch.testing.assert_close(other.adapter.state_dict()[key], value)
    # a file that claims to omit parts must still hold everything else
    del stored["embed_head.fc_embed.bias"]
    torch.save({**read_checkpoint(path), "state_dict": stored}, tmp_path / "short.pt")
    with pytest.raises(CheckpointError, match="missing keys: embed_head.fc_embed.bias"):
        load_adapter(tmp_path / "short.pt", small_model.adapter, "masa_mobilesam")


def test_embed_scale_from_the_checkpoint_gives_scaled_unit_embeddings(tmp_path, small_model, tud_frames):
    path = tmp_path / "scaled.pt"
    save_adapter(path, small_model.adapter, "masa_mobilesam", meta={"embed_scale": 1 / 0.07})
    scaled = build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", checkpoint=str(path)))
    boxes = np.array([[10, 20, 60, 200], [300, 100, 360, 300]], np.float32)
    out, raw = scaled(tud_frames[0], boxes), small_model(tud_frames[0], boxes)
    torch.testing.assert_close(out.norm(dim=1), torch.full((2,), 1 / 0.07))
    torch.testing.assert_close(out, torch.nn.functional.normalize(raw, dim=1) / 0.07, atol=1e-4, rtol=1e-4)
    save_adapter(path, small_model.adapter, "masa_mobilesam", meta={"embed_scale": -1})
    with pytest.raises(CheckpointError, match="embed_scale"):
        build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", checkpoint=str(path)))


def _write_payload(path: Path, state: dict, variant: str = "masa_mobilesam") -> None:
    torch.save({"format": "masa_ros/adapter", "version": 1, "variant": variant, "state_dict": state}, path)


def test_mismatched_checkpoint_names_missing_unexpected_and_shape_keys(tmp_path, small_model):
    state = dict(small_model.adapter.state_dict())
    del state["embed_head.fc_embed.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["embed_head.fc_embed.weight"] = torch.zeros(128, 1024)
    _write_payload(tmp_path / "bad.pt", state)
    with pytest.raises(CheckpointError) as err:
        load_adapter(tmp_path / "bad.pt", small_model.adapter, "masa_mobilesam")
    msg = str(err.value)
    assert "missing keys: embed_head.fc_embed.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "embed_head.fc_embed.weight: checkpoint (128, 1024) vs model (256, 1024)" in msg


def test_checkpoint_for_another_variant_is_refused(tmp_path, small_model):
    _write_payload(tmp_path / "r50.pt", dict(small_model.adapter.state_dict()), variant="masa_r50")
    with pytest.raises(CheckpointError, match="for variant 'masa_r50'"):
        load_adapter(tmp_path / "r50.pt", small_model.adapter, "masa_mobilesam")


def test_truncated_and_corrupt_checkpoints_give_clear_errors(tmp_path, small_model):
    good = tmp_path / "good.pt"
    save_adapter(good, small_model.adapter, "masa_mobilesam")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(CheckpointError):
        read_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "absent.pt")


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_needing_code_execution_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Payload()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="code execution"):
        read_checkpoint(path)
    assert "this must never run" not in capsys.readouterr().out


def test_backbone_refuses_a_checkpoint_that_is_not_mobile_sam(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a MobileSAM checkpoint"):
        TinyViTBackbone(256).load_mobile_sam(path)


def test_device_auto_is_cpu_here_and_fp16_only_on_cuda():
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert resolve_dtype(torch.device("cpu"), fp16=True) == torch.float32
    assert resolve_dtype(torch.device("cuda"), fp16=True) == torch.float16
    with pytest.raises(ValueError, match="allowed are auto, cpu, cuda"):
        resolve_device("tpu")


def test_backbone_is_frozen_and_stays_in_eval_mode(small_model):
    small_model.train()
    assert not small_model.backbone.training
    assert not any(p.requires_grad for p in small_model.backbone.parameters())
    small_model.eval()


def test_default_checkpoint_is_the_shipped_adapter_when_one_is_bundled(tmp_path, monkeypatch, small_model, tud_frames):
    import masa_core.assets as assets

    shipped = build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu"))
    assert bundled_weights("masa_mobilesam") is not None and shipped.embed_scale == pytest.approx(1 / 0.07)
    trained = build_model(
        ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", seed=3, checkpoint="untrained")
    )
    save_adapter(
        tmp_path / "a.pt",
        trained.adapter,
        "masa_mobilesam",
        {"embed_scale": 10.0},
        half=True,
        omit=("detection_head.",),
    )
    monkeypatch.setattr(assets, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(
        assets.BUNDLED,
        "masa_mobilesam",
        assets.BundledWeights("masa_mobilesam", "a.pt", assets.sha256_of(tmp_path / "a.pt")),
    )
    default = build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu"))
    assert default.embed_scale == 10.0
    boxes = np.array([[10, 20, 60, 200]], np.float32)
    expected = torch.nn.functional.normalize(trained(tud_frames[0], boxes), dim=1) * 10.0
    torch.testing.assert_close(default(tud_frames[0], boxes), expected, atol=2e-2, rtol=2e-3)
    untrained = build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", checkpoint="untrained"))
    assert untrained.embed_scale is None
    torch.testing.assert_close(untrained(tud_frames[0], boxes), small_model(tud_frames[0], boxes))
    (tmp_path / "a.pt").write_bytes(b"not the weights")  # a corrupt installation is refused
    with pytest.raises(AssetError, match="sha256"):
        build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu"))
    (tmp_path / "a.pt").unlink()
    with pytest.raises(AssetError, match="missing"):
        bundled_weights("masa_mobilesam")


def test_auto_variant_is_mobilesam_on_cuda_and_the_lite_mobilenetv2_on_the_cpu(monkeypatch):
    from masa_core.models.build import resolve_variant

    assert ModelConfig().variant == "auto"
    assert resolve_variant(ModelConfig(device="cpu")) == "masa_mnv2_lite"
    assert resolve_variant(ModelConfig(device="cpu", variant="masa_mobilesam")) == "masa_mobilesam"
    assert resolve_variant(ModelConfig(device="cpu"), needs_sam=True) == "masa_mobilesam"  # masks need SAM
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # only the device decision is faked
    assert resolve_variant(ModelConfig(device="auto")) == "masa_mobilesam"
    assert resolve_variant(ModelConfig(device="auto", variant="masa_mnv2_lite")) == "masa_mnv2_lite"
