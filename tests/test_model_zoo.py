"""The official model zoo: key-for-key layouts, loading official / SAM / own checkpoints, runs on
real frames with random weights in the official layout, and the errors for bad checkpoints.

The expected layouts are tests/fixtures/official_keys/*.json, derived from the official module
definitions by tests/fixtures/official_keys/derive.py (see there). MASA-SAM-H's ViT-H (632 M
parameters) is only built on the meta device here: shapes without memory or time.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from masa_core.cli.track import main, overrides_from, parse_args
from masa_core.config import PipelineConfig, config_from_dict, load_config
from masa_core.models.build import ModelConfig, build_model
from masa_core.models.checkpoint import CheckpointError, save_adapter
from masa_core.models.masa_model import MasaModel
from masa_core.models.zoo import build_masa_r50, build_masa_sam, identify
from masa_core.pipeline import Pipeline
from tests.paths import REPO, TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO

torch.set_num_threads(1)
FIXTURES = Path(__file__).parent / "fixtures" / "official_keys"
SIZE = 256
BOXES = np.array([[10, 20, 60, 200], [300, 100, 420, 470], [0, 0, 640, 480]], np.float32)


def official_keys(variant: str) -> dict[str, tuple[int, ...]]:
    data = json.loads((FIXTURES / f"{variant}.json").read_text())
    assert data["variant"] == variant
    return {k: tuple(v) for k, v in data["keys"].items()}


def layout_of(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def assert_same_layout(own: dict[str, tuple[int, ...]], ref: dict[str, tuple[int, ...]]) -> None:
    missing = [k for k in ref if k not in own]
    extra = [k for k in own if k not in ref]
    shapes = [f"{k}: {own[k]} vs {ref[k]}" for k in ref if k in own and own[k] != ref[k]]
    assert not (missing or extra or shapes), f"missing {missing[:5]}, extra {extra[:5]}, shapes {shapes[:5]}"


def random_official_state(variant: str, seed: int) -> dict[str, torch.Tensor]:
    """Random tensors for every official key, scaled so that activations stay finite."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_keys(variant).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) >= 2:
            fan_in = math.prod(shape[1:]) if "pos_embed" not in key else shape[-1]
            state[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif key.endswith("weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


def save_official(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """The on-disk form of mmdet / mmengine checkpoints."""
    torch.save({"meta": {"mmdet_version": "3.3.0", "epoch": 12}, "state_dict": state}, path)
    return path


@pytest.fixture(scope="module")
def r50_state() -> dict[str, torch.Tensor]:
    return random_official_state("masa_r50", seed=1)


@pytest.fixture(scope="module")
def sam_b_state() -> dict[str, torch.Tensor]:
    return random_official_state("masa_sam_b", seed=2)


@pytest.fixture(scope="module")
def r50_file(tmp_path_factory, r50_state) -> Path:
    return save_official(tmp_path_factory.mktemp("zoo") / "masa_r50.pth", r50_state)


@pytest.fixture(scope="module")
def sam_b_files(tmp_path_factory, sam_b_state) -> tuple[Path, Path]:
    """(MASA-SAM-B adapter checkpoint without SAM, SAM ViT-B checkpoint in segment-anything's layout)."""
    d = tmp_path_factory.mktemp("zoo")
    masa = {k: v for k, v in sam_b_state.items() if not k.startswith("detector.")}
    sam = {}
    for k, v in sam_b_state.items():
        if k.startswith("detector."):
            k = k[len("detector.") :]
            sam["image_encoder." + k[len("backbone.") :] if k.startswith("backbone.") else k] = v
    torch.save(sam, d / "sam_vit_b_01ec64.pth")
    return save_official(d / "masa_sam_b.pth", masa), d / "sam_vit_b_01ec64.pth"


def cfg(variant: str, **kw) -> ModelConfig:
    return ModelConfig(variant=variant, input_size=SIZE, device="cpu", **kw)


# --- layouts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["masa_r50", "masa_sam_b"])
def test_state_dict_equals_the_official_layout(variant: str) -> None:
    model = build_masa_r50(SIZE) if variant == "masa_r50" else build_masa_sam(variant, SIZE)
    assert_same_layout(layout_of(model), official_keys(variant))


def test_sam_h_layout_on_the_meta_device() -> None:
    with torch.device("meta"):
        model = build_masa_sam("masa_sam_h", SIZE)
    ref = official_keys("masa_sam_h")
    assert_same_layout(layout_of(model), ref)
    assert ref["detector.backbone.patch_embed.proj.weight"] == (1280, 3, 16, 16)
    assert ref["masa_adapter.0.lateral_convs.0.conv.weight"] == (256, 1280, 1, 1)


def test_layouts_have_the_known_sizes() -> None:
    counts = {v: sum(math.prod(s) for s in official_keys(v).values()) for v in ("masa_r50", "masa_sam_b")}
    r50_backbone = sum(math.prod(s) for k, s in official_keys("masa_r50").items() if k.startswith("backbone."))
    bn_buffers = sum(
        math.prod(s)
        for k, s in official_keys("masa_r50").items()
        if k.startswith("backbone.") and ("running" in k or "batches" in k)
    )
    assert r50_backbone - bn_buffers == 23_508_032  # torchvision ResNet-50 without its classifier
    vit_b = sum(math.prod(s) for k, s in official_keys("masa_sam_b").items() if k.startswith("detector."))
    gaussian = official_keys("masa_sam_b")["detector.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    assert vit_b - math.prod(gaussian) == 93_735_472  # SAM ViT-B's published parameter count (+ one buffer)
    assert counts["masa_sam_b"] > vit_b


def test_runtime_views_hold_no_weights_of_their_own() -> None:
    model = build_masa_sam("masa_sam_b", SIZE)
    assert "adapter" not in dict(model.named_children()) and "backbone" not in dict(model.named_children())
    assert model.backbone.encoder is model.detector.backbone
    assert model.adapter.embed_head is model.track_head.embed_head
    assert model.adapter.detection_head.rpn_head is model.rpn_head


# --- loading and running -------------------------------------------------------------------------


def test_masa_r50_loads_the_official_form_and_tracks_a_real_frame(r50_file, r50_state, tud_frames) -> None:
    model = build_model(cfg("masa_r50", checkpoint=str(r50_file)))
    for key in ("backbone.layer3.2.conv2.weight", "masa_adapter.0.fpn_convs.3.bn.running_var", "rpn_head.rpn_reg.bias"):
        torch.testing.assert_close(model.state_dict()[key], r50_state[key])
    emb = model(tud_frames[0], BOXES)
    assert emb.shape == (3, 256) and torch.isfinite(emb).all()
    image, scale = model.preprocess(tud_frames[0])
    with torch.inference_mode():  # the same embeddings through the official tree, by hand
        pyramid = model.masa_adapter(model.backbone(image))
        by_hand = model.track_head(list(pyramid), torch.from_numpy(BOXES) * scale)
    torch.testing.assert_close(emb, by_hand)
    assert [p.shape[-1] for p in pyramid] == [SIZE // s for s in (4, 8, 16, 32, 64)]


def test_masa_sam_b_loads_masa_plus_sam_checkpoints_and_tracks_real_frames(sam_b_files, sam_b_state, tud_frames):
    masa, sam = sam_b_files
    model = build_model(cfg("masa_sam_b", checkpoint=str(masa), backbone_checkpoint=str(sam)))
    for key in ("detector.backbone.blocks.11.attn.rel_pos_h", "detector.mask_decoder.iou_token.weight"):
        torch.testing.assert_close(model.state_dict()[key], sam_b_state[key])
    config = config_from_dict({"detector": {"kind": "masa_head"}}, PipelineConfig())
    pipe = Pipeline(config, model=model)
    results = [pipe.process(f) for f in tud_frames[:2]]
    assert all(r.timings["backbone"] > 0 for r in results)
    emb = model(tud_frames[0], BOXES)
    assert emb.shape == (3, 256) and torch.isfinite(emb).all()


def test_masa_r50_runs_in_the_pipeline_with_its_own_boxes(r50_file, tud_frames) -> None:
    model = build_model(cfg("masa_r50", checkpoint=str(r50_file)))
    config = config_from_dict({"detector": {"kind": "masa_head", "score_thr": 0.0}}, PipelineConfig())
    pipe = Pipeline(config, model=model)
    first, second = (pipe.process(f) for f in tud_frames[:2])
    assert len(first.tracks) > 0  # random heads still give boxes at score > 0
    h, w = tud_frames[0].shape[:2]
    for t in (*first.tracks, *second.tracks):
        assert 0 <= t.box[0] < t.box[2] <= w and 0 <= t.box[1] < t.box[3] <= h
    assert len({t.id for t in first.tracks}) == len(first.tracks)


def test_own_checkpoint_round_trip(tmp_path, r50_file, tud_frames) -> None:
    model = build_model(cfg("masa_r50", checkpoint=str(r50_file)))
    save_adapter(tmp_path / "own.pt", model, "masa_r50")
    again = build_model(cfg("masa_r50", checkpoint=str(tmp_path / "own.pt"), seed=5))
    torch.testing.assert_close(again(tud_frames[0], BOXES), model(tud_frames[0], BOXES))


# --- bad input -----------------------------------------------------------------------------------


def test_checkpoint_of_another_variant_names_what_it_looks_like(r50_file, sam_b_files) -> None:
    with pytest.raises(CheckpointError, match="looks like a MASA-R50 checkpoint"):
        build_model(cfg("masa_sam_b", checkpoint=str(r50_file)))
    masa_b, sam_b = sam_b_files
    with pytest.raises(CheckpointError, match="looks like a MASA-SAM-B checkpoint"):
        build_model(cfg("masa_r50", checkpoint=str(masa_b)))
    with pytest.raises(
        CheckpointError, match="looks like an official SAM ViT-B checkpoint.*needs an official SAM ViT-H"
    ):
        build_model(cfg("masa_sam_h", backbone_checkpoint=str(sam_b)))
    with pytest.raises(CheckpointError, match="give it as model.backbone_checkpoint"):
        build_model(cfg("masa_sam_b", checkpoint=str(sam_b)))


def test_missing_sam_weights_and_missing_keys_are_listed(tmp_path, sam_b_files, r50_state) -> None:
    masa_b, _ = sam_b_files
    with pytest.raises(CheckpointError, match=r"(?s)missing keys: detector\.backbone\..*backbone_checkpoint"):
        build_model(cfg("masa_sam_b", checkpoint=str(masa_b)))
    state = dict(r50_state)
    del state["track_head.embed_head.fc_embed.bias"]
    state["roi_head.bbox_head.fc_cls.weight"] = torch.zeros(81, 1024)
    with pytest.raises(CheckpointError) as err:
        build_model(cfg("masa_r50", checkpoint=str(save_official(tmp_path / "bad.pth", state))))
    assert "missing keys: track_head.embed_head.fc_embed.bias" in str(err.value)
    assert "roi_head.bbox_head.fc_cls.weight: checkpoint (81, 1024) vs model (2, 1024)" in str(err.value)
    loose = build_model(cfg("masa_r50", checkpoint=str(tmp_path / "bad.pth"), strict=False))
    torch.testing.assert_close(loose.state_dict()["rpn_head.rpn_cls.bias"], r50_state["rpn_head.rpn_cls.bias"])


def test_truncated_and_code_executing_checkpoints_are_refused(tmp_path, r50_file) -> None:
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(r50_file.read_bytes()[: r50_file.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        build_model(cfg("masa_r50", checkpoint=str(truncated)))
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": _Payload()}, evil, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="code execution"):
        build_model(cfg("masa_r50", checkpoint=str(evil)))


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_identify_recognises_the_layouts() -> None:
    def fake(variant: str) -> dict[str, torch.Tensor]:
        return {k: torch.empty(s, device="meta") for k, s in official_keys(variant).items()}

    assert identify(fake("masa_r50")) == "masa_r50"
    assert identify(fake("masa_sam_b")) == "masa_sam_b"
    assert identify(fake("masa_sam_h")) == "masa_sam_h"
    assert identify({"image_encoder.patch_embed.proj.weight": torch.empty(1280, 3, 16, 16)}) == "sam_vit_h"
    assert identify({"backbone.patch_embed.proj.weight": torch.empty(768, 3, 16, 16)}) == "sam_vit_b"
    assert identify({"something.else": torch.empty(1)}) is None


def test_r50_backbone_is_caffe_style_and_frozen() -> None:
    model = build_masa_r50(SIZE)
    first = model.backbone.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    model.train()
    assert not model.backbone.training and not model.backbone.bn1.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    taps = model.backbone(torch.zeros(1, 3, SIZE, SIZE))
    assert [t.shape[1:] for t in taps] == [
        (c, SIZE // s, SIZE // s) for c, s in zip((256, 512, 1024, 2048), (4, 8, 16, 32), strict=True)
    ]


def test_masa_track_runs_masa_r50_from_an_official_checkpoint(tmp_path, r50_file, capsys) -> None:
    out = tmp_path / "results.txt"
    argv = [str(TUD_CAMPUS_VIDEO), "--variant", "masa_r50", "--checkpoint", str(r50_file), "--input-size", "256"]
    argv += ["--detections", str(TUD_CAMPUS_GT), "--max-frames", "3", "--output", str(out), "--no-video", "--quiet"]
    assert main(argv) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert {int(r[0]) for r in rows} == {1, 2, 3} and len(rows) > 3
    wrong = main([argv[0], "--variant", "masa_sam_b", *argv[3:]])
    assert wrong == 2 and "looks like a MASA-R50 checkpoint" in capsys.readouterr().err


def test_cli_selects_variant_and_checkpoints() -> None:
    args = parse_args(["in.mp4", "--variant", "masa_r50", "--checkpoint", "masa_r50.pth"])
    assert overrides_from(args)["model"] == {"variant": "masa_r50", "checkpoint": "masa_r50.pth"}
    args = parse_args(["in.mp4", "--variant", "masa_sam_b", "--backbone-checkpoint", "sam_vit_b_01ec64.pth"])
    assert overrides_from(args)["model"] == {"variant": "masa_sam_b", "backbone_checkpoint": "sam_vit_b_01ec64.pth"}


def test_model_is_a_masa_model() -> None:
    assert isinstance(build_masa_r50(SIZE), MasaModel)


# --- open-vocabulary tracking: Grounding-DINO boxes, MASA-R50 association ----------------------


def test_grounding_dino_with_masa_r50_tracks_prompted_classes(tmp_path, r50_file, tud_frames) -> None:
    pytest.importorskip("transformers")
    from tests.gdino_tiny import write_tiny_grounding_dino

    gdino = write_tiny_grounding_dino(tmp_path / "gdino")
    config = load_config(
        REPO / "config" / "masa_r50_gdino.yaml",
        {
            "model": {"checkpoint": str(r50_file), "input_size": SIZE, "device": "cpu"},
            "detector": {"weights": str(gdino), "text_prompt": "person . car .", "score_thr": 0.0},
        },
    )
    pipe = Pipeline(config)
    assert pipe.model.variant == "masa_r50"
    results = [pipe.process(f) for f in tud_frames[:2]]
    tracks = [t for r in results for t in r.tracks]
    assert tracks, "the random tiny model still scores every query above 0"
    assert {t.label_name for t in tracks} <= {"person", "car"}
    assert pipe.detector.class_names == ("person", "car")
    assert all(r.timings["detector"] > 0 and r.timings["embed"] > 0 for r in results)


def test_r50_deform_fusion_reads_the_coarser_level_like_the_official_code() -> None:
    """fix_upsample=False (MASA-R50): the coarser map is convolved at its own size with the offset and
    mask buffers read as mmcv's kernel reads them (leading planes), then upsampled."""
    from torchvision.ops import deform_conv2d

    from masa_core.models.deform_fusion import DeformFusionBlock

    assert all(not b.fix_upsample for b in build_masa_r50(SIZE).adapter.fusion.dyhead_blocks)
    torch.manual_seed(0)
    block = DeformFusionBlock(32, 32, fix_upsample=False).eval()
    torch.nn.init.normal_(block.spatial_conv_offset.weight, 0, 0.1)
    torch.nn.init.normal_(block.spatial_conv_offset.bias, 0, 0.5)
    x0, x1 = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 4, 4)
    with torch.no_grad():
        out = block([x0, x1])[0]
        om = block.spatial_conv_offset(x0)
        off, msk = om[:, :54], om[:, 54:].sigmoid()

        def conv(module, x, o, m):
            return module.norm(deform_conv2d(x, o, module.conv.weight, padding=1, mask=m))

        mid = conv(block.spatial_conv_mid, x0, off[:, :18], msk[:, :9])
        o_high = off[:, 36:54].reshape(1, -1)[:, : 18 * 16].reshape(1, 18, 4, 4)
        m_high = msk[:, 18:27].reshape(1, -1)[:, : 9 * 16].reshape(1, 9, 4, 4)
        high = torch.nn.functional.interpolate(
            conv(block.spatial_conv_high, x1, o_high, m_high), size=(8, 8), mode="bilinear", align_corners=True
        )
        torch.testing.assert_close(out, (mid + high) / 2, atol=1e-4, rtol=1e-4)
        block.fix_upsample = True
        assert not torch.allclose(block([x0, x1])[0], out, atol=1e-3)
