"""The official MASA model zoo: MASA-R50 and MASA-SAM-B / SAM-H with the released checkpoints'
module tree, so that ``model.state_dict()`` has exactly the official keys and shapes.

Official tree (``masa/models/mot/masa.py`` ``MASA.__init__``; configs ``masa-one/masa_r50_plug_and_play.py``
and ``masa-sam/*``)::

    backbone.*            MASA-R50: caffe-style ResNet-50             (MASA-SAM: none)
    detector.backbone.*   MASA-SAM: SAM image encoder (ViT-B / ViT-H) (``unified_backbone``, frozen)
    detector.prompt_encoder.*, detector.mask_decoder.*   MASA-SAM: SAM's prompt encoder and mask decoder
    masa_adapter.0.*      FPN (R50, BN) or SimpleFPN (SAM)            (a list in the config → Sequential)
    masa_adapter.1.*      DeformFusion (R50) or DyHead (SAM), 3 blocks
    rpn_head.*            RPNHead
    roi_head.bbox_head.*  Shared4Conv1FCBBoxHead with BN (R50) or Shared2FCBBoxHead (SAM), class-agnostic
    track_head.embed_head.*  QuasiDenseEmbedHead

The runtime interface is :class:`MasaModel`'s (``backbone`` gives the taps, ``adapter`` the fused
pyramid, embeddings and the detection head), built from the same module objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from masa_core.models.checkpoint import (
    FORMAT,
    CheckpointError,
    check_state_dict_keys,
    read_checkpoint,
    tensors_of,
)
from masa_core.models.deform_fusion import DeformFusion, DyHead
from masa_core.models.embed_head import QuasiDenseEmbedHead
from masa_core.models.masa_model import PIXEL_MEAN, PIXEL_STD, MasaAdapter, MasaModel
from masa_core.models.resnet_backbone import CaffeResNet50
from masa_core.models.roi_extractor import MultiLevelRoIAlign
from masa_core.models.sam_backbone import SAM_VITS, SamDetector, SamViTTaps
from masa_core.models.simple_fpn import FPN, SimpleFPN

OFFICIAL_VARIANTS = ("masa_r50", "masa_sam_b", "masa_sam_h")


@dataclass(frozen=True)
class Preprocessing:
    """A variant's input normalisation (RGB, 0..255); the longest side is ``model.input_size`` (1024).

    Both official configs (R50 and SAM) normalise RGB with the ImageNet statistics, which are SAM's
    (data preprocessor ``mean`` / ``std``, ``bgr_to_rgb=True``), and resize the longest side to 1024
    keeping the aspect ratio. The official R50 pads to a multiple of 32, SAM to 1024²; all variants
    here pad to the square input, which for R50 only adds zero rows or columns. ``masa_mnv2``'s
    ImageNet MobileNetV2 was trained on the same statistics (``mobilenetv2_backbone.IMAGENET_MEAN`` / ``_STD``
    × 255, what the crop-ReID baseline uses).
    """

    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]


PREPROCESSING: dict[str, Preprocessing] = {
    "masa_mobilesam": Preprocessing(PIXEL_MEAN, PIXEL_STD),
    "masa_mnv2": Preprocessing(PIXEL_MEAN, PIXEL_STD),
    "masa_mnv2_lite": Preprocessing(PIXEL_MEAN, PIXEL_STD),
    "masa_r50": Preprocessing(PIXEL_MEAN, PIXEL_STD),
    "masa_sam_b": Preprocessing(PIXEL_MEAN, PIXEL_STD),
    "masa_sam_h": Preprocessing(PIXEL_MEAN, PIXEL_STD),
}


class TrackHead(nn.Module):
    """mmdet's ``QuasiDenseTrackHead`` / MASA's ``MasaTrackHead`` at inference: an RoI extractor
    (no weights) and the ``embed_head``."""

    def __init__(self, roi_extractor: MultiLevelRoIAlign, embed_head: QuasiDenseEmbedHead) -> None:
        super().__init__()
        self.roi_extractor = roi_extractor
        self.embed_head = embed_head

    def forward(self, pyramid: list[Tensor], boxes: Tensor) -> Tensor:
        return self.embed_head(self.roi_extractor(pyramid, boxes))


def _official_layout(head: Mapping[str, nn.Module], adapter: MasaAdapter) -> dict[str, nn.Module]:
    """``head`` (``backbone`` or ``detector``) followed by the adapter parts under their official names."""
    return {
        **head,
        "masa_adapter": nn.Sequential(adapter.neck, adapter.fusion),
        "rpn_head": adapter.detection_head.rpn_head,
        "roi_head": adapter.detection_head.roi_head,
        "track_head": TrackHead(adapter.roi_extractor, adapter.embed_head),
    }


def build_masa_r50(input_size: int = 1024) -> MasaModel:
    """MASA-R50 (``masa_r50.pth``): caffe ResNet-50 + FPN(BN) + DeformFusion + RPN + Shared4Conv1FC(BN)
    + QuasiDense track head, randomly initialised in the official layout."""
    backbone = CaffeResNet50()
    neck = FPN(backbone.out_channels, 256, num_outs=5, norm="bn")
    adapter = MasaAdapter(
        backbone.out_channels,
        neck=neck,
        fusion=DeformFusion(256, 256, num_blocks=3, fix_upsample=False),
        box_head="shared4conv1fc",
    )
    pre = PREPROCESSING["masa_r50"]
    layout = _official_layout({"backbone": backbone}, adapter)
    return MasaModel("masa_r50", backbone, adapter, input_size, layout, pre.pixel_mean, pre.pixel_std)


def build_masa_sam(variant: str, input_size: int = 1024) -> MasaModel:
    """MASA-SAM-B / SAM-H: SAM's encoder (taps at its global-attention blocks) + SimpleFPN (residual)
    + DyHead + RPN + Shared2FC + QuasiDense track head, SAM's prompt encoder and mask decoder,
    randomly initialised in the official layout."""
    vits = {"masa_sam_b": "vit_b", "masa_sam_h": "vit_h"}
    if variant not in vits:
        raise ValueError(f"not a MASA-SAM variant: {variant!r} (allowed: {', '.join(vits)})")
    spec = SAM_VITS[vits[variant]]
    detector = SamDetector(spec)
    backbone = SamViTTaps(detector.backbone, spec.out_indices, input_size)
    neck = SimpleFPN(backbone.out_channels, 256, num_outs=5, use_residual=True)
    adapter = MasaAdapter(backbone.out_channels, neck=neck, fusion=DyHead(256, 256, num_blocks=3))
    pre = PREPROCESSING[variant]
    layout = _official_layout({"detector": detector}, adapter)
    return MasaModel(variant, backbone, adapter, input_size, layout, pre.pixel_mean, pre.pixel_std)


# ---------------------------------------------------------------------------------------------------
# Recognising checkpoints


def identify(state: Mapping[str, Tensor]) -> str | None:
    """What a state dict looks like: a zoo variant, ``masa_mobilesam`` / ``masa_mnv2`` (our adapters), ``sam_vit_b`` /
    ``sam_vit_h`` / ``mobile_sam`` (segment-anything / MobileSAM checkpoints), or None."""

    def width(key: str, dim: int = 0) -> int | None:
        t = state.get(key)
        return int(t.shape[dim]) if t is not None and t.dim() > dim else None

    vit = {768: "b", 1280: "h"}
    sam_width = width("image_encoder.patch_embed.proj.weight")
    if sam_width is None and not any(k.startswith("masa_adapter.") for k in state):
        sam_width = width("backbone.patch_embed.proj.weight")  # SAM converted for mmdet
    if sam_width is not None:
        return f"sam_vit_{vit[sam_width]}" if sam_width in vit else None
    if any(k.startswith("image_encoder.patch_embed.seq") for k in state):
        return "mobile_sam"
    masa_width = width("masa_adapter.0.lateral_convs.0.conv.weight", 1)
    if "masa_adapter.0.fpn1.0.weight" in state and masa_width in vit:
        return f"masa_sam_{vit[masa_width]}"
    if masa_width == 256:  # FPN on ResNet-50's stride-4 map (with or without the backbone's keys)
        return "masa_r50"
    if "neck.lateral_convs.0.conv.weight" in state:  # our adapters: SimpleFPN (MobileSAM) or FPN (MobileNetV2)
        if "neck.fpn1.0.weight" in state:
            return "masa_mobilesam"
        return "masa_mnv2" if width("neck.lateral_convs.0.conv.weight") == 256 else "masa_mnv2_lite"
    return None


def sam_as_detector(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """An official SAM checkpoint (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``), or
    its mmdet conversion (``backbone.*``), renamed to MASA-SAM's ``detector.*`` keys."""
    out = {}
    for key, value in state.items():
        for old, new in (("image_encoder.", "backbone."), ("backbone.", "backbone.")):
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out["detector." + key] = value
    return out


DESCRIPTIONS = {
    "masa_r50": "a MASA-R50 checkpoint (masa_r50.pth)",
    "masa_sam_b": "a MASA-SAM-B checkpoint",
    "masa_sam_h": "a MASA-SAM-H checkpoint",
    "masa_mobilesam": "a masa_ros MobileSAM adapter checkpoint (variant masa_mobilesam)",
    "masa_mnv2": "a masa_ros MobileNetV2 adapter checkpoint (variant masa_mnv2)",
    "masa_mnv2_lite": "a masa_ros MobileNetV2 lite adapter checkpoint (variant masa_mnv2_lite)",
    "sam_vit_b": "an official SAM ViT-B checkpoint (sam_vit_b_01ec64.pth)",
    "sam_vit_h": "an official SAM ViT-H checkpoint (sam_vit_h_4b8939.pth)",
    "mobile_sam": "a MobileSAM checkpoint (mobile_sam.pt)",
}
SAM_OF_VARIANT = {"masa_sam_b": "sam_vit_b", "masa_sam_h": "sam_vit_h"}


def describe(kind: str | None) -> str:
    return DESCRIPTIONS.get(kind or "", "no known MASA or SAM checkpoint")


def _masa_tensors(checkpoint: str, variant: str) -> dict[str, Tensor]:
    """The tensors of a MASA checkpoint for ``variant``; CheckpointError if it is for another model."""
    obj = read_checkpoint(checkpoint)
    if obj.get("format") == FORMAT and obj.get("variant") != variant:
        raise CheckpointError(
            f"{checkpoint} is a masa_ros checkpoint for variant {obj.get('variant')!r}, but the model is {variant!r}"
        )
    tensors = tensors_of(obj, checkpoint)
    kind = identify(tensors)
    if kind != variant:
        hint = " (give it as model.backbone_checkpoint)" if kind == SAM_OF_VARIANT.get(variant) else ""
        raise CheckpointError(
            f"{checkpoint} looks like {describe(kind)}, not {describe(variant)}: it does not fit "
            f"variant {variant!r}{hint}"
        )
    return tensors


def _sam_tensors(backbone_checkpoint: str, variant: str) -> dict[str, Tensor]:
    """A SAM checkpoint's tensors renamed into ``detector.*`` for MASA-SAM ``variant``."""
    expected = SAM_OF_VARIANT.get(variant)
    if expected is None:
        raise CheckpointError(f"variant {variant!r} takes no backbone checkpoint: its backbone is in its checkpoint")
    sam = tensors_of(read_checkpoint(backbone_checkpoint), backbone_checkpoint)
    kind = identify(sam)
    if kind != expected:
        raise CheckpointError(
            f"{backbone_checkpoint} looks like {describe(kind)}, but {variant!r} needs {describe(expected)}"
        )
    return sam_as_detector(sam)


def load_zoo_weights(
    model: MasaModel, checkpoint: str = "", backbone_checkpoint: str = "", strict: bool = True
) -> list[str]:
    """Load an official variant's weights in place; returns the model keys left as they were.

    checkpoint: an official MASA checkpoint (mmdet's ``{'state_dict': ..., 'meta': ...}`` or a bare
    state dict) or one written by :func:`masa_core.models.checkpoint.save_adapter` for this variant.
    backbone_checkpoint (MASA-SAM only): an official SAM checkpoint, or its mmdet conversion; its
    weights fill (and replace) ``detector.*``. Files are read with ``weights_only=True``. A file
    made for another variant is refused naming what it looks like; with ``strict`` (default) any
    missing, unexpected or mis-shaped key is an error listing the first ones, else only matching
    keys are loaded.
    """
    variant = model.variant
    own = model.state_dict()
    state: dict[str, Tensor] = {}
    covered: set[str] = set()
    if checkpoint:
        state.update(_masa_tensors(checkpoint, variant))
        covered |= set(own)  # a MASA checkpoint, with the SAM checkpoint if given, must cover the model
    if backbone_checkpoint:
        state.update(_sam_tensors(backbone_checkpoint, variant))
        covered |= {k for k in own if k.startswith("detector.")}
    if not state:
        return list(own)
    expected_keys = {k: v for k, v in own.items() if k in covered}
    sources = " + ".join(p for p in (checkpoint, backbone_checkpoint) if p)
    hint = ""
    if variant in SAM_OF_VARIANT and not any(k.startswith("detector.") for k in state):
        hint = f"the SAM weights are missing: give {describe(SAM_OF_VARIANT[variant])} as model.backbone_checkpoint"
    if strict:
        check_state_dict_keys(expected_keys, state, sources, f"variant {variant}", hint)
        model.load_state_dict(state, strict=False)
        return [k for k in own if k not in covered]
    fits = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(fits, strict=False)
    return [k for k in own if k not in fits]
