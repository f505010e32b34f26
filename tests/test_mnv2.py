"""Variant ``masa_mnv2``: MASA's adapter on a frozen ImageNet MobileNetV2. Shapes of the backbone taps,
the pyramid and the embeddings (also at inputs that are multiples of 32 but not of 64), the frozen
ImageNet weights, checkpoints and the refusal of another variant's, real TUD-Campus frames through
the pipeline and ``masa-track``, and ``masa-train`` for one step with an adapter that loads back.
Small inputs throughout: CI has 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from masa_core import Pipeline, load_config
from masa_core.assets import AssetError
from masa_core.cli.track import main as track_main
from masa_core.cli.train import main as train_main
from masa_core.config import ConfigError
from masa_core.models.build import ModelConfig, build_model
from masa_core.models.checkpoint import CheckpointError, load_adapter, read_checkpoint, save_adapter
from masa_core.models.masa_model import MasaModel
from masa_core.models.mobilenetv2_backbone import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MobileNetV2Backbone,
    load_mobilenetv2_features,
)
from masa_core.models.simple_fpn import FPN
from masa_core.models.zoo import PREPROCESSING, identify
from masa_core.train.objective import AdapterObjective
from masa_core.train.trainer import Trainer, load_train_config
from tests.gt_tracking import track_tud_campus_with_gt
from tests.paths import REPO, TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO
from tests.train_data import tiny_config, write_images

torch.set_num_threads(1)
SIZE = 256
BOXES = np.array([[10, 20, 60, 200], [300, 100, 420, 470], [0, 0, 640, 480]], np.float32)


def mnv2_config(**kw: object) -> ModelConfig:
    return ModelConfig(**{"variant": "masa_mnv2", "input_size": SIZE, "device": "cpu", "checkpoint": "untrained", **kw})


@pytest.fixture(scope="module")
def mnv2() -> MasaModel:
    return build_model(mnv2_config())


# --- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [SIZE, 160])  # 160: a multiple of 32, not of 64
def test_backbone_taps_pyramid_and_embeddings_have_the_expected_shapes(size: int, tud_frames) -> None:
    model = build_model(mnv2_config(input_size=size))
    taps = model.backbone(torch.zeros(1, 3, size, size))
    assert [tuple(t.shape) for t in taps] == [
        (1, c, size // s, size // s) for c, s in zip((24, 32, 96, 320), (4, 8, 16, 32), strict=True)
    ]
    with torch.inference_mode():
        pyramid = model.adapter(taps)
    assert [tuple(p.shape) for p in pyramid] == [(1, 256, -(-size // s), -(-size // s)) for s in (4, 8, 16, 32, 64)]
    emb = model(tud_frames[0], BOXES)
    assert emb.shape == (3, 256) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])
    assert model(tud_frames[0], np.zeros((0, 4), np.float32)).shape == (0, 256)


def test_input_size_is_a_multiple_of_32_for_this_variant_only() -> None:
    mnv2_config(input_size=160).validate()
    with pytest.raises(ValueError, match=r"input_size = 176: must be 0 \(auto\) or a multiple of 32"):
        mnv2_config(input_size=176).validate()
    with pytest.raises(ValueError, match="multiple of 64"):
        ModelConfig(variant="masa_mobilesam", input_size=160).validate()  # its TinyViT still needs 64
    with pytest.raises(ValueError, match="multiple of 32"):
        MobileNetV2Backbone()(torch.zeros(1, 3, 80, 96))


def test_the_adapter_is_the_shared_fpn_deform_fusion_and_heads(mnv2) -> None:
    adapter = mnv2.adapter
    assert isinstance(adapter.neck, FPN) and adapter.neck.in_channels == [24, 32, 96, 320]
    assert all(m.bn is None for m in (*adapter.neck.lateral_convs, *adapter.neck.fpn_convs))
    assert len(adapter.fusion.dyhead_blocks) == 3 and all(b.fix_upsample for b in adapter.fusion.dyhead_blocks)
    assert set(dict(mnv2.named_children())) == {"backbone", "adapter"}


# --- backbone --------------------------------------------------------------------------------------


def test_backbone_holds_the_frozen_imagenet_weights_up_to_block_17(mnv2) -> None:
    reference = load_mobilenetv2_features()
    own = mnv2.backbone.state_dict()
    ref = {f"blocks.{k}": v for k, v in reference.state_dict().items() if int(k.split(".")[0]) <= 17}
    assert own.keys() == ref.keys()  # features[18] (1×1 conv to 1280 channels) is not kept
    for key, value in ref.items():
        torch.testing.assert_close(own[key], value, rtol=0, atol=0, msg=key)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mnv2.backbone(x)[-1], reference[:18](x))
    mnv2.train()
    assert not mnv2.backbone.training and not any(m.training for m in mnv2.backbone.modules())
    assert not any(p.requires_grad for p in mnv2.backbone.parameters())
    mnv2.eval()


def test_preprocessing_is_imagenet_normalisation(mnv2) -> None:
    pre = PREPROCESSING["masa_mnv2"]
    np.testing.assert_allclose(pre.pixel_mean, np.array(IMAGENET_MEAN) * 255, rtol=1e-6)
    np.testing.assert_allclose(pre.pixel_std, np.array(IMAGENET_STD) * 255, rtol=1e-6)
    torch.testing.assert_close(mnv2.pixel_mean.flatten(), torch.tensor(pre.pixel_mean))


def test_the_input_is_padded_to_a_multiple_of_32_not_to_the_square(mnv2, small_model, tud_frames) -> None:
    frame = tud_frames[0]  # 640 x 480 → 256 x 192 at SIZE 256
    image, scale = mnv2.preprocess(frame)
    assert mnv2.pad_multiple == 32 and scale == SIZE / 640 and image.shape == (1, 3, 192, SIZE)
    odd, _ = mnv2.preprocess(np.ascontiguousarray(frame[:300, :500]))  # resized to 256 x 154, padded to 160
    assert odd.shape == (1, 3, 160, SIZE) and (odd[:, :, 154:] == 0).all() and (odd[:, :, 153] != 0).any()
    square, _ = small_model.preprocess(frame)  # SAM's backbone keeps the S x S square
    assert small_model.pad_multiple is None and square.shape[-2:] == (small_model.input_size,) * 2
    mnv2.pad_multiple = None  # the same pixels, only less padding
    try:
        full, _ = mnv2.preprocess(frame)
    finally:
        mnv2.pad_multiple = 32
    assert full.shape == (1, 3, SIZE, SIZE)
    torch.testing.assert_close(full[:, :, :192], image)
    assert (full[:, :, 192:] == 0).all()


def test_backbone_weights_that_are_not_the_asset_are_refused(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"features.0.0.weight": torch.zeros(32, 3, 3, 3)}, path)
    with pytest.raises(AssetError, match="sha256"):
        build_model(mnv2_config(backbone_checkpoint=str(path)))


# --- checkpoints -------------------------------------------------------------------------------------


def test_checkpoint_round_trip_restores_identical_embeddings(tmp_path, mnv2, tud_frames) -> None:
    path = tmp_path / "adapter.pt"
    save_adapter(path, mnv2.adapter, "masa_mnv2", meta={"note": "test"})
    again = build_model(mnv2_config(seed=1, checkpoint=str(path)))
    torch.testing.assert_close(again(tud_frames[0], BOXES), mnv2(tud_frames[0], BOXES))
    fresh = build_model(mnv2_config(seed=1, checkpoint="untrained"))
    assert not torch.allclose(fresh(tud_frames[0], BOXES), mnv2(tud_frames[0], BOXES))
    assert identify(read_checkpoint(path)["state_dict"]) == "masa_mnv2"


def test_half_precision_tracking_only_checkpoint(tmp_path, mnv2, tud_frames) -> None:
    path = tmp_path / "tracking.pt"
    save_adapter(path, mnv2.adapter, "masa_mnv2", half=True, omit=("detection_head.",))
    stored = read_checkpoint(path)["state_dict"]
    assert not any(k.startswith("detection_head.") for k in stored)
    tracking = sum(v.numel() for k, v in mnv2.adapter.state_dict().items() if not k.startswith("detection_head."))
    assert sum(v.numel() for v in stored.values()) == tracking
    assert path.stat().st_size < 2 * tracking + 2**20  # fp16 tensors plus the container's overhead
    again = build_model(mnv2_config(seed=1, checkpoint=str(path)))
    torch.testing.assert_close(again(tud_frames[0], BOXES), mnv2(tud_frames[0], BOXES), atol=2e-3, rtol=2e-3)


def test_checkpoints_of_other_variants_are_refused(tmp_path, mnv2, small_model) -> None:
    mobilesam = tmp_path / "mobilesam.pt"
    save_adapter(mobilesam, small_model.adapter, "masa_mobilesam")
    with pytest.raises(CheckpointError, match="for variant 'masa_mobilesam', but the model is 'masa_mnv2'"):
        build_model(mnv2_config(checkpoint=str(mobilesam)))
    own = tmp_path / "mnv2.pt"
    save_adapter(own, mnv2.adapter, "masa_mnv2")
    with pytest.raises(CheckpointError, match="for variant 'masa_mnv2', but the model is 'masa_mobilesam'"):
        load_adapter(own, small_model.adapter, "masa_mobilesam")
    with pytest.raises(CheckpointError, match="masa_ros checkpoint for variant 'masa_mnv2'"):
        build_model(ModelConfig(variant="masa_r50", input_size=SIZE, device="cpu", checkpoint=str(own)))
    # relabelled, the MobileSAM adapter still does not fit: its keys and shapes are listed
    state = read_checkpoint(mobilesam)
    torch.save({**state, "variant": "masa_mnv2"}, tmp_path / "relabelled.pt")
    with pytest.raises(CheckpointError, match=r"(?s)unexpected keys: neck\.fpn1.*shape: neck\.lateral_convs\.0"):
        load_adapter(tmp_path / "relabelled.pt", mnv2.adapter, "masa_mnv2")


# --- end to end on TUD-Campus --------------------------------------------------------------------------


def test_pipeline_tracks_tud_campus_with_given_boxes(mnv2, tud_frames) -> None:
    config = load_config(overrides={"model": {"variant": "masa_mnv2", "input_size": SIZE, "device": "cpu"}})
    check = track_tud_campus_with_gt(Pipeline(config, model=mnv2), tud_frames[:5])
    assert all(r.timings["backbone"] > 0 and r.timings["embed"] > 0 for r in check.results)
    assert check.total >= 25
    assert check.consistent / check.total >= 0.9  # untrained adapter, but the same people in next-door frames


def test_pipeline_runs_the_adapters_own_detection_head(mnv2, tud_frames) -> None:
    config = load_config(overrides={"model": {"variant": "masa_mnv2"}, "detector": {"kind": "masa_head"}})
    pipe = Pipeline(config, model=mnv2)
    results = [pipe.process(f) for f in tud_frames[:2]]
    h, w = tud_frames[0].shape[:2]
    for t in (t for r in results for t in r.tracks):
        assert 0 <= t.box[0] < t.box[2] <= w and 0 <= t.box[1] < t.box[3] <= h


def test_masks_need_a_sam_backbone(mnv2) -> None:
    config = load_config(overrides={"model": {"variant": "masa_mnv2"}, "masks": {"enabled": True}})
    with pytest.raises(ConfigError, match="masa_mnv2"):
        Pipeline(config, model=mnv2)


def test_masa_track_runs_the_variant_at_a_multiple_of_32(tmp_path) -> None:
    out = tmp_path / "results.txt"
    argv = [str(TUD_CAMPUS_VIDEO), "--variant", "masa_mnv2", "--input-size", "224", "--device", "cpu"]
    argv += ["--detections", str(TUD_CAMPUS_GT), "--max-frames", "3", "--output", str(out), "--no-video", "--quiet"]
    assert track_main(argv) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert {int(r[0]) for r in rows} == {1, 2, 3} and len(rows) > 3


# --- training ----------------------------------------------------------------------------------------


def tiny_train_config(images: Path, out: Path) -> dict:
    """tests/test_training.py's tiny run for this variant, 3 epochs."""
    model = {"variant": "masa_mnv2", "device": "cpu", "seed": 0, "checkpoint": "untrained"}
    return tiny_config(images, out, model=model, epochs=3)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("train") / "images", count=1)


def test_masa_train_runs_a_step_and_exports_an_adapter_that_loads(images, tmp_path, tud_frames) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_train_config(images, tmp_path / "run")))
    assert train_main([str(config), "--set", "epochs=1"]) == 0  # --set overrides, as for the other configs
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["variant"] == "masa_mnv2" and state["epoch"] == 1 and np.isfinite(state["history"][0]["loss"])
    exported = read_checkpoint(tmp_path / "run" / "adapter.pt")
    assert exported["variant"] == "masa_mnv2" and exported["meta"]["iterations"] == 1
    model = build_model(mnv2_config(checkpoint=str(tmp_path / "run" / "adapter.pt")))
    assert model.embed_scale == pytest.approx(1 / 0.07)
    trained = model(tud_frames[0], BOXES)
    torch.testing.assert_close(trained.norm(dim=1), torch.full((3,), 1 / 0.07))
    key = "embed_head.fc_embed.weight"
    untrained = build_model(mnv2_config(checkpoint="untrained"))
    assert not torch.allclose(model.adapter.state_dict()[key], untrained.adapter.state_dict()[key])


def test_the_objective_takes_the_input_size_from_the_pyramid_not_the_taps(images, tmp_path, monkeypatch) -> None:
    """MobileNetV2's first tap is at stride 4 (TinyViT's at 16): proposals are clipped to the real input."""
    trainer = Trainer(load_train_config(tiny_train_config(images, tmp_path / "run")))
    head = trainer.model.adapter.detection_head.rpn_head
    seen = []
    original = head.predict_by_feat

    def spy(cls_scores, bbox_preds, image_hw, *args, **kwargs):
        seen.append(tuple(image_hw))
        return original(cls_scores, bbox_preds, image_hw, *args, **kwargs)

    monkeypatch.setattr(head, "predict_by_feat", spy)
    assert isinstance(trainer.objective, AdapterObjective)
    terms = trainer.step(list(trainer.data.pair(0, 0)), 0)
    assert np.isfinite(terms["loss"])
    assert seen and set(seen) == {(64, 64)}


def test_train_mnv2_yaml_is_train_cpu_yaml_with_only_the_variant_and_out_dir_changed() -> None:
    cpu = yaml.safe_load((REPO / "config" / "train_cpu.yaml").read_text())
    mnv2 = yaml.safe_load((REPO / "config" / "train_mnv2.yaml").read_text())
    assert mnv2["model"].pop("variant") == "masa_mnv2" and cpu["model"].pop("variant") == "masa_mobilesam"
    assert mnv2.pop("out_dir") == "runs/train_mnv2" and cpu.pop("out_dir") == "runs/train_cpu"
    assert mnv2 == cpu
    load_train_config(yaml.safe_load((REPO / "config" / "train_mnv2.yaml").read_text()))  # valid as shipped


def test_the_lite_variant_is_narrower_shallower_and_its_own_checkpoint_kind(tud_frames, tmp_path: Path) -> None:
    lite = build_model(mnv2_config(variant="masa_mnv2_lite"))
    assert lite.variant == "masa_mnv2_lite" and len(lite.adapter.fusion.dyhead_blocks) == 1
    with torch.inference_mode():
        pyramid = lite.adapter(lite.backbone(torch.zeros(1, 3, SIZE, SIZE)))
    assert [p.shape[1] for p in pyramid] == [64] * 5
    emb = lite(tud_frames[0], BOXES)
    assert emb.shape == (3, 256) and torch.isfinite(emb).all()
    path = tmp_path / "lite.pt"
    save_adapter(path, lite.adapter, "masa_mnv2_lite")
    assert identify(read_checkpoint(path)["state_dict"]) == "masa_mnv2_lite"
    reloaded = build_model(mnv2_config(variant="masa_mnv2_lite", checkpoint=str(path), seed=1))
    torch.testing.assert_close(reloaded(tud_frames[0], BOXES), emb)
    with pytest.raises(CheckpointError, match="masa_mnv2_lite"):
        build_model(mnv2_config(checkpoint=str(path)))  # a lite adapter does not load into masa_mnv2


def test_the_lite_variant_ships_a_trained_adapter(tud_frames) -> None:
    shipped = build_model(mnv2_config(variant="masa_mnv2_lite", checkpoint=""))
    assert shipped.embed_scale == pytest.approx(1 / 0.07)
    emb = shipped(tud_frames[0], BOXES)
    torch.testing.assert_close(emb.norm(dim=1), torch.full((3,), 1 / 0.07))
    seeded = build_model(mnv2_config(variant="masa_mnv2_lite"))
    assert not torch.allclose(
        torch.nn.functional.normalize(emb, dim=1), torch.nn.functional.normalize(seeded(tud_frames[0], BOXES), dim=1)
    )


def test_the_shipped_lite_adapter_keeps_identities_on_tud_campus(tud_frames) -> None:
    """End to end on a real clip: the CPU config's variant with its shipped adapter and given boxes."""
    config = load_config(overrides={"model": {"variant": "masa_mnv2_lite", "input_size": SIZE, "device": "cpu"}})
    check = track_tud_campus_with_gt(Pipeline(config), tud_frames)
    assert [len(r.tracks) for r in check.results] == check.boxes_given
    assert check.consistent == check.total  # the seeded adapter switches 2 of these 59 identities
    assert len(set(check.first_id.values())) == len(check.first_id)  # one track per person


def test_the_shipped_adapter_is_the_default(mnv2, tud_frames) -> None:
    shipped = build_model(mnv2_config(checkpoint=""))
    assert shipped.embed_scale == pytest.approx(1 / 0.07)  # a trained adapter: unit embeddings x 1/tau
    emb = shipped(tud_frames[0], BOXES)
    torch.testing.assert_close(emb.norm(dim=1), torch.full((3,), 1 / 0.07))
    assert not torch.allclose(
        torch.nn.functional.normalize(emb, dim=1), torch.nn.functional.normalize(mnv2(tud_frames[0], BOXES), dim=1)
    )
    auto = build_model(mnv2_config(variant="auto", checkpoint=""))  # the CPU default is the lite one
    assert (auto.variant, auto.embed_scale) == ("masa_mnv2_lite", pytest.approx(1 / 0.07))
