"""Builders for the model variants, one plain function each, and the config that picks them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from masa_core.assets import asset_path, bundled_weights
from masa_core.device import resolve_device, resolve_dtype
from masa_core.models.backends import OPENVINO, accelerate, resolve_backend
from masa_core.models.checkpoint import CheckpointError, load_adapter
from masa_core.models.deform_fusion import DeformFusion
from masa_core.models.masa_model import MasaAdapter, MasaModel
from masa_core.models.mobilenetv2_backbone import MobileNetV2Backbone
from masa_core.models.quantize import Calibration
from masa_core.models.simple_fpn import FPN
from masa_core.models.tinyvit_backbone import TinyViTBackbone
from masa_core.models.zoo import OFFICIAL_VARIANTS, PREPROCESSING, build_masa_r50, build_masa_sam, load_zoo_weights


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs, with which weights, where.

    variant: the backbone + adapter pairing (see :data:`VARIANTS`; ``auto`` = :data:`CUDA_VARIANT` on
    a CUDA device or with masks, :data:`CPU_VARIANT` otherwise; ``masa_r50``, ``masa_sam_b``,
    ``masa_sam_h`` are the official model zoo, ``masa_mobilesam``, ``masa_mnv2`` and ``masa_mnv2_lite`` ours, see
    docs/model_zoo.md).
    backbone_checkpoint: official backbone weights: MobileSAM's (empty → the fetched asset) for
    ``masa_mobilesam``, the ImageNet MobileNetV2 asset's file (empty → the fetched asset) for
    ``masa_mnv2``, SAM's ``sam_vit_b_01ec64.pth`` / ``sam_vit_h_4b8939.pth`` for MASA-SAM-B / H
    (empty → the SAM weights come from ``checkpoint``, or random without it); unused by ``masa_r50``.
    checkpoint: ``masa_mobilesam`` / ``masa_mnv2``: adapter weights written by masa_core; official variants: the
    released MASA checkpoint or our own save of that variant. Empty → the adapter this project
    trained and ships for the variant (:data:`masa_core.assets.BUNDLED`), or untrained weights from
    ``seed`` where none is shipped; ``untrained`` → untrained weights from ``seed``.
    strict: official variants: every model key must come from the given files, shapes equal.
    input_size: side of the square model input (longest image side is resized to it), multiple of 64
    (of 32 for the MobileNetV2 variants, see :data:`INPUT_MULTIPLE`); 0 = the variant's own
    (:data:`AUTO_INPUT_SIZE`: 512 for the MobileNetV2 variants, 1024 for the others).
    device: auto | cpu | cuda | cuda:N.  fp16: half precision, applied on CUDA only.
    backend: what runs the backbone and adapter (:mod:`masa_core.models.backends`): auto (OpenVINO on
    the CPU, TensorRT on CUDA where installed, else torch) | torch | openvino | tensorrt.
    cache_dir: where converted models are kept ('' = ``~/.cache/masa_core``).
    int8: quantize the adapter and track head to INT8 (OpenVINO on the CPU, NNCF), calibrated on the
    images of ``calibration_dir`` (at least 4, frames like the camera's); once per model and
    calibration set, then cached (:mod:`masa_core.models.quantize`). Off by default.
    """

    variant: str = "auto"
    backbone_checkpoint: str = ""
    checkpoint: str = ""
    input_size: int = 0
    device: str = "auto"
    fp16: bool = True
    seed: int = 0
    strict: bool = True
    backend: str = "auto"
    cache_dir: str = ""
    int8: bool = False
    calibration_dir: str = ""

    def validate(self) -> None:
        if self.variant != AUTO and self.variant not in VARIANTS:
            raise ValueError(f"model.variant = {self.variant!r}: allowed are {AUTO}, {', '.join(VARIANTS)}")
        multiple = INPUT_MULTIPLE.get(self.variant, 64)
        if self.input_size != 0 and (not (64 <= self.input_size <= 2048) or self.input_size % multiple):
            raise ValueError(
                f"model.input_size = {self.input_size}: must be 0 (auto) or a multiple of {multiple} in [64, 2048]"
                + (f" for variant {self.variant}" if multiple != 64 else "")
            )
        try:
            backend = resolve_backend(self.backend, resolve_device(self.device))
        except ValueError as e:
            raise ValueError(f"model.{e}") from e
        if self.int8 and backend != OPENVINO:
            raise ValueError(f"model.int8 runs on the openvino backend (the CPU); here the backend is {backend}")
        if self.int8 and not self.calibration_dir:
            raise ValueError("model.int8 needs model.calibration_dir: a folder of images like the camera's")


def build_masa_mobilesam(cfg: ModelConfig) -> MasaModel:
    """MASA adapter on MobileSAM's frozen TinyViT (official ``mobile_sam.pt``)."""
    backbone = TinyViTBackbone(cfg.input_size)
    backbone.load_mobile_sam(cfg.backbone_checkpoint or asset_path("mobile_sam"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        adapter = MasaAdapter(backbone.out_channels)
    pre = PREPROCESSING["masa_mobilesam"]
    return MasaModel(
        "masa_mobilesam", backbone, adapter, cfg.input_size, pixel_mean=pre.pixel_mean, pixel_std=pre.pixel_std
    )


# (pyramid channels, deformable fusion blocks) of the MobileNetV2 variants
MNV2_ADAPTERS: dict[str, tuple[int, int]] = {"masa_mnv2": (256, 3), "masa_mnv2_lite": (64, 1)}


def build_masa_mnv2(cfg: ModelConfig) -> MasaModel:
    """MASA adapter on a frozen ImageNet MobileNetV2 (the ``mobilenetv2_imagenet`` asset): its
    stride 4 … 32 maps → FPN (5 levels, like MASA-R50's but without BatchNorm) → DeformFusion →
    RoIAlign → QuasiDense track head, plus the RPN + Shared2FC detection head. ``masa_mnv2``: 256
    channels and 3 fusion blocks (MASA's adapter); ``masa_mnv2_lite``: 64 channels and 1 block,
    because on a CPU the adapter, not the backbone, takes the time (docs/model_zoo.md)."""
    channels, blocks = MNV2_ADAPTERS[cfg.variant]
    backbone = MobileNetV2Backbone(cfg.backbone_checkpoint or None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        # No norm in the FPN: its BatchNorms would learn their statistics from the 2-4 views of a
        # CPU training step; conv + bias as in mmdet's FPN default and in MobileSAM's SimpleFPN.
        neck = FPN(backbone.out_channels, channels, num_outs=5)
        fusion = DeformFusion(channels, channels, num_blocks=blocks)
        adapter = MasaAdapter(backbone.out_channels, channels=channels, neck=neck, fusion=fusion)
    pre = PREPROCESSING["masa_mnv2"]
    return MasaModel(
        cfg.variant,
        backbone,
        adapter,
        cfg.input_size,
        pixel_mean=pre.pixel_mean,
        pixel_std=pre.pixel_std,
        pad_multiple=INPUT_MULTIPLE[cfg.variant],
    )


def build_official(cfg: ModelConfig) -> MasaModel:
    """An official zoo variant (official key layout), its weights from ``checkpoint`` and, for
    MASA-SAM, ``backbone_checkpoint``; untrained parts drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = (
            build_masa_r50(cfg.input_size) if cfg.variant == "masa_r50" else build_masa_sam(cfg.variant, cfg.input_size)
        )
    load_zoo_weights(model, cfg.checkpoint, cfg.backbone_checkpoint, strict=cfg.strict)
    return model


VARIANTS: dict[str, Callable[[ModelConfig], MasaModel]] = {
    "masa_mobilesam": build_masa_mobilesam,
    **dict.fromkeys(MNV2_ADAPTERS, build_masa_mnv2),
    **dict.fromkeys(OFFICIAL_VARIANTS, build_official),
}

# Variants whose model input may be any multiple of 32 (a CNN with strides up to 32); others need 64.
INPUT_MULTIPLE: dict[str, int] = dict.fromkeys(MNV2_ADAPTERS, 32)


UNTRAINED = "untrained"

# ``variant: auto``: MobileSAM's adapter where a GPU runs it or masks are wanted, the lite MobileNetV2
# adapter on the CPU otherwise: the fastest of ours there (docs/model_zoo.md, docs/benchmarks.md).
AUTO, CUDA_VARIANT, CPU_VARIANT = "auto", "masa_mobilesam", "masa_mnv2_lite"

# ``input_size: 0``: the SAM backbones' 1024 (MASA's official size too), 512 for the MobileNetV2 variants.
AUTO_INPUT_SIZE: dict[str, int] = dict.fromkeys(MNV2_ADAPTERS, 512)


def resolve_variant(cfg: ModelConfig, needs_sam: bool = False) -> str:
    """The concrete variant ``cfg`` runs: ``auto`` picks by the device it resolves to, and takes the
    SAM-backbone variant wherever ``needs_sam`` (masks are decoded from SAM's image embedding)."""
    if cfg.variant != AUTO:
        return cfg.variant
    return CUDA_VARIANT if needs_sam or resolve_device(cfg.device).type == "cuda" else CPU_VARIANT


def embed_scale(meta: dict, source: str) -> float | None:
    """``meta["embed_scale"]`` of an adapter checkpoint (1/τ of its contrastive loss), checked."""
    value = meta.get("embed_scale")
    if value is None:
        return None
    if not isinstance(value, int | float) or not 0 < float(value) < 1e4:
        raise CheckpointError(f"{source}: meta embed_scale = {value!r} must be a positive number")
    return float(value)


def adapter_checkpoint(cfg: ModelConfig) -> str:
    """The file ``cfg.checkpoint`` stands for: '' → the shipped adapter of the variant (or '' if
    none is shipped), ``untrained`` → '' (seeded random adapter), anything else → itself."""
    if cfg.checkpoint == UNTRAINED:
        return ""
    if cfg.checkpoint:
        return cfg.checkpoint
    shipped = bundled_weights(cfg.variant)
    return str(shipped) if shipped else ""


def build_model(cfg: ModelConfig, needs_sam: bool = False) -> MasaModel:
    """The configured variant with its weights, on its device and precision, in eval mode
    (``needs_sam``: see :func:`resolve_variant`)."""
    cfg.validate()
    cfg = dataclasses.replace(cfg, variant=resolve_variant(cfg, needs_sam))
    cfg = dataclasses.replace(cfg, checkpoint=adapter_checkpoint(cfg), input_size=resolve_input_size(cfg))
    model = VARIANTS[cfg.variant](cfg)
    if cfg.checkpoint and cfg.variant not in OFFICIAL_VARIANTS:
        meta = load_adapter(cfg.checkpoint, model.adapter, cfg.variant)
        model.embed_scale = embed_scale(meta, cfg.checkpoint)
    device = resolve_device(cfg.device)
    return model.to(device=device, dtype=resolve_dtype(device, cfg.fp16)).eval()


def resolve_input_size(cfg: ModelConfig) -> int:
    """``cfg.input_size``, or for 0 the default of the (concrete) variant, :data:`AUTO_INPUT_SIZE`."""
    return cfg.input_size or AUTO_INPUT_SIZE.get(cfg.variant, 1024)


def build_runtime_model(cfg: ModelConfig, needs_sam: bool = False) -> MasaModel:
    """:func:`build_model` with its backbone and adapter run by ``cfg.backend`` (inference only), the
    adapter and track head in INT8 with ``cfg.int8``."""
    model = build_model(cfg, needs_sam)
    calibration = Calibration(model, cfg.calibration_dir) if cfg.int8 else None
    return accelerate(model, cfg.backend, cfg.cache_dir, calibration)
