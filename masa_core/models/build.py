"""Builders for the model variants, one plain function each, and the config that picks them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from masa_core.assets import asset_path
from masa_core.device import resolve_device, resolve_dtype
from masa_core.models.checkpoint import load_adapter
from masa_core.models.masa_model import MasaAdapter, MasaModel
from masa_core.models.tinyvit_backbone import TinyViTBackbone


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs, with which weights, where.

    variant: the backbone + adapter pairing (see :data:`VARIANTS`).
    backbone_checkpoint: official backbone weights; empty → the asset the set-up script fetched.
    checkpoint: adapter weights written by masa_core; empty → an untrained adapter drawn from ``seed``.
    input_size: side of the square model input (longest image side is resized to it), multiple of 64.
    device: auto | cpu | cuda | cuda:N.  fp16: half precision, applied on CUDA only.
    """

    variant: str = "masa_mobilesam"
    backbone_checkpoint: str = ""
    checkpoint: str = ""
    input_size: int = 1024
    device: str = "auto"
    fp16: bool = True
    seed: int = 0

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"model.variant = {self.variant!r}: allowed are {', '.join(VARIANTS)}")
        if not (64 <= self.input_size <= 2048) or self.input_size % 64:
            raise ValueError(f"model.input_size = {self.input_size}: must be a multiple of 64 in [64, 2048]")
        try:
            resolve_device(self.device)
        except ValueError as e:
            raise ValueError(f"model.{e}") from e


def build_masa_mobilesam(cfg: ModelConfig) -> MasaModel:
    """MASA adapter on MobileSAM's frozen TinyViT (official ``mobile_sam.pt``)."""
    backbone = TinyViTBackbone(cfg.input_size)
    backbone.load_mobile_sam(cfg.backbone_checkpoint or asset_path("mobile_sam"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        adapter = MasaAdapter(backbone.out_channels)
    return MasaModel("masa_mobilesam", backbone, adapter, cfg.input_size)


VARIANTS: dict[str, Callable[[ModelConfig], MasaModel]] = {
    "masa_mobilesam": build_masa_mobilesam,
}


def build_model(cfg: ModelConfig) -> MasaModel:
    """The configured variant with its weights, on its device and precision, in eval mode."""
    cfg.validate()
    model = VARIANTS[cfg.variant](cfg)
    if cfg.checkpoint:
        load_adapter(cfg.checkpoint, model.adapter, cfg.variant)
    device = resolve_device(cfg.device)
    return model.to(device=device, dtype=resolve_dtype(device, cfg.fp16)).eval()
